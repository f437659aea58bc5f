"""Whole passes with ``--activity-source=server`` on real servers doing real work (issue 24).

The servers are ``tests/support/workloads.py``'s (shared with ``test_server_activity.py``,
which runs first). A case that is about one server leaves the others out of the pass
(``only``); the CPU case stops ``cell`` and the last test stops ``tab`` and ``quiet``, so
they come last.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.support.realhub import server_path, wait_for
from tests.support.reports import validate
from tests.support.singleuser import FaultyProbeTarget
from tests.support.workloads import BURN_CELL, WORKLOAD_USERS, OddAnswers, Workloads

IDLE = 4  # --timeout, in seconds: every workload was set up longer ago than this
ACTIVITY_SETTLES = 3.5  # the fixture's activity intervals are 1 s (plus jitter and a poll)


def route_target(w: Workloads) -> tuple[str, str]:
    """The options that send every probe to the servers' route targets."""
    return ("--probe-via=route-target", f"--proxy-api-url={w.proxy_api_url}")


def cull(
    w: Workloads, *args: str, token: str | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """One pass of the command with a JSON report on stdout: (process, report)."""
    hub = w.su.hub
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_URL"] = hub.api_url
    env["JUPYTERHUB_API_TOKEN"] = token if token is not None else hub.culler_token
    env["CONFIGPROXY_AUTH_TOKEN"] = w.proxy_auth_token  # read with --probe-via=route-target
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
    for secret in (hub.culler_token, hub.admin_token, hub.servers_only_token, w.proxy_auth_token):
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


def age(moment: datetime) -> float:
    return (datetime.now(timezone.utc) - moment).total_seconds()


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


def only(user: str) -> list[str]:
    """Options that leave the pass only ``user``'s server to act on: the others are
    excluded, so a pass whose probes all fail (the hub's record decides) stops none of
    them, and each case costs one server's probe and judgement."""
    return [f"--exclude-user={other}" for other in WORKLOAD_USERS if other != user]


def entry(report: dict[str, Any], user: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        e for e in report["entries"] if e["kind"] == "server" and e["user"] == user
    )
    return found


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda: FaultyProbeTarget(404), id="404"),
        pytest.param(lambda: FaultyProbeTarget(500), id="500"),
        pytest.param(lambda: OddAnswers("html"), id="html"),
        pytest.param(lambda: OddAnswers("redirect"), id="redirect"),
        pytest.param(lambda: OddAnswers("close"), id="nothing"),
    ],
)
def test_a_probe_that_fails_leaves_the_decision_to_the_hubs_record(
    workloads: Workloads, answer: Callable[[], FaultyProbeTarget | OddAnswers]
) -> None:
    """Every probe of the pass answered by a non-Jupyter or failing server (``--proxy-url``
    pointed at it): the open tab's server, which a working probe culls (the test below),
    is kept on the hub's fresh record, as today's default keeps it at this --timeout."""
    settle(workloads)
    assert age(workloads.hub_activity("tab")) < IDLE  # what today's default decides on
    with answer() as odd:
        result, report = cull(
            workloads, "--activity-source=server", *only("tab"), f"--proxy-url={odd.url}"
        )
        assert odd.requests >= 1
    assert result.returncode == 0, result.stderr
    tab = entry(report, "tab")
    assert tab["outcome"] not in ("stopped", "pending"), tab
    assert tab["activity"]["found"] == "fell_back", tab
    assert report["counts"]["activity"]["fell_back"] >= 1
    assert workloads.su.server_model("tab") is not None


def test_a_kernel_that_ran_a_cell_seconds_ago_is_kept(workloads: Workloads) -> None:
    """Kept in the mode, on the kernel's own message; today's default keeps it too, once
    the single-user server has reported the cell to the hub (within a second or two
    here): the hub's record is then younger than --timeout. The record is read rather
    than a second pass run, which could start after the cell is older than the limit."""
    settle(workloads)
    workloads.run_cell("cell", "print('hello')")
    result, report = cull(workloads, "--activity-source=server", *only("cell"))
    assert result.returncode == 0, result.stderr
    cell = entry(report, "cell")
    print("server:", cell["outcome"], cell["activity"])
    assert cell["outcome"] not in ("stopped", "pending"), cell
    assert cell["activity"]["found"] == "protected_kernel", cell
    assert workloads.su.server_model("cell") is not None
    wait_for(
        lambda: age(workloads.hub_activity("cell")) < IDLE,
        "the hub to hear of the cell",
        timeout=IDLE,
    )


def test_a_cpu_burner_is_kept_with_the_threshold_on_and_culled_with_it_off(
    workloads: Workloads,
) -> None:
    """A background process started from a kernel, older than --timeout: today's default
    would cull it (the hub never hears of it: its record goes stale); the server source keeps it only with
    --cpu-threshold. This stops ``cell``'s server, so it comes after the other cases
    that use it."""
    settle(workloads)
    pid_file = workloads.su.hub.workdir / "burner.pid"
    workloads.run_cell("cell", BURN_CELL + f"open({str(pid_file)!r}, 'w').write(str(burner.pid))")
    try:
        time.sleep(IDLE + 0.5)  # the cell that started it is older than the limit
        # today's default decides on the hub's record: older than --timeout, so it would
        # stop the server (read, not a default pass: once in three combined runs such a
        # pass kept it, the record having moved again in between, cause not found)
        stale = lambda: age(workloads.hub_activity("cell")) >= IDLE  # noqa: E731
        wait_for(stale, "the hub's record of cell to be older than --timeout", timeout=15)
        cpu = ("--cpu-threshold=30", "--cpu-window=2")
        on, report_on = cull(workloads, "--activity-source=server", *cpu, *only("cell"))
        off, report_off = cull(workloads, "--activity-source=server", *only("cell"))
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert on.returncode == 0, on.stderr
    assert off.returncode == 0, off.stderr
    kept, culled = entry(report_on, "cell"), entry(report_off, "cell")
    print("cpu on:", kept["activity"], "cpu off:", culled["outcome"])
    assert kept["outcome"] not in ("stopped", "pending"), kept
    assert kept["activity"]["found"] == "protected_cpu", kept
    assert culled["outcome"] in ("stopped", "pending"), culled
    wait_for(lambda: workloads.su.server_model("cell") is None, "cell's server to stop")


def test_probes_at_the_route_targets_move_no_activity_and_through_the_proxy_they_do(
    workloads: Workloads,
) -> None:
    """The same probing pass both ways (``--max-culls=0``: every running server is probed,
    then the plan is refused, exit 4, so every server is kept). At the route targets the
    proxy's route ``last_activity`` and, after the hub's activity poll (every second
    here), the hub's ``last_activity`` of the probed servers stay where they were;
    through the proxy both move. Both ways find the same. (``tab`` and ``printer`` are
    probed but not watched: the tab polls through the proxy, and the printing terminal's
    output may be reported by its server.)"""
    w = workloads
    settle(w)
    watched = ("busy", "quiet", "empty")
    routes, hub = {u: w.route_activity(u) for u in watched}, {u: w.hub_activity(u) for u in watched}
    started = time.monotonic()
    direct, direct_report = cull(w, "--activity-source=server", "--max-culls=0", *route_target(w))
    assert direct.returncode == 4, direct.stderr
    assert "probes go to the servers' route targets" in direct.stderr
    fell_back = [e for e in direct_report["entries"] if e["activity"]["found"] == "fell_back"]
    # only the server with neither kernels nor terminals: the hub's record decides for it
    assert [e["user"] for e in fell_back] == ["empty"], direct.stderr
    assert "route" not in fell_back[0]["activity"]["reason"]
    time.sleep(ACTIVITY_SETTLES)
    assert {u: w.route_activity(u) for u in watched} == routes
    assert {u: w.hub_activity(u) for u in watched} == hub

    proxied_pass, proxied_report = cull(w, "--activity-source=server", "--max-culls=0")
    assert proxied_pass.returncode == 4, proxied_pass.stderr
    time.sleep(ACTIVITY_SETTLES)
    assert all(w.route_activity(u) > routes[u] for u in watched), w.routes()
    assert all(w.hub_activity(u) > hub[u] for u in watched)
    found = {
        mode: {e["user"]: e["activity"]["found"] for e in report["entries"]}
        for mode, report in (("target", direct_report), ("proxy", proxied_report))
    }
    print("findings:", json.dumps(found, sort_keys=True), f"{time.monotonic() - started:.1f}s")
    assert found["target"] == found["proxy"]
    assert found["target"]["tab"] == "idle"
    assert all(w.su.server_model(user) is not None for user in (*watched, "tab", "printer"))


HUNG_USERS = ("hung-0", "hung-1", "hung-2")


def server_pids(user: str) -> list[int]:
    """The processes of ``user``'s single-user server (``JUPYTERHUB_USER`` in their
    environment: the server and anything it started)."""
    marker = f"JUPYTERHUB_USER={user}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry}/environ", "rb") as environ:
            if marker in environ.read().split(b"\0"):
                pids.append(int(entry))
    return pids


def signal_servers(users: tuple[str, ...], which: signal.Signals) -> None:
    for user in users:
        for pid in server_pids(user):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, which)


def test_hung_servers_do_not_stall_the_pass_and_fall_back_to_the_hubs_record(
    workloads: Workloads,
) -> None:
    """Issue 24's whole-pass stall: three real servers are frozen (SIGSTOP: the route's
    target accepts connections and never answers, like a hung server), beside an idle
    one (``empty``, culled with ``--no-sessions=idle``) and an active one (``printer``).
    The pass finishes; the idle one is stopped and the active one kept on their own
    evidence; each frozen one is decided by the hub's record (fresh: kept) with a reason
    naming the timeout. The subprocess timeout is a hang guard only."""
    hub = workloads.su.hub
    hub.create_users(list(HUNG_USERS))
    for user in HUNG_USERS:
        hub.api("POST", server_path(user), json={}, expect=(201, 202))

    def all_ready() -> bool:
        models = [workloads.su.server_model(user) or {} for user in HUNG_USERS]
        return all(model.get("ready") for model in models)

    wait_for(all_ready, "the hung users' servers to be ready", timeout=120)
    assert all(server_pids(user) for user in HUNG_USERS)
    settle(workloads)
    time.sleep(IDLE + 0.5)  # only servers older than --timeout are surveyed
    signal_servers(HUNG_USERS, signal.SIGSTOP)
    try:
        for user in HUNG_USERS:
            hub.touch(user)  # the hub's record: active now
        others = [u for u in WORKLOAD_USERS if u not in ("empty", "printer")]
        result, report = cull(
            workloads,
            "--activity-source=server",
            "--no-sessions=idle",
            "--probe-timeout=2",
            "--concurrency=2",
            *(f"--exclude-user={user}" for user in others),
        )
    finally:
        signal_servers(HUNG_USERS, signal.SIGCONT)
    assert result.returncode == 0, result.stderr
    found = {u: entry(report, u) for u in ("empty", "printer", *HUNG_USERS)}
    print("outcomes:", json.dumps({u: e["outcome"] for u, e in found.items()}))
    assert found["empty"]["outcome"] in ("stopped", "pending"), found["empty"]
    assert found["printer"]["outcome"] not in ("stopped", "pending"), found["printer"]
    assert found["printer"]["activity"]["found"] == "protected_terminal"
    for user in HUNG_USERS:
        hung = found[user]
        assert hung["outcome"] not in ("stopped", "pending"), hung
        assert hung["activity"]["found"] == "fell_back", hung
        # asked once: the old survey waited twice ("... within 2s after 2 attempts")
        assert hung["activity"]["reason"].startswith("probe failed (no answer within 2s)"), hung
    assert report["counts"]["activity"]["fell_back"] == len(HUNG_USERS)
    for user in HUNG_USERS:
        hub.stop_server(user)
    wait_for(lambda: workloads.su.server_model("empty") is None, "empty's server to stop")


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

    # at the route targets, as the test above shows finds what the proxied pass finds
    server, report = cull(workloads, "--activity-source=server", *route_target(workloads))
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
