"""``server_activity`` against real single-user servers doing real work (issue 24).

The servers are ``tests/support/workloads.py``'s: one hub, six servers, each in one state.
Each probe sends a token minted for the server's own user (``probe_tokens``), never the
culler's. Each case also shows what the hub's record says at the same limit: that is
what decides today.

Unless a test says otherwise, servers are probed at their route's target, read from the
proxy's REST API (``proxy_routes``), so the probes move nothing anywhere; the last tests
measure that, and what a probe through the proxy moves instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import pytest

from idle_cull.evidence.probe_tokens import ProbeTarget, ProbeTokens
from idle_cull.evidence.proxy_routes import Locator, fetch_routes, route_locator, through_proxy
from idle_cull.evidence.server_activity import (
    ActivityWithUserToken,
    ServerActivityProbe,
)
from idle_cull.hub.client import HubClient
from idle_cull.rules.server_activity import (
    ActivityFinding,
    ActivitySettings,
    NoSessions,
    ServerActivity,
    judge_activity,
)
from tests.support.singleuser import FaultyProbeTarget
from tests.support.workloads import BURN_CELL, STOP_BURN_CELL, OddAnswers, Workloads

IDLE = 4.0  # the limit, in seconds: every workload was set up longer ago than this
ACTIVITY_SETTLES = 3.5  # the fixture's activity intervals are 1 s (plus jitter and a poll)
CPU_ON = ActivitySettings(cpu_threshold=30.0, cpu_window=2.0)
OFF = ActivitySettings()


@pytest.fixture
def w(workloads: Workloads) -> Workloads:
    """The workloads, each in place for longer than the limit."""
    wait = workloads.ready_at + IDLE + 0.5 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    return workloads


@pytest.fixture
def tokens(workloads: Workloads) -> Iterator[ProbeTokens]:
    client = HubClient(workloads.su.hub.api_url, workloads.su.hub.culler_token)
    yield ProbeTokens(client, 60, probe_seconds=5)
    client.close()


def probe(
    w: Workloads,
    tokens: ProbeTokens,
    user: str,
    settings: ActivitySettings = OFF,
    *,
    locate: Locator | None = None,
    timeout: float = 5.0,
) -> ServerActivity:
    """One probe of ``user``'s server with that user's own token."""
    if locate is None:
        locate = route_locator(fetch_routes(w.proxy_api_url, w.proxy_auth_token))
    reader = ServerActivityProbe(locate, settings=settings, timeout=timeout)
    try:
        target = ProbeTarget(user, "", f"/user/{user}/", frozenset({""}))
        return ActivityWithUserToken(reader, tokens)(target)
    finally:
        reader.close()


def judge(
    w: Workloads, user: str, activity: ServerActivity, settings: ActivitySettings = OFF
) -> ActivityFinding:
    model = w.su.server_model(user) or {}
    started = datetime.fromisoformat(model["started"].replace("Z", "+00:00"))
    return judge_activity(
        activity, now=datetime.now(timezone.utc), started=started, timeout=IDLE, settings=settings
    )


def age(moment: datetime) -> float:
    return (datetime.now(timezone.utc) - moment).total_seconds()


def test_an_open_tab_keeps_the_hubs_record_fresh_but_not_the_kernels(
    w: Workloads, tokens: ProbeTokens
) -> None:
    """The most reported culling problem: kept today, idle by the server's own evidence."""
    assert w.poller is not None
    assert w.poller.polls >= 2
    assert age(w.hub_activity("tab")) < IDLE  # today: kept at this limit
    assert age(w.status_activity("tab")) < IDLE
    found = judge(w, "tab", probe(w, tokens, "tab"))
    assert found.source == "server"
    assert found.protected_by is None
    assert found.idle_since is not None
    assert age(found.idle_since) >= IDLE
    assert "kernel python3 last sent a message" in found.reason


def test_a_cell_run_seconds_ago_protects_the_server(w: Workloads, tokens: ProbeTokens) -> None:
    w.run_cell("cell", "print('hello')")
    found = judge(w, "cell", probe(w, tokens, "cell"))
    assert found.protected_by == "kernel"
    assert found.reason.startswith("protected: kernel python3 last sent a message")


def test_a_busy_kernel_protects_the_server(w: Workloads, tokens: ProbeTokens) -> None:
    assert age(w.hub_activity("busy")) >= IDLE  # today: culled (without --probe-kernels)
    found = judge(w, "busy", probe(w, tokens, "busy"))
    assert (found.working, found.protected_by) == ("busy_kernel", "busy_kernel")
    assert "kernel python3 busy since" in found.reason


def test_a_terminal_printing_protects_the_server(w: Workloads, tokens: ProbeTokens) -> None:
    """A job printing in a terminal moves neither /api/status nor the hub's record."""
    assert age(w.hub_activity("printer")) >= IDLE  # today: culled
    assert age(w.status_activity("printer")) >= IDLE
    found = judge(w, "printer", probe(w, tokens, "printer"))
    assert found.protected_by == "terminal"
    assert found.reason.startswith("protected: terminal 1 had input or output")


def test_an_idle_terminal_is_idle(w: Workloads, tokens: ProbeTokens) -> None:
    found = judge(w, "quiet", probe(w, tokens, "quiet"))
    assert (found.source, found.protected_by) == ("server", None)
    assert "(newest: terminal 1 had input or output)" in found.reason


def test_a_cpu_burner_protects_with_the_threshold_on_only(
    w: Workloads, tokens: ProbeTokens
) -> None:
    """A background process started from a kernel: a child of the server's tree."""
    w.run_cell("cell", BURN_CELL)
    try:
        time.sleep(IDLE + 0.5)  # the cell that started it is older than the limit
        with_cpu = judge(w, "cell", probe(w, tokens, "cell", CPU_ON), CPU_ON)
        without = judge(w, "cell", probe(w, tokens, "cell"))
    finally:
        w.run_cell("cell", STOP_BURN_CELL)
    assert with_cpu.protected_by == "cpu", with_cpu
    assert with_cpu.reason.startswith("protected: processes used ")
    assert with_cpu.reason.endswith("% CPU over 2s")
    assert (without.source, without.protected_by) == ("server", None)


def test_cpu_is_measured_and_low_on_an_idle_server(w: Workloads, tokens: ProbeTokens) -> None:
    activity = probe(w, tokens, "quiet", CPU_ON)
    assert activity.cpu is not None
    assert activity.cpu.percent is not None
    assert activity.cpu.percent < CPU_ON.cpu_threshold  # type: ignore[operator]
    assert judge(w, "quiet", activity, CPU_ON).protected_by is None


def test_a_server_without_kernels_or_terminals(w: Workloads, tokens: ProbeTokens) -> None:
    activity = probe(w, tokens, "empty")
    assert (activity.kernels, activity.terminals, activity.failure) == ((), (), None)
    assert judge(w, "empty", activity).source == "hub"
    idle = ActivitySettings(no_sessions=NoSessions.IDLE)
    found = judge(w, "empty", activity, idle)
    assert (found.source, found.protected_by) == ("server", None)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(lambda: FaultyProbeTarget(404), "HTTP 404", id="404"),
        pytest.param(lambda: FaultyProbeTarget(500), "HTTP 500", id="500"),
        pytest.param(lambda: OddAnswers("html"), "not JSON", id="html"),
        pytest.param(lambda: OddAnswers("redirect"), "HTTP 302", id="redirect"),
        pytest.param(lambda: OddAnswers("close"), "connection failed", id="nothing"),
        pytest.param(lambda: FaultyProbeTarget(stall=True), "no answer within 1s", id="stall"),
    ],
)
def test_a_probe_that_fails_lets_the_hubs_record_decide(
    w: Workloads,
    tokens: ProbeTokens,
    answer: Callable[[], FaultyProbeTarget | OddAnswers],
    reason: str,
) -> None:
    with answer() as odd:
        activity = probe(w, tokens, "quiet", locate=through_proxy(odd.url), timeout=1.0)
        assert odd.requests >= 1
    assert activity.failure is not None
    assert reason in activity.failure
    found = judge(w, "quiet", activity, ActivitySettings(no_sessions=NoSessions.IDLE))
    assert (found.source, found.idle_since) == ("hub", None)
    assert found.fell_back is not None


def test_probes_at_the_route_target_move_no_activity_anywhere(
    w: Workloads, tokens: ProbeTokens
) -> None:
    """``/api/status``, the proxy's route and the hub's record: all still after probes."""
    status, route, hub = (
        w.status_activity("quiet"),
        w.route_activity("quiet"),
        w.hub_activity("quiet"),
    )
    for _ in range(3):
        assert probe(w, tokens, "quiet", CPU_ON).failure is None
    time.sleep(ACTIVITY_SETTLES)  # the hub copies route activity every second here
    assert w.route_activity("quiet") == route
    assert w.hub_activity("quiet") == hub
    assert w.status_activity("quiet") == status


def test_probes_through_the_proxy_move_the_route_and_the_hubs_record(
    w: Workloads, tokens: ProbeTokens
) -> None:
    """The measurement behind ``proxy_routes``: configurable-http-proxy records every
    proxied request answered below 300 as route activity, and the hub copies it into the
    server's ``last_activity``; ``no_track_activity`` keeps only the server's own still."""
    status, route, hub = (
        w.status_activity("empty"),
        w.route_activity("empty"),
        w.hub_activity("empty"),
    )
    sent = time.time()
    assert probe(w, tokens, "empty", locate=through_proxy(w.su.public_url)).failure is None
    time.sleep(ACTIVITY_SETTLES)
    assert w.route_activity("empty") > route
    assert w.route_activity("empty").timestamp() >= sent - 1
    assert w.hub_activity("empty") > hub
    assert w.status_activity("empty") == status
