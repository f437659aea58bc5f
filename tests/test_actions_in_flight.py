"""The runner's dispatch of actions: never more in flight than the limiter allows.

Real threads and short sleeps (the actions), a scripted probe: what the hub's
responsiveness says decides how many actions overlap.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from idle_cull.hub.limiter import InFlightLimiter, LimiterTuning
from idle_cull.models import ActionResult, Outcome
from idle_cull.rules.policy import Action, ServerDecision
from idle_cull.runner import _run_actions

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
