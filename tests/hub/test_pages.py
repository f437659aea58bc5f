"""The page plan and its refusals (``idle_cull.hub.pages``) over plain ``fetch`` functions.

No HTTP here: a fetch is a function of ``(offset, limit)`` returning a ``UserPage``,
so what is asked for and in what order is visible without a mock hub.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from idle_cull.errors import HubProtocolError
from idle_cull.hub.pages import (
    MAX_LISTING_OFFSET,
    Fetch,
    UserPage,
    follow_pages,
    next_offset,
    paced,
    page_plan,
)
from tests.support.emulated_hub import hub_of_users


def paged(
    offset: int, limit: int, total: int | None, following: object, items: list[Any] | None = None
) -> UserPage:
    """A page as hub 2.0+ answers it; ``following`` is ``_pagination.next``."""
    pagination = {"offset": offset, "limit": limit, "total": total, "next": following}
    return UserPage(items if items is not None else [f"u{offset}"], offset, limit, pagination)


def nxt(offset: int, limit: int = 10) -> dict[str, Any]:
    return {"offset": offset, "limit": limit, "url": "http://elsewhere/ignored"}


class Hub:
    """A fetch over ``total`` numbered users in pages of at most ``max_limit``."""

    def __init__(self, total: int, max_limit: int = 10) -> None:
        self.total = total
        self.max_limit = max_limit
        self.asked: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def __call__(self, offset: int, limit: int) -> UserPage:
        with self.lock:
            self.asked.append((offset, limit))
        size = min(limit or self.max_limit, self.max_limit)
        end = min(offset + size, self.total)
        following = nxt(end, size) if end < self.total else None
        page = paged(offset, size, self.total, following, list(range(offset, end)))
        return replace(page, received=time.monotonic())


def listed(fetch: Fetch, limit: int) -> list[list[Any]]:
    """Every page's records as the pass reads them: the first, then each ``next`` followed."""
    first = fetch(0, limit)
    return [first.items, *follow_pages(fetch, first)]


# -- the plan ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        pytest.param(paged(0, 10, 35, nxt(10)), range(10, 35, 10), id="from-limit-and-total"),
        pytest.param(paged(0, 0, 35, nxt(10, 7)), range(10, 35, 7), id="limit-from-next"),
        pytest.param(paged(0, 10, None, nxt(10)), None, id="no-total-follow-one-by-one"),
        pytest.param(paged(0, 10, 5, None), None, id="last-page"),
        pytest.param(UserPage(["a"], 0, 0, None), None, id="plain-list-of-an-old-hub"),
    ],
)
def test_page_plan(first: UserPage, expected: range | None) -> None:
    assert page_plan(first) == expected


def test_the_plan_uses_the_hubs_clamped_page_size_not_the_one_asked_for() -> None:
    # Asked for 500; the hub clamped to 200 and says so in its _pagination.
    first = paged(0, 200, 450, nxt(200, 200))
    first = UserPage(first.items, 0, 500, first.pagination)
    assert page_plan(first) == range(200, 450, 200)


# -- the refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "message"),
    [
        pytest.param(paged(20, 10, 50, nxt(20)), "does not advance", id="same-offset"),
        pytest.param(paged(20, 10, 50, nxt(5)), r"offset 20 -> 5", id="backwards"),
        pytest.param(paged(0, 10, 10, nxt(10)), "past its own total", id="past-total"),
        pytest.param(paged(0, 10, None, nxt(MAX_LISTING_OFFSET + 1)), "10,000,000", id="cap"),
        pytest.param(paged(0, 10, 50, "10"), "not an object", id="next-not-an-object"),
        pytest.param(paged(0, 10, 50, {"limit": 10}), "no usable offset", id="no-offset"),
    ],
)
def test_a_pagination_that_would_loop_is_refused(page: UserPage, message: str) -> None:
    with pytest.raises(HubProtocolError, match=message):
        next_offset(page)


def test_the_offset_cap_itself_is_allowed() -> None:
    assert next_offset(paged(0, 10, None, nxt(MAX_LISTING_OFFSET))) == (MAX_LISTING_OFFSET, 10)


def test_the_next_limit_falls_back_to_the_one_asked_for() -> None:
    page = paged(0, 25, 100, {"offset": 25})
    assert next_offset(page) == (25, 25)


def test_follow_pages_stops_at_a_next_that_goes_back() -> None:
    answers = {10: paged(10, 10, 100, nxt(10))}
    pages = follow_pages(lambda offset, _limit: answers[offset], paged(0, 10, 100, nxt(10)))
    assert next(pages) == ["u10"]
    with pytest.raises(HubProtocolError, match=r"offset 10 -> 10"):
        next(pages)


# -- the listing ------------------------------------------------------------------------


def test_every_user_once_with_the_first_page_first() -> None:
    hub = Hub(95)
    pages = listed(hub, 10)
    assert pages[0] == list(range(10))
    assert sorted(u for p in pages for u in p) == list(range(95))
    assert sorted(hub.asked) == [(offset, 10) for offset in range(0, 95, 10)]


def test_an_old_hubs_plain_list_is_one_page_and_one_request() -> None:
    asked: list[tuple[int, int]] = []

    def fetch(offset: int, limit: int) -> UserPage:
        asked.append((offset, limit))
        return UserPage(["a", "b"], offset, limit, None)

    assert listed(fetch, 50) == [["a", "b"]]
    assert asked == [(0, 50)]


def test_without_a_total_pages_are_followed_one_by_one() -> None:
    hub = Hub(25)

    def fetch(offset: int, limit: int) -> UserPage:
        page = hub(offset, limit)
        pagination = {**(page.pagination or {}), "total": None}
        return UserPage(page.items, offset, limit, pagination)

    pages = listed(fetch, 10)
    assert pages == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert hub.asked == [(0, 10), (10, 10), (20, 10)]


def test_a_list_that_grew_while_paging_is_followed_to_its_end() -> None:
    hub = Hub(30)

    def fetch(offset: int, limit: int) -> UserPage:
        if offset >= 10:
            hub.total = 45  # users were added after the first page
        return hub(offset, limit)

    pages = listed(fetch, 10)
    assert sorted(u for p in pages for u in p) == list(range(45))


class FakeTime:
    """A clock that only moves when told to: by a fetch (the hub's time) or by a sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.mark.parametrize(
    ("page_seconds", "judging_seconds", "share", "gaps"),
    [
        # the first page is asked for at once; each later one after share x the last page
        pytest.param([0.1, 0.2, 0.1], [0, 0], 0.2, [0.02, 0.04], id="share of each page"),
        # our own work on a page counts towards the gap: no needless waiting
        pytest.param([0.1, 0.1], [0.005], 0.2, [0.015], id="judging counts"),
        pytest.param([0.1, 0.1], [0.05], 0.2, [], id="judging longer than the gap"),
        pytest.param([0.1, 0.1, 0.1], [0, 0], 0.0, [], id="share 0: back to back"),
    ],
)
def test_paced_leaves_the_hub_a_share_of_each_pages_time(
    page_seconds: list[float], judging_seconds: list[float], share: float, gaps: list[float]
) -> None:
    time_ = FakeTime()
    durations = iter(page_seconds)

    hub = hub_of_users()

    def fetch(offset: int, limit: int) -> UserPage:
        time_.now += next(durations)
        return hub.user_page(None, offset, limit)

    fetch_paced = paced(fetch, share, clock=time_.clock, sleep=time_.sleep)
    fetch_paced(0, 1)
    for offset, judging in enumerate(judging_seconds, start=1):
        time_.now += judging
        fetch_paced(offset, 1)
    assert time_.sleeps == gaps
