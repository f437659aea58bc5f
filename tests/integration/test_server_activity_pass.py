"""Whole passes with ``--activity-source=server`` on real servers doing real work (issue 24).

The servers are ``tests/support/workloads.py``'s (shared with ``test_server_activity.py``,
which runs first); the last test here stops some of them, so it comes last.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from tests.support.realhub import wait_for
from tests.support.reports import validate
from tests.support.workloads import WORKLOAD_USERS, Workloads

IDLE = 4  # --timeout, in seconds: every workload was set up longer ago than this


def cull(
    w: Workloads, *args: str, token: str | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """One pass of the command with a JSON report on stdout: (process, report)."""
    hub = w.su.hub
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_URL"] = hub.api_url
    env["JUPYTERHUB_API_TOKEN"] = token if token is not None else hub.culler_token
    command = [
        sys.executable,
        "-m",
        "idle_cull",
        f"--timeout={IDLE}",
        "--report=json",
        "--report-kept",
        f"--proxy-url={w.su.public_url}",
        *args,
    ]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    for secret in (hub.culler_token, hub.admin_token, hub.servers_only_token):
        assert secret not in result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout) if result.stdout.strip() else {}
    if report:
        validate(report)
    return result, report


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {e["user"]: e["outcome"] for e in report.get("entries", []) if e["kind"] == "server"}


def settle(w: Workloads) -> None:
    wait = w.ready_at + IDLE + 0.5 - time.monotonic()
    if wait > 0:
        time.sleep(wait)


def proxied(w: Workloads) -> dict[str, int]:
    return {user: w.su.proxied_requests(user) for user in WORKLOAD_USERS}


def test_a_token_without_the_tokens_scope_is_exit_3_before_anything(workloads: Workloads) -> None:
    """With issue 21's per-user probe tokens the culler needs ``tokens``, not the
    ``access:servers`` the issue names: the culler's own token never reaches a server."""
    settle(workloads)
    before = proxied(workloads)
    result, _ = cull(
        workloads, "--activity-source=server", token=workloads.su.hub.servers_only_token
    )
    assert result.returncode == 3, result.stderr
    assert "tokens" in result.stderr
    after = proxied(workloads)
    assert {u: after[u] for u in after if u != "tab"} == {u: before[u] for u in after if u != "tab"}
    assert all(workloads.su.server_model(user) is not None for user in WORKLOAD_USERS)


def test_a_dry_run_sends_nothing_to_any_server(workloads: Workloads) -> None:
    settle(workloads)
    before = proxied(workloads)
    result, report = cull(workloads, "--activity-source=server", "--dry-run")
    assert result.returncode == 0, result.stderr
    after = proxied(workloads)
    # the open tab polls its own server; nothing else reached any server
    assert {u: after[u] for u in after if u != "tab"} == {u: before[u] for u in after if u != "tab"}
    assert report["dry_run"] is True
    assert report["counts"]["activity"]["probed"] == 0
    assert report["counts"]["activity"]["would_probe"] >= 1
    assert all(workloads.su.server_model(user) is not None for user in WORKLOAD_USERS)


def test_an_open_tab_is_culled_by_server_activity_and_kept_by_the_default(
    workloads: Workloads,
) -> None:
    """The issue's headline case, at the same --timeout: today's default keeps the idle
    server behind an open tab (and would stop the busy kernel and the printing terminal,
    had --probe-kernels not been asked); the server source stops it and keeps those."""
    settle(workloads)
    default, report = cull(workloads, "--dry-run")
    assert default.returncode == 0, default.stderr
    today = outcomes(report)
    print("default (--dry-run):", json.dumps(today, sort_keys=True))
    assert today["tab"] != "dry_run"  # kept: the tab keeps the hub's record fresh
    assert today["printer"] == "dry_run"  # would be stopped: the hub never saw it print
    assert today["busy"] == "dry_run"

    server, report = cull(workloads, "--activity-source=server")
    assert server.returncode == 0, server.stderr
    measured = outcomes(report)
    print("--activity-source=server:", json.dumps(measured, sort_keys=True))
    print(server.stderr)
    assert measured["tab"] in ("stopped", "pending")
    assert measured["quiet"] in ("stopped", "pending")  # an idle terminal
    assert measured["printer"] not in ("stopped", "pending")
    assert measured["busy"] not in ("stopped", "pending")
    activity = {e["user"]: e["activity"] for e in report["entries"] if e["kind"] == "server"}
    assert activity["tab"]["found"] == "idle"
    assert activity["printer"]["found"] == "protected_terminal"
    assert activity["busy"]["found"] == "protected_busy_kernel"
    counts = report["counts"]["activity"]
    print("counts.activity:", json.dumps(counts, sort_keys=True))
    assert counts["culled_hub_active"] >= 1  # the open tab: the hub called it active
    assert counts["protected_terminal"] == 1
    assert counts["protected_busy_kernel"] == 1
    wait_for(lambda: workloads.su.server_model("tab") is None, "tab's server to stop")
    assert workloads.su.server_model("printer") is not None
    assert workloads.su.server_model("busy") is not None
