"""Concurrent listing (``pages.list_pages`` over ``HubClient.user_page``) against a ``responses`` hub.

The emulated hub serves a population of users (``HubUsers``) the way JupyterHub's
``UserListAPIHandler`` does: it clamps ``limit`` to its maximum, counts ``total`` over
*active* users for ``state=ready`` and filters ready users only after offset/limit (so
pages can be short or empty while ``next`` is set).
Results are checked against the sequential listing (``pages.follow_pages``). Pages come in the order
the hub answered them, so most tests compare them regardless of order.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from functools import partial
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from idle_cull.errors import HubAuthError, HubProtocolError
from idle_cull.hub.client import PAGINATION_MEDIA_TYPE, HubClient
from idle_cull.hub.pages import follow_pages, list_pages
from idle_cull.hub.retry import RetryPolicy
from tests.support.emulated_hub import URL, EmulatedHub, HubUser, HubUsers, json_text

USERS = f"{URL}/users"
TOKEN = "s3cr3t-T0KEN-pages"
FAST = RetryPolicy(attempts=2, initial_wait=0, max_wait=0, max_retry_after=0)
INTERNAL = "http://internal:8081/hub/api"  # what the hub writes in next: not our URL
T = TypeVar("T")

Answer = tuple[int, dict[str, str], str]


def names(pages: list[list[Any]]) -> list[str]:
    return [u["name"] for p in pages for u in p]


def same_pages(pages: list[list[Any]], expected: list[list[Any]]) -> bool:
    """The same pages, in any order (concurrent pages come in the order of the answers)."""
    return sorted(map(json.dumps, pages)) == sorted(map(json.dumps, expected))


def users(count: int, *, ready: Callable[[int], bool] = lambda i: True) -> list[HubUser]:
    return [HubUser(f"user-{i:04d}", ready=ready(i)) for i in range(count)]


def serve(emulated_hub: EmulatedHub, population: list[HubUser], **options: Any) -> HubUsers:
    """``population`` listed by the emulated hub, which names its internal host in next."""
    hub = HubUsers(population, advertised_url=INTERNAL, **options)
    emulated_hub.serve_population(hub)
    return hub


@pytest.fixture
def client() -> Iterator[HubClient]:
    hub_client = HubClient(URL, TOKEN, retry=FAST, pool_size=8, sleep=lambda _: None)
    yield hub_client
    hub_client.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="test-pages") as executor:
        yield executor


def concurrent_pages(
    client: HubClient,
    executor: Executor,
    state: str | None,
    page_size: int = 0,
    max_in_flight: int = 4,
) -> list[list[Any]]:
    return list(
        list_pages(
            partial(client.user_page, state),
            page_size,
            executor=executor,
            max_in_flight=max_in_flight,
        )
    )


def sequential_pages(
    hub: HubUsers, client: HubClient, state: str | None, page_size: int = 0
) -> list[list[Any]]:
    """What the sequential listing yields (its requests are dropped from ``hub.calls``)."""
    before = len(hub.calls)
    fetch = partial(client.user_page, state)
    first = fetch(0, page_size)
    pages = [first.items, *follow_pages(fetch, first)]
    del hub.calls[before:]
    return pages


# -- same pages as the sequential listing ----------------------------------------------


@pytest.mark.parametrize(
    ("count", "page_size", "max_in_flight"),
    [
        pytest.param(0, 5, 4, id="empty-hub"),
        pytest.param(1, 5, 4, id="one-user"),
        pytest.param(5, 5, 4, id="exactly-one-page"),
        pytest.param(6, 5, 4, id="one-more-than-a-page"),
        pytest.param(23, 5, 4, id="window-smaller-than-pages"),
        pytest.param(23, 5, 1, id="window-of-one"),
        pytest.param(23, 5, 50, id="window-larger-than-pages"),
        pytest.param(120, 0, 3, id="hub-default-page-size"),
    ],
)
def test_every_user_once_and_the_same_pages_as_sequential_paging(
    emulated_hub: EmulatedHub, client: HubClient, count: int, page_size: int, max_in_flight: int
) -> None:
    hub = serve(emulated_hub, users(count))
    expected = sequential_pages(hub, client, "ready", page_size)

    with ThreadPoolExecutor(max_workers=4) as pool:
        pages = concurrent_pages(client, pool, "ready", page_size, max_in_flight)

    assert same_pages(pages, expected)
    assert sorted(names(pages)) == [u.name for u in hub.users]
    assert pages[:1] == expected[:1]  # the first page comes first: it plans the others
    size = page_size or hub.default_limit
    assert hub.offsets() == list(range(0, max(count, 1), size))


def test_later_pages_carry_state_limit_and_the_pagination_accept_header(
    emulated_hub: EmulatedHub, client: HubClient, pool: ThreadPoolExecutor
) -> None:
    hub = serve(emulated_hub, users(12))
    concurrent_pages(client, pool, "inactive", page_size=0, max_in_flight=2)
    # page_size 0: no limit on the first request; the hub's default (from the first
    # page's _pagination.limit) on the later ones
    assert hub.calls[0] == {"offset": "0", "state": "inactive"}
    for call in emulated_hub.calls:
        assert call.request.headers["Accept"] == PAGINATION_MEDIA_TYPE
        assert urlsplit(str(call.request.url)).netloc == "hub.test:8081"


def test_page_size_comes_from_the_first_pages_limit_after_the_hubs_clamp(
    emulated_hub: EmulatedHub, client: HubClient, pool: ThreadPoolExecutor
) -> None:
    hub = serve(emulated_hub, users(10), max_limit=4)  # like api_page_max_limit=4
    pages = concurrent_pages(client, pool, "ready", page_size=500)
    assert sorted(names(pages)) == [u.name for u in hub.users]
    assert sorted((c["offset"], c["limit"]) for c in hub.calls) == [
        ("0", "500"),
        ("4", "4"),
        ("8", "4"),
    ]


def test_ready_pages_short_or_empty_mid_list_still_reach_every_ready_user(
    emulated_hub: EmulatedHub, client: HubClient, pool: ThreadPoolExecutor
) -> None:
    # total counts active users; only every fifth is ready, and users 5-14 none at all.
    population = users(40, ready=lambda i: i % 5 == 0 and not 5 <= i < 15)
    hub = serve(emulated_hub, population)
    expected = sequential_pages(hub, client, "ready", 5)

    pages = concurrent_pages(client, pool, "ready", 5)

    assert same_pages(pages, expected)
    assert [] in pages  # empty pages mid-list did not end the listing
    assert sorted(names(pages)) == [u.name for u in population if u.ready]
    assert hub.offsets() == list(range(0, 40, 5))  # offsets from total (active), not ready


def test_total_of_active_users_covers_users_past_the_ready_ones(
    emulated_hub: EmulatedHub, client: HubClient, pool: ThreadPoolExecutor
) -> None:
    # Only the last active user is ready: a page count from len(items) would miss it.
    population = users(13, ready=lambda i: i == 12)
    serve(emulated_hub, population)
    assert names(concurrent_pages(client, pool, "ready", 4)) == ["user-0012"]


def test_plain_list_from_a_hub_before_2_0_is_one_page(
    emulated_hub: EmulatedHub, client: HubClient, pool: ThreadPoolExecutor
) -> None:
    everyone = [u.record() for u in users(3)]
    emulated_hub.get(USERS, json=everyone)
    assert concurrent_pages(client, pool, None, 2) == [everyone]
    assert len(emulated_hub.calls) == 1


def test_pages_come_in_the_order_the_hub_answered_them(
    emulated_hub: EmulatedHub, client: HubClient, pool: ThreadPoolExecutor
) -> None:
    # Offset 2 answers 0.3 s late, after offset 4: its page comes after, as it would in
    # sequential paging had it been read then. A user listed twice (the list shifted while
    # paging) thus comes last in its fresher copy, the one the runner keeps.
    def slow_offset_2(params: dict[str, str]) -> None:
        if params["offset"] == "2":
            time.sleep(0.3)

    serve(emulated_hub, users(6), before_answer=slow_offset_2)
    pages = concurrent_pages(client, pool, "ready", page_size=2, max_in_flight=2)
    assert [[u["name"] for u in p] for p in pages] == [
        ["user-0000", "user-0001"],
        ["user-0004", "user-0005"],
        ["user-0002", "user-0003"],
    ]


# -- bounds -----------------------------------------------------------------------------


def test_requests_really_overlap_and_never_exceed_max_in_flight(
    emulated_hub: EmulatedHub, client: HubClient, pool: ThreadPoolExecutor
) -> None:
    # The first three later pages meet at a barrier: it breaks (and the test fails) unless
    # three requests are in flight at once. The pool has 8 workers; at most 3 may be used.
    barrier = threading.Barrier(3, timeout=5)
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def before_answer(params: dict[str, str]) -> None:
        nonlocal in_flight, peak
        offset = int(params["offset"])
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            if offset in (2, 4, 6):
                barrier.wait()
        finally:
            with lock:
                in_flight -= 1

    hub = serve(emulated_hub, users(30), before_answer=before_answer)
    pages = concurrent_pages(client, pool, "ready", page_size=2, max_in_flight=3)
    assert sorted(names(pages)) == [u.name for u in hub.users]
    assert peak == 3


class CountingExecutor(Executor):
    """Runs tasks on a real pool and counts how many were submitted."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.submitted = 0
        self.futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.submitted += 1
        future = self.inner.submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future


def test_pages_held_or_requested_never_exceed_the_window(
    emulated_hub: EmulatedHub, client: HubClient, pool: ThreadPoolExecutor
) -> None:
    serve(emulated_hub, users(50))
    executor = CountingExecutor(pool)
    pages = list_pages(partial(client.user_page, "ready"), 2, executor=executor, max_in_flight=3)
    next(pages)  # the first page is fetched directly
    assert executor.submitted == 0
    for consumed, _ in enumerate(pages, start=1):
        # submitted but not yet consumed: at most the window
        assert executor.submitted - consumed <= 3
    assert executor.submitted == 24


class DeferredExecutor(Executor):
    """Never runs anything: futures stay pending, so cancellation is observable."""

    def __init__(self) -> None:
        self.futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        self.futures.append(future)
        return future


def test_a_failed_page_cancels_the_pages_still_queued(
    emulated_hub: EmulatedHub, client: HubClient
) -> None:
    serve(emulated_hub, users(20))
    executor = DeferredExecutor()
    pages = list_pages(partial(client.user_page, "ready"), 2, executor=executor, max_in_flight=4)
    next(pages)  # the first page is fetched directly; the window is submitted after it
    assert executor.futures == []
    outcome: list[BaseException] = []

    def second_page() -> None:
        try:
            next(pages)
        except HubAuthError as error:
            outcome.append(error)

    thread = threading.Thread(target=second_page, daemon=True)
    thread.start()
    thread.join(0.2)  # now blocked on the first future of the window
    assert len(executor.futures) == 4
    executor.futures[0].set_exception(HubAuthError("page refused", status=403))
    thread.join(5)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert all(f.cancelled() for f in executor.futures[1:])


def test_an_error_on_a_later_page_is_raised_and_ends_the_listing(
    emulated_hub: EmulatedHub, client: HubClient, pool: ThreadPoolExecutor
) -> None:
    hub = HubUsers(users(20), advertised_url=INTERNAL)

    def refuse_offset_6(request: requests.PreparedRequest) -> Answer:
        params = dict(parse_qsl(urlsplit(str(request.url)).query))
        if params["offset"] == "6":
            return 403, {}, json_text({"status": 403, "message": "requires any of [list:users]"})
        return 200, {}, json_text(hub.answer(params))

    emulated_hub.add_callback(responses.GET, USERS, callback=refuse_offset_6)
    pages = list_pages(partial(client.user_page, "ready"), 2, executor=pool, max_in_flight=3)
    received: list[list[Any]] = []
    with pytest.raises(HubAuthError, match="list:users"):
        received.extend(pages)
    got = names(received)
    assert got[:2] == ["user-0000", "user-0001"]
    assert "user-0006" not in got
    assert len(got) == len(set(got))


# -- the hub's pagination changes or misbehaves ------------------------------------------


def test_growth_after_the_first_page_is_reached_through_the_last_pages_next(
    emulated_hub: EmulatedHub, client: HubClient, pool: ThreadPoolExecutor
) -> None:
    hub = HubUsers(users(6), advertised_url=INTERNAL)
    grown = threading.Event()

    def grow(params: dict[str, str]) -> None:
        if params["offset"] != "0" and not grown.is_set():
            with hub.lock:
                if not grown.is_set():
                    hub.users.extend(HubUser(f"late-{i}") for i in range(5))
                    grown.set()

    hub.before_answer = grow
    emulated_hub.serve_population(hub)
    pages = concurrent_pages(client, pool, "ready", 2, max_in_flight=2)
    assert sorted(names(pages)) == sorted(u.name for u in hub.users)  # 11; the plan knew of 6
    assert hub.offsets() == [0, 2, 4, 6, 8, 10]


def test_users_removed_while_listing_give_empty_pages_not_errors(
    emulated_hub: EmulatedHub, client: HubClient, pool: ThreadPoolExecutor
) -> None:
    hub = HubUsers(users(10), advertised_url=INTERNAL)

    def shrink(params: dict[str, str]) -> None:
        if params["offset"] == "2":
            with hub.lock:
                del hub.users[4:]

    hub.before_answer = shrink
    emulated_hub.serve_population(hub)
    pages = concurrent_pages(client, pool, "ready", 2, max_in_flight=1)
    assert names(pages)[:2] == ["user-0000", "user-0001"]
    assert set(names(pages)) <= {u.name for u in users(10)}


@pytest.mark.parametrize(
    "pagination_patch",
    [
        pytest.param({"total": None}, id="no-total"),
        pytest.param({"total": "many"}, id="total-not-a-number"),
        pytest.param({"total": -1}, id="negative-total"),
        pytest.param({"total": True}, id="boolean-total"),
        pytest.param({"limit": 0, "next_limit": 0}, id="no-usable-limit"),
    ],
)
def test_without_a_usable_total_or_limit_pages_are_followed_one_by_one(
    emulated_hub: EmulatedHub,
    client: HubClient,
    pool: ThreadPoolExecutor,
    pagination_patch: dict[str, Any],
) -> None:
    def patch(offset: int, body: dict[str, Any]) -> dict[str, Any]:
        pagination = body["_pagination"]
        for key, value in pagination_patch.items():
            if key == "next_limit":
                if pagination["next"]:
                    pagination["next"]["limit"] = value
            else:
                pagination[key] = value
        return body

    hub = serve(emulated_hub, users(7), override=patch)
    executor = CountingExecutor(pool)
    pages = concurrent_pages(client, executor, "ready", 2)
    assert names(pages) == [u.name for u in hub.users]
    assert executor.submitted == 0  # nothing concurrent: the sequential way


@pytest.mark.parametrize(
    ("bad_offset", "next_offset"),
    [
        pytest.param(0, 0, id="first-page-same-offset"),
        pytest.param(0, -3, id="first-page-backwards"),
        pytest.param(4, 4, id="middle-page-same-offset"),
        pytest.param(8, 2, id="last-page-backwards"),
    ],
)
def test_a_next_that_does_not_advance_is_refused_on_any_page(
    emulated_hub: EmulatedHub,
    client: HubClient,
    pool: ThreadPoolExecutor,
    bad_offset: int,
    next_offset: int,
) -> None:
    def patch(offset: int, body: dict[str, Any]) -> dict[str, Any]:
        if offset == bad_offset:
            body["_pagination"]["next"] = {"offset": next_offset, "limit": 2, "url": "x"}
        return body

    hub = serve(emulated_hub, users(10), override=patch)
    with pytest.raises(HubProtocolError, match="does not advance"):
        # islice: a regression must fail here, not loop until the suite's timeout
        list(
            islice(
                list_pages(partial(client.user_page, "ready"), 2, executor=pool, max_in_flight=3),
                50,
            )
        )
    assert len(hub.calls) < 50
