"""Busy kernels on real single-user servers (``tests/support/singleuser.py``): issue 15.

The hub spawns real jupyterhub-singleuser servers behind configurable-http-proxy. A busy
server runs ``time.sleep(600)`` in a kernel, started over the kernel's websocket as a
notebook does; it prints nothing, so neither the server nor the hub sees activity, and
without ``--probe-kernels`` the pass stops it mid-computation.

Servers are started per test (a few seconds each) and every test stops what it left
running, so the session's hub holds a handful at most.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from dateutil.parser import isoparse

from tests.support.realhub import wait_for
from tests.support.singleuser import FaultyProbeTarget, SingleUserHub

IDLE = 3  # --timeout, in seconds
PAST_IDLE = IDLE + 1.5  # the hub's Date header is truncated to the second
ACTIVITY_SETTLES = 3.5  # the fixture's activity intervals are 1 s (plus jitter and a poll)


@pytest.fixture
def su(singleuser_session: SingleUserHub) -> Iterator[SingleUserHub]:
    """The session's single-user hub; servers a test leaves running are stopped after it."""
    yield singleuser_session
    singleuser_session.stop_all_servers()


def cull(
    su: SingleUserHub, *args: str, token: str | None = None, proxy_url: str | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """One pass of the command with a JSON report on stdout: (process, report)."""
    hub = su.hub
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_URL"] = hub.api_url
    env["JUPYTERHUB_API_TOKEN"] = token if token is not None else hub.culler_token
    command = [sys.executable, "-m", "idle_cull", f"--timeout={IDLE}", "--report=json", *args]
    if "--probe-kernels" in args:
        command.append(f"--proxy-url={proxy_url or su.public_url}")
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    for secret in (hub.culler_token, hub.admin_token, hub.servers_only_token, hub.prober_token):
        assert secret not in result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout) if result.stdout.strip() else {}
    return result, report


def server_entry(report: dict[str, Any], user: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = report["entries"]
    (entry,) = [e for e in entries if e["kind"] == "server" and e["user"] == user]
    return entry


def running(su: SingleUserHub, user: str) -> bool:
    return su.server_model(user) is not None


def assert_stopped(su: SingleUserHub, entry: dict[str, Any]) -> None:
    """The pass stopped the server: a real server takes a few seconds, so the hub may
    answer 202 (pending) first; either way it is gone soon after."""
    assert entry["outcome"] in ("stopped", "pending"), entry
    wait_for(lambda: not running(su, entry["user"]), f"{entry['user']}'s server to stop")


def hub_activity(su: SingleUserHub, user: str) -> datetime:
    """The hub's record of the server's last activity, read from the hub's API."""
    model = su.server_model(user)
    assert model is not None, f"{user} has no running server"
    return isoparse(model["last_activity"])


def busy_server(su: SingleUserHub, user: str) -> str:
    """A user whose server runs a silent long cell; the kernel's id."""
    su.fresh_user(user)
    kernel = su.start_kernel(user)
    su.run_silently(user, kernel)
    return kernel


def test_a_silent_cell_keeps_its_kernel_busy_while_activity_stands_still(su: SingleUserHub) -> None:
    kernel = busy_server(su, "harness")
    before = su.status("harness")["last_activity"]
    time.sleep(ACTIVITY_SETTLES)
    assert su.kernel_state("harness", kernel) == "busy"
    assert su.status("harness")["last_activity"] == before
    su.interrupt("harness", kernel)
    assert su.kernel_state("harness", kernel) == "idle"


def test_a_busy_server_is_kept_with_probing_and_stopped_without(su: SingleUserHub) -> None:
    busy_server(su, "busy-bea")
    time.sleep(PAST_IDLE)
    probed, report = cull(su, "--probe-kernels")
    assert probed.returncode == 0, probed.stderr
    assert running(su, "busy-bea")
    assert "probe server busy-bea in " in probed.stderr
    assert "kernel python3 busy since" in probed.stderr
    entry = server_entry(report, "busy-bea")
    assert entry["outcome"] == "skipped"
    assert entry["detail"].startswith("probe: kernel python3 busy since")
    assert entry["probe"]["found"] == "busy"
    assert entry["probe"]["kept"] is True
    assert [k["name"] for k in entry["probe"]["busy_kernels"]] == ["python3"]
    assert report["counts"]["probes"]["kept_busy"] == 1
    # Today's behaviour, at the same --timeout: the computation is stopped. (The probe
    # was proxied traffic, which the hub counts as activity: wait the timeout out again.)
    time.sleep(PAST_IDLE)
    unprobed, report = cull(su)
    assert unprobed.returncode == 0, unprobed.stderr
    assert "probe" not in server_entry(report, "busy-bea")
    assert_stopped(su, server_entry(report, "busy-bea"))


def test_after_an_interrupt_the_next_pass_stops_the_server(su: SingleUserHub) -> None:
    kernel = busy_server(su, "ivan")
    time.sleep(PAST_IDLE)
    first, _ = cull(su, "--probe-kernels")
    assert first.returncode == 0, first.stderr
    assert running(su, "ivan")
    su.interrupt("ivan", kernel)
    time.sleep(PAST_IDLE)
    second, report = cull(su, "--probe-kernels")
    assert second.returncode == 0, second.stderr
    entry = server_entry(report, "ivan")
    assert entry["probe"]["found"] == "not_busy"
    assert entry["probe"]["reason"] == "none of its 1 kernel(s) busy"
    assert_stopped(su, entry)


def test_servers_without_kernels_or_with_idle_kernels_are_stopped(su: SingleUserHub) -> None:
    su.fresh_user("no-kernels")
    su.fresh_user("idle-kernel")
    su.start_kernel("idle-kernel")
    time.sleep(PAST_IDLE)
    result, report = cull(su, "--probe-kernels")
    assert result.returncode == 0, result.stderr
    assert server_entry(report, "no-kernels")["probe"]["reason"] == "no kernels"
    assert server_entry(report, "idle-kernel")["probe"]["kernels"] == 1
    assert report["counts"]["probes"] == {
        "probed": 2,
        "busy": 0,
        "not_busy": 2,
        "failed": 0,
        "kept_busy": 0,
        "kept_failed": 0,
        "would_probe": 0,
    }
    assert_stopped(su, server_entry(report, "no-kernels"))
    assert_stopped(su, server_entry(report, "idle-kernel"))


def test_the_busy_limit_stops_a_busy_server(su: SingleUserHub) -> None:
    busy_server(su, "limit-lou")
    time.sleep(PAST_IDLE)
    result, report = cull(su, "--probe-kernels", "--busy-timeout=2")
    assert result.returncode == 0, result.stderr
    entry = server_entry(report, "limit-lou")
    assert entry["probe"]["found"] == "busy"
    assert entry["probe"]["kept"] is False
    assert ">= 2s (--busy-timeout)" in entry["probe"]["reason"]
    assert_stopped(su, entry)


def test_max_age_stops_a_busy_server_without_asking_it(su: SingleUserHub) -> None:
    busy_server(su, "old-olga")
    time.sleep(PAST_IDLE)
    before = su.proxied_requests("old-olga")
    result, report = cull(su, "--probe-kernels", "--timeout=1h", f"--max-age={IDLE}")
    assert result.returncode == 0, result.stderr
    entry = server_entry(report, "old-olga")
    assert "(--max-age)" in entry["reason"]
    assert entry["probe"] is None
    assert su.proxied_requests("old-olga") == before
    assert_stopped(su, entry)


def test_probing_does_not_move_the_servers_own_activity(su: SingleUserHub) -> None:
    """What moves and what does not when a busy server is probed.

    The server's own ``last_activity`` stays put (``no_track_activity``). The hub's record
    does move, to the moment of the probe: configurable-http-proxy counts every successful
    proxied request as route activity, and the hub copies it at its next activity poll.
    That is why the busy limit also counts from the busy kernel's last message.
    """
    busy_server(su, "still-stan")
    # Read through the proxy before waiting: that read is activity in the hub's record too.
    own_before = su.status("still-stan")["last_activity"]
    time.sleep(PAST_IDLE)
    hub_before = hub_activity(su, "still-stan")
    probe_sent = time.time()
    result, report = cull(su, "--probe-kernels")
    assert result.returncode == 0, result.stderr
    assert server_entry(report, "still-stan")["probe"]["found"] == "busy"
    time.sleep(ACTIVITY_SETTLES)
    hub_after = hub_activity(su, "still-stan")  # the hub's API: not proxied
    assert su.status("still-stan")["last_activity"] == own_before
    assert hub_after > hub_before
    assert hub_after.timestamp() >= probe_sent - 1


def test_a_dry_run_sends_nothing_to_any_server(su: SingleUserHub) -> None:
    busy_server(su, "dry-dora")
    time.sleep(PAST_IDLE)
    before = su.proxied_requests("dry-dora")
    result, report = cull(su, "--probe-kernels", "--dry-run")
    assert result.returncode == 0, result.stderr
    entry = server_entry(report, "dry-dora")
    assert entry["outcome"] == "dry_run"
    assert entry["detail"] == "--dry-run; would probe its kernels first"
    assert entry["probe"]["found"] == "would_probe"
    assert report["counts"]["probes"]["would_probe"] == 1
    assert "nothing was sent to any server" in result.stderr
    time.sleep(1)  # the proxy's log is written asynchronously
    assert su.proxied_requests("dry-dora") == before
    assert running(su, "dry-dora")


@pytest.mark.parametrize(
    ("status", "stall", "failure"),
    [
        pytest.param(404, False, "HTTP 404: no /api/kernels (not a Jupyter server?)", id="404"),
        pytest.param(500, False, "HTTP 500", id="500"),
        pytest.param(200, True, "no answer within 1s after 2 attempts", id="timeout"),
    ],
)
def test_a_failed_probe_keeps_the_server_unless_told_to_cull(
    su: SingleUserHub, status: int, stall: bool, failure: str
) -> None:
    su.fresh_user("rstudio-rita")
    time.sleep(PAST_IDLE)
    with FaultyProbeTarget(status, stall=stall) as target:
        kept, report = cull(su, "--probe-kernels", "--probe-timeout=1", proxy_url=target.url)
        assert kept.returncode == 0, kept.stderr
        assert running(su, "rstudio-rita")
        entry = server_entry(report, "rstudio-rita")
        assert entry["outcome"] == "skipped"
        assert entry["probe"]["failure"] == failure
        assert report["counts"]["probes"]["kept_failed"] == 1
        culled, report = cull(
            su,
            "--probe-kernels",
            "--probe-timeout=1",
            "--probe-failure=cull",
            proxy_url=target.url,
        )
        assert culled.returncode == 0, culled.stderr
        assert_stopped(su, server_entry(report, "rstudio-rita"))
        assert target.requests == (4 if stall else 2)  # a stalled probe is tried twice


def test_a_token_without_the_tokens_scope_acts_on_nothing(su: SingleUserHub) -> None:
    su.fresh_user("scope-sam")
    time.sleep(PAST_IDLE)
    before = su.proxied_requests("scope-sam")
    result, _ = cull(su, "--probe-kernels", token=su.hub.servers_only_token)
    assert result.returncode == 3, result.stderr
    assert (
        "tokens (to mint each user whose server is read a token for that server only"
        in result.stderr
    )
    assert running(su, "scope-sam")
    assert su.proxied_requests("scope-sam") == before
