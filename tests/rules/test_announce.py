"""Which upcoming culls a pass announces (``idle_cull/announce.py``): each one once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idle_cull.rules.announce import announce_now, cull_time, notices_due, slot_of
from idle_cull.rules.policy import Upcoming

UTC = timezone.utc
MINUTE = 60.0
INTERVAL = 10 * MINUTE
WINDOW = 30 * MINUTE
GRID = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # on the 10-minute grid


def upcoming(last_activity: datetime, now: datetime, limit: float = 3600.0) -> Upcoming:
    idle = (now - last_activity).total_seconds()
    return Upcoming("ann", "", last_activity, idle, limit, "--timeout")


def test_the_cull_time_is_counted_from_the_record_not_from_now() -> None:
    last = GRID - timedelta(minutes=40)
    for now in (GRID, GRID + timedelta(minutes=7)):
        assert cull_time(upcoming(last, now), now) == last + timedelta(hours=1)


def test_the_slot_is_the_grid_point_the_pass_was_scheduled_for() -> None:
    assert slot_of(GRID + timedelta(minutes=9, seconds=59), INTERVAL) == GRID.timestamp()
    assert slot_of(GRID + timedelta(minutes=10), INTERVAL) == GRID.timestamp() + INTERVAL


@pytest.mark.parametrize(
    ("opens_after_grid", "pass_after_grid", "announced"),
    [
        pytest.param(-5 * MINUTE, 0, True, id="opened-since-the-previous-pass"),
        pytest.param(0, 0, True, id="opened-exactly-at-the-grid-point"),
        pytest.param(-10 * MINUTE, 0, False, id="opened-at-the-previous-grid-point"),
        pytest.param(1, 30, False, id="opens-after-this-slot-began"),
        pytest.param(-5 * MINUTE, 9 * MINUTE, True, id="a-late-pass-in-the-same-slot"),
    ],
)
def test_a_cull_is_announced_in_the_slot_its_window_opened_in(
    opens_after_grid: float, pass_after_grid: float, announced: bool
) -> None:
    cull_at = GRID + timedelta(seconds=opens_after_grid + WINDOW)
    now = GRID + timedelta(seconds=pass_after_grid)
    assert announce_now(cull_at, now, WINDOW, INTERVAL) is announced


@given(
    opens=st.floats(min_value=0, max_value=6 * INTERVAL),
    jitter=st.lists(st.floats(min_value=0, max_value=INTERVAL - 1), min_size=12, max_size=12),
)
def test_one_pass_per_slot_announces_each_cull_exactly_once(
    opens: float, jitter: list[float]
) -> None:
    """Passes late by any amount within their slot: exactly one announcement per cull."""
    cull_at = GRID + timedelta(seconds=opens + WINDOW)
    passes = [GRID + timedelta(seconds=k * INTERVAL + j) for k, j in enumerate(jitter)]
    announced = [now for now in passes if announce_now(cull_at, now, WINDOW, INTERVAL)]
    assert len(announced) == 1
    assert (cull_at - announced[0]).total_seconds() <= WINDOW


def test_three_passes_announce_one_upcoming_cull_once() -> None:
    last = GRID - timedelta(minutes=25)  # the 30-minute window of a 1 h limit opens at +5m
    sent = []
    for k in range(3):
        now = GRID + timedelta(minutes=10 * k, seconds=3)
        sent += notices_due([upcoming(last, now)], now, WINDOW, INTERVAL)
    (notice,) = sent
    assert (notice.user, notice.server, notice.rule) == ("ann", "", "--timeout")
    assert notice.cull_at == last + timedelta(hours=1)


def test_activity_makes_a_new_cull_and_a_new_announcement() -> None:
    first = GRID - timedelta(minutes=25)  # window opens at +5m: announced at +10m
    now = GRID + timedelta(minutes=10, seconds=3)
    assert notices_due([upcoming(first, now)], now, WINDOW, INTERVAL)
    again = GRID + timedelta(minutes=47)  # the user came back, then left again
    later = GRID + timedelta(minutes=80, seconds=3)  # its new window opened at +77m
    (notice,) = notices_due([upcoming(again, later)], later, WINDOW, INTERVAL)
    assert notice.cull_at == again + timedelta(hours=1)
