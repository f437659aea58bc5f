"""The runner's dispatch of actions and surveys: never more in flight than the limiter allows.

Real threads and short sleeps (the actions), a scripted probe: what the hub's
responsiveness says decides how many actions overlap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import cast

import pytest

from idle_cull.command.settings import Settings
from idle_cull.evidence.base import Evidence, Target
from idle_cull.hub.limiter import InFlightLimiter, LimiterTuning, StallRelease
from idle_cull.models import ActionResult, Outcome, Server, User
from idle_cull.rules.evidence import Finding
from idle_cull.rules.policy import Action, CullLimits, ServerDecision
from idle_cull.runner import _run_actions, in_flight, in_listing_order, with_measured_activity

TUNING = LimiterTuning(quick=0.005, slow=0.030, probe_every=0.005)


class Overlap:
    """An action that takes ``seconds`` and records how many ran at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.now = 0
        self.most = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, decision: ServerDecision) -> ActionResult:
        with self._lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        time.sleep(self.seconds)
        with self._lock:
            self.now -= 1
        return ActionResult(Outcome.STOPPED, 1)


def decisions(count: int) -> list[ServerDecision]:
    return [ServerDecision(f"u{i}", "", Action.STOP, "idle") for i in range(count)]


Results = list[tuple[ServerDecision, tuple[Outcome, int, str]]]


def run(probe_latency: float | None, ceiling: int, count: int = 30) -> tuple[Overlap, Results, int]:
    action = Overlap(0.03)
    probes: list[float] = []

    def probe() -> float | None:
        probes.append(time.monotonic())
        return probe_latency

    limiter = InFlightLimiter(ceiling, TUNING)
    with ThreadPoolExecutor(max_workers=ceiling) as pool:
        results = _run_actions(pool, decisions(count), action, limiter=limiter, probe=probe)
    return action, results, len(probes)


def test_a_hub_that_keeps_answering_quickly_gets_up_to_the_ceiling_in_flight() -> None:
    action, results, probes = run(0.001, ceiling=4)
    assert action.calls == 30
    assert {r[1][0] for r in results} == {Outcome.STOPPED}
    assert action.most == 4
    assert probes > 0


def test_a_hub_whose_probes_are_slow_gets_one_action_at_a_time() -> None:
    action, results, _ = run(0.5, ceiling=8)
    assert len(results) == 30
    assert action.most == 1


def test_failed_probes_count_as_a_slow_hub() -> None:
    action, _, _ = run(None, ceiling=8, count=10)
    assert action.most == 1


def test_no_probe_without_actions_in_flight() -> None:
    action, results, probes = run(0.001, ceiling=3, count=0)
    assert results == []
    assert probes == 0
    assert action.calls == 0


class Listing:
    """A lazily read listing that records how far it was read while work was running."""

    def __init__(self, count: int, work: Overlap) -> None:
        self.count = count
        self.work = work
        self.read = 0
        self.ahead = 0  # the most items read beyond those started or finished

    def __iter__(self) -> Iterator[ServerDecision]:
        for decision in decisions(self.count):
            self.read += 1
            self.ahead = max(self.ahead, self.read - self.work.calls)
            yield decision


def test_the_survey_reads_the_listing_only_as_slots_free_up_and_keeps_its_order() -> None:
    """The survey of ``--activity-source=server`` (issue 24) under the actions' limiter:
    the old survey (``pool.map``) read the whole listing before the first probe ended
    and ran ``--concurrency`` at once however slow the hub; this one reads one user
    beyond those submitted, keeps to one survey while the hub is slow, and hands users
    back in listing order."""
    work = Overlap(0.01)
    listing = Listing(20, work)
    limiter = InFlightLimiter(8, TUNING)

    def survey(numbered: tuple[int, ServerDecision]) -> ServerDecision:
        work(numbered[1])
        return numbered[1]

    with ThreadPoolExecutor(max_workers=8) as pool:
        done = in_flight(pool, enumerate(listing), survey, limiter=limiter, probe=lambda: 0.5)
        users = [d.user for d in in_listing_order(done)]
    assert users == [f"u{i}" for i in range(20)]
    assert work.most == 1
    # one submitted whose thread may not have begun yet, and the next one read
    assert listing.ahead <= 2


class SurveyLog:
    """The two calls ``with_measured_activity`` makes of a surveying source, recorded."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def survey(self, target: Target, now: datetime) -> list[Finding]:
        self.asked.append(target.user)
        return []

    def would_survey(self, target: Target) -> None:
        self.asked.append(target.user)


@pytest.mark.parametrize("dry_run", [False, True], ids=["pass", "dry-run"])
def test_an_excluded_users_servers_are_not_surveyed(dry_run: bool) -> None:
    """Issue 24's exclusions "apply as today": nothing a probe finds could stop an
    excluded user's server, and probing it costs the hub a token check and shows up as
    proxy activity; the old survey probed every ready server."""
    now = datetime.now(timezone.utc)
    started = now - timedelta(hours=2)
    server = Server("", True, None, started, started, url="/user/x/")
    settings = Settings(
        url="http://hub.test/hub/api",
        token="t0ken-for-tests",
        limits=CullLimits(timeout=600, exclude_users=("ann",)),
        dry_run=dry_run,
    )
    log = SurveyLog()
    for name in ("ann", "bob"):
        user = User(name, False, None, started, (server,))
        with_measured_activity(user, cast(Evidence, log), settings, now)
    assert log.asked == ["bob"]


class Hangs:
    """Work on items named ``hung*`` waits ``seconds`` (a server that never answers, up to
    its probe's deadline); others take a moment. Records how many hung ones overlapped."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.hung_now = 0
        self.most_hung = 0
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        if not name.startswith("hung"):
            time.sleep(0.005)
            return name
        with self._lock:
            self.hung_now += 1
            self.most_hung = max(self.most_hung, self.hung_now)
        time.sleep(self.seconds)
        with self._lock:
            self.hung_now -= 1
        return name


def test_stalled_items_give_their_slot_up_within_the_cap_and_do_not_slow_the_pacing() -> None:
    """The survey's ``in_flight`` with ``StallRelease`` (issue 24): items that outlast
    the stall limit stop counting against the hub's two slots, at most ``cap`` of them
    at once, and their long durations stay out of the average that spaces starts."""
    stalls = StallRelease(cap=3, floor=0.05, factor=0.0)
    work = Hangs(0.4)
    names = [f"hung{i}" for i in range(12)] + [f"ok{i}" for i in range(20)]
    limiter = InFlightLimiter(2, TUNING, initial=2)
    with ThreadPoolExecutor(max_workers=2 + stalls.cap) as pool:
        done = in_flight(
            pool, iter(names), work, limiter=limiter, probe=lambda: 0.001, stalls=stalls
        )
        finished = sorted(future.result() for _, future in done)
    assert finished == sorted(names)
    assert 2 < work.most_hung <= 2 + stalls.cap
    assert limiter.typical is not None
    assert limiter.typical < 0.1  # the quick items' durations, not the hung ones' 0.4 s


def test_without_stall_release_a_hung_item_holds_its_slot_to_the_end() -> None:
    """The actions (a stop waits on the hub) never give a slot up."""
    work = Hangs(0.1)
    limiter = InFlightLimiter(2, TUNING, initial=2)
    with ThreadPoolExecutor(max_workers=5) as pool:
        done = in_flight(
            pool, iter([f"hung{i}" for i in range(6)]), work, limiter=limiter, probe=lambda: 0.001
        )
        assert len(list(done)) == 6
    assert work.most_hung == 2


@pytest.mark.parametrize(("after_start", "grows"), [(True, True), (False, False)])
def test_the_survey_measures_the_hub_even_when_each_item_ends_within_the_probe_interval(
    after_start: bool, grows: bool
) -> None:
    """Items of 10 ms against a probe interval of 50 ms: without ``probe_after_start``
    nothing is running at the top of the dispatch loop, no probe is ever sent, and the
    limit stays at 1 (what the survey did: one probe at a time through a 2,000-server
    pass); with it (the survey), quick answers raise the limit. The actions keep the old
    schedule."""
    tuning = LimiterTuning(quick=0.005, slow=0.030, probe_every=0.05)
    work = Overlap(0.01)
    limiter = InFlightLimiter(4, tuning)
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = in_flight(
            pool,
            iter(decisions(60)),
            work,
            limiter=limiter,
            probe=lambda: 0.001,
            probe_after_start=after_start,
        )
        assert len(list(done)) == 60
    assert (limiter.highest > 1) is grows
    assert (work.most > 1) is grows
