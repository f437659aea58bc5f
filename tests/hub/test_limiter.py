"""The in-flight limiter: pure arithmetic on probe latencies, action durations and times."""

from __future__ import annotations

import pytest

from idle_cull.hub.limiter import (
    SURVEY_STALLS,
    SURVEY_TUNING,
    InFlightLimiter,
    LimiterTuning,
    StallRelease,
)

TUNING = LimiterTuning(quick=0.005, slow=0.030, decrease=0.5, probe_every=0.1, smoothing=0.5)
QUICK, MIDDLING, SLOW = 0.002, 0.015, 0.200


def limiter(ceiling: int = 10, initial: int = 1) -> InFlightLimiter:
    return InFlightLimiter(ceiling, TUNING, initial=initial)


def test_starts_at_one_and_quick_probes_raise_the_limit_up_to_the_ceiling() -> None:
    lim = limiter(ceiling=4)
    assert lim.limit == 1
    for expected in (2, 3, 4, 4, 4):
        lim.probe_result(QUICK, in_flight=lim.limit, waiting=True)
        assert lim.limit == expected
    assert lim.highest == 4


def test_a_limit_not_in_use_does_not_grow() -> None:
    lim = limiter(initial=4)
    lim.probe_result(QUICK, in_flight=2, waiting=True)  # two slots free: nothing learnt
    assert lim.limit == 4
    lim.probe_result(QUICK, in_flight=4, waiting=False)  # nothing left to start
    assert lim.limit == 4
    lim.probe_result(QUICK, in_flight=3, waiting=True)  # one free slot: pacing fills it
    assert lim.limit == 5


@pytest.mark.parametrize(
    ("latency", "expected"),
    [
        pytest.param(SLOW, 4, id="slow-probe-halves"),
        pytest.param(None, 4, id="failed-probe-counts-as-slow"),
        pytest.param(MIDDLING, 8, id="in-between-holds"),
        pytest.param(0.030, 8, id="exactly-slow-holds"),
        pytest.param(0.005, 8, id="exactly-quick-holds"),
    ],
)
def test_slow_or_failed_probes_cut_the_limit(latency: float | None, expected: int) -> None:
    lim = limiter(initial=8)
    lim.probe_result(latency, in_flight=8, waiting=True)
    assert lim.limit == expected


def test_the_limit_never_drops_below_one_and_recovers_one_step_at_a_time() -> None:
    lim = limiter(initial=2)
    for _ in range(5):
        lim.probe_result(SLOW, in_flight=2, waiting=True)
    assert lim.limit == 1
    lim.probe_result(QUICK, in_flight=1, waiting=True)
    assert lim.limit == 2


def test_a_decrease_then_an_increase_lands_on_whole_steps() -> None:
    lim = InFlightLimiter(10, LimiterTuning(decrease=0.75), initial=9)
    lim.probe_result(SLOW, in_flight=9, waiting=True)
    assert lim.limit == 6  # 6.75
    lim.probe_result(QUICK, in_flight=6, waiting=True)
    assert lim.limit == 7


def test_no_slot_means_no_start_and_a_free_slot_means_start_now_without_history() -> None:
    lim = limiter(initial=2)
    assert lim.wait_before_start(0.0, in_flight=0) == 0.0
    assert lim.wait_before_start(0.0, in_flight=2) is None


def test_starts_are_spread_over_the_typical_action_duration() -> None:
    lim = limiter(initial=4)
    lim.action_finished(0.8)  # typical 0.8 s, limit 4: one start every 0.2 s at most
    assert lim.spacing == pytest.approx(0.2)
    lim.started(10.0)
    assert lim.wait_before_start(10.05, in_flight=1) == pytest.approx(0.15)
    assert lim.wait_before_start(10.3, in_flight=1) == 0.0
    # with nothing in flight there is no burst to spread
    assert lim.wait_before_start(10.05, in_flight=0) == 0.0


def test_the_typical_duration_is_a_moving_average() -> None:
    lim = limiter(initial=1)
    lim.action_finished(1.0)
    lim.action_finished(0.0)  # smoothing 0.5
    assert lim.spacing == pytest.approx(0.5)
    lim.action_finished(-1.0)  # a clock step backwards counts as 0
    assert lim.spacing == pytest.approx(0.25)


def test_probes_are_due_every_probe_interval_from_the_first_question() -> None:
    lim = limiter()
    assert lim.until_probe(5.0) == 0.1
    assert not lim.probe_due(5.0)  # schedules the first one
    assert lim.until_probe(5.04) == pytest.approx(0.06)
    assert not lim.probe_due(5.05)
    assert lim.probe_due(5.1)
    assert not lim.probe_due(5.15)
    assert lim.probe_due(5.2)
    assert lim.until_probe(5.5) == 0.0


def test_a_ceiling_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        InFlightLimiter(0)
    assert InFlightLimiter(3, initial=7).limit == 3


# --- stalled probes (the survey of --activity-source=server) ------------------------------

STALLS = StallRelease(cap=3, floor=1.0, factor=10.0)


@pytest.mark.parametrize(
    ("typical", "after"),
    [
        pytest.param(None, 1.0, id="no-history-the-floor"),
        pytest.param(0.05, 1.0, id="quick-probes-the-floor"),
        pytest.param(0.3, 3.0, id="slow-probes-ten-times-their-duration"),
    ],
)
def test_a_probe_is_stalled_after_the_floor_or_ten_typical_probes(
    typical: float | None, after: float
) -> None:
    assert STALLS.after(typical) == pytest.approx(after)


@pytest.mark.parametrize(
    ("ages", "released", "slow", "due"),
    [
        pytest.param([0.1, 0.2, 0.5], 0, False, 0, id="none-old-enough"),
        pytest.param([1.0, 0.2, 2.5], 0, False, 2, id="exactly-at-the-limit-counts"),
        pytest.param([4.0, 3.0, 2.0, 1.5], 0, False, 3, id="never-more-than-the-cap"),
        pytest.param([4.0, 3.0], 2, False, 1, id="the-cap-counts-those-already-released"),
        pytest.param([4.0, 3.0], 3, False, 0, id="cap-reached"),
        pytest.param([4.0, 3.0], 0, True, 0, id="a-slow-hub-may-be-the-cause"),
    ],
)
def test_stalled_probes_are_released_within_the_cap_while_the_hub_is_quick(
    ages: list[float], released: int, slow: bool, due: int
) -> None:
    assert STALLS.due(ages, released, 0.05, hub_slow=slow) == due


@pytest.mark.parametrize(
    ("ages", "released", "slow", "wake"),
    [
        pytest.param([0.25, 0.5], 0, False, 0.5, id="when-the-oldest-becomes-due"),
        pytest.param([], 0, False, None, id="nothing-counted"),
        pytest.param([0.5], 3, False, None, id="cap-reached"),
        pytest.param([0.5], 0, True, None, id="hub-slow-the-next-probe-wakes"),
    ],
)
def test_the_dispatcher_is_woken_when_the_next_probe_may_be_released(
    ages: list[float], released: int, slow: bool, wake: float | None
) -> None:
    assert STALLS.next_check(ages, released, None, hub_slow=slow) == wake


def test_the_limiter_says_whether_its_latest_probe_was_slow() -> None:
    lim = limiter()
    seen = [lim.hub_slow]  # nothing measured yet: not slow
    for latency in (SLOW, MIDDLING, None):
        lim.probe_result(latency, in_flight=1, waiting=True)
        seen.append(lim.hub_slow)
    assert seen == [False, True, False, True]


def test_the_measured_marks_and_the_documented_cap() -> None:
    """The actions' marks (section 5), the survey's (section 7: the same values, measured
    again for probes) and the stall cap that docs and --concurrency's help state."""
    assert (LimiterTuning().quick, LimiterTuning().slow) == (0.005, 0.030)
    assert (SURVEY_TUNING.quick, SURVEY_TUNING.slow) == (0.005, 0.030)
    assert SURVEY_STALLS.cap == 100
