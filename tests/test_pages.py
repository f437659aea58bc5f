"""The page plan and its refusals (``idle_cull.hub.pages``) over plain ``fetch`` functions.

No HTTP here: a fetch is a function of ``(offset, limit)`` returning a ``UserPage``,
so what is asked for and in what order is visible without a mock hub.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import replace
from itertools import islice
from typing import Any, TypeVar

import pytest

from idle_cull.errors import HubProtocolError
from idle_cull.hub.pages import (
    MAX_LISTING_OFFSET,
    UserPage,
    follow_pages,
    list_pages,
    next_offset,
    page_plan,
)

T = TypeVar("T")


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


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-pages") as executor:
        yield executor


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


@pytest.mark.parametrize(
    "bad", [pytest.param(nxt(30), id="not-advancing"), pytest.param(nxt(99), id="past-total")]
)
def test_a_planned_page_with_a_looping_next_is_refused(
    pool: ThreadPoolExecutor, bad: dict[str, Any]
) -> None:
    hub = Hub(50)

    def fetch(offset: int, limit: int) -> UserPage:
        page = hub(offset, limit)
        return paged(30, 10, 50, bad) if offset == 30 else page

    with pytest.raises(HubProtocolError, match="refusing to loop"):
        list(islice(list_pages(fetch, 10, executor=pool, max_in_flight=2), 20))


# -- the listing ------------------------------------------------------------------------


def test_every_user_once_with_the_first_page_first(pool: ThreadPoolExecutor) -> None:
    hub = Hub(95)
    pages = list(list_pages(hub, 10, executor=pool, max_in_flight=3))
    assert pages[0] == list(range(10))
    assert sorted(u for p in pages for u in p) == list(range(95))
    assert sorted(hub.asked) == [(offset, 10) for offset in range(0, 95, 10)]


def test_an_old_hubs_plain_list_is_one_page_and_one_request(pool: ThreadPoolExecutor) -> None:
    asked: list[tuple[int, int]] = []

    def fetch(offset: int, limit: int) -> UserPage:
        asked.append((offset, limit))
        return UserPage(["a", "b"], offset, limit, None)

    assert list(list_pages(fetch, 50, executor=pool, max_in_flight=4)) == [["a", "b"]]
    assert asked == [(0, 50)]


def test_without_a_total_pages_are_followed_one_by_one(pool: ThreadPoolExecutor) -> None:
    hub = Hub(25)

    def fetch(offset: int, limit: int) -> UserPage:
        page = hub(offset, limit)
        pagination = {**(page.pagination or {}), "total": None}
        return UserPage(page.items, offset, limit, pagination)

    pages = list(list_pages(fetch, 10, executor=pool, max_in_flight=4))
    assert pages == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert hub.asked == [(0, 10), (10, 10), (20, 10)]


def test_pages_come_in_the_order_they_were_answered() -> None:
    """Not offset order: the later copy of a user listed twice must come last."""
    hub = Hub(30)
    release = {10: threading.Event(), 20: threading.Event()}

    def fetch(offset: int, limit: int) -> UserPage:
        if offset == 10:
            release[10].wait(5)  # answered after offset 20
        page = hub(offset, limit)
        if offset == 20:
            release[10].set()
        return page

    with ThreadPoolExecutor(max_workers=2) as pool:
        pages = list(list_pages(fetch, 10, executor=pool, max_in_flight=2))
    assert [p[0] for p in pages] == [0, 20, 10]


def test_a_list_that_grew_while_paging_is_followed_to_its_end(pool: ThreadPoolExecutor) -> None:
    hub = Hub(30)

    def fetch(offset: int, limit: int) -> UserPage:
        if offset >= 10:
            hub.total = 45  # users were added after the first page
        return hub(offset, limit)

    pages = list(list_pages(fetch, 10, executor=pool, max_in_flight=2))
    assert sorted(u for p in pages for u in p) == list(range(45))


def test_at_most_max_in_flight_pages_are_requested_at_once() -> None:
    hub = Hub(200)
    running = 0
    most = 0
    lock = threading.Lock()

    def fetch(offset: int, limit: int) -> UserPage:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            threading.Event().wait(0.002)
            return hub(offset, limit)
        finally:
            with lock:
                running -= 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        pages = list(list_pages(fetch, 10, executor=pool, max_in_flight=3))
    assert len(pages) == 20
    assert most <= 3


class StallingPool(Executor):
    """Runs the first submitted call at once; every later one stays pending forever."""

    def __init__(self) -> None:
        self.futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        if not self.futures:
            future.set_result(fn(*args, **kwargs))
        self.futures.append(future)
        return future


def test_closing_the_listing_cancels_the_pages_not_yet_started() -> None:
    hub = Hub(100)
    pool = StallingPool()
    pages = list_pages(hub, 10, executor=pool, max_in_flight=4)
    assert next(pages) == list(range(10))
    assert next(pages) == list(range(10, 20))
    pages.close()
    assert len(pool.futures) == 5  # four in flight, one more after the first answer
    assert [f.cancelled() for f in pool.futures] == [False, True, True, True, True]
