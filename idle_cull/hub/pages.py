"""Paging through ``GET /users``: which offsets to ask for, and when to refuse to go on.

Nothing here speaks HTTP. The listing works over a ``fetch(offset, limit)`` callable
that returns one ``UserPage`` (``HubClient.user_page`` with the state bound), so the
page plan, the refusals and the concurrent window can be tested with plain functions.

The next request is always built from the offset the hub reports, never from its
``next.url`` (that reflects the hub's own view of the request, which is wrong behind
a proxy). A ``next`` that does not advance, points past the hub's own ``total`` or runs
past ``MAX_LISTING_OFFSET`` would loop forever, and a plan from a ``total`` past it would
page for ever concurrently: each is refused with ``HubProtocolError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from itertools import islice
from typing import Any, ParamSpec

from idle_cull.errors import HubProtocolError

__all__ = [
    "MAX_LISTING_OFFSET",
    "Fetch",
    "UserPage",
    "follow_pages",
    "limit_of",
    "list_pages",
    "next_offset",
    "paced",
    "page_plan",
    "total_of",
    "walk_pages",
]

# No hub has ten million users; a pagination that goes on past this is broken.
MAX_LISTING_OFFSET = 10_000_000
# The hub is left idle for this share of a page's time before the next page is asked for.
PAGE_GAP_SHARE = 0.2


@dataclass(frozen=True)
class UserPage:
    """One answer of ``GET /users``: its records and, from hub 2.0 on, its ``_pagination``.

    ``offset`` and ``limit`` are what was asked for (``limit`` 0: the hub's default);
    ``pagination`` is ``None`` for a pre-2.0 hub's plain list; ``received`` is when the
    answer arrived (``time.monotonic``), which orders concurrently fetched pages.
    """

    items: list[Any]
    offset: int
    limit: int
    pagination: Mapping[str, Any] | None
    received: float = 0.0

    @classmethod
    def from_body(cls, body: object, offset: int, limit: int, received: float) -> UserPage:
        """The page in a decoded answer: a plain list (hubs before 2.0) or a page object."""
        if isinstance(body, list):  # hubs before 2.0: the whole list at once
            return cls(body, offset, limit, None, received)
        if not isinstance(body, dict):
            raise HubProtocolError("the user list is neither a list nor a page object")
        items = body.get("items")
        pagination = body.get("_pagination")
        if not isinstance(items, list) or not isinstance(pagination, dict):
            raise HubProtocolError("a user list page lacks 'items' or '_pagination'")
        return cls(items, offset, limit, pagination, received)

    @property
    def following(self) -> object:
        """The hub's ``_pagination.next`` (falsy on the last page and on plain lists)."""
        return None if self.pagination is None else self.pagination.get("next")


P = ParamSpec("P")
Fetch = Callable[[int, int], UserPage]
"""``fetch(offset, limit)``: one page of the listing (``limit`` 0: the hub's default)."""


def total_of(page: UserPage) -> int | None:
    """The hub's ``_pagination.total`` of ``page`` when it is a usable count, else ``None``."""
    return _count((page.pagination or {}).get("total"))


def limit_of(page: UserPage) -> int | None:
    """The hub's own page size for ``page``: ``_pagination.limit``, else ``next.limit``.

    What the hub used after clamping the size asked for to its ``api_page_max_limit``;
    ``None`` when neither is a usable count (or ``page`` is a plain list).
    """
    pagination = page.pagination or {}
    following = page.following
    return _count(pagination.get("limit")) or (
        _count(following.get("limit")) if isinstance(following, dict) else None
    )


def _count(value: object) -> int | None:
    """A non-negative int from JSON, else ``None`` (``True`` is an int in Python, not a count)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def next_offset(page: UserPage) -> tuple[int, int]:
    """``(offset, limit)`` of the page after ``page``, refusing a pagination that loops.

    Only called when ``page`` has a ``next``; its limit falls back to the one asked for.
    """
    following = page.following
    if not isinstance(following, dict):
        raise HubProtocolError("the user list's '_pagination.next' is not an object")
    try:
        offset = int(following["offset"])
        limit = int(following.get("limit") or page.limit)
    except (KeyError, TypeError, ValueError, OverflowError):  # Infinity: OverflowError
        raise HubProtocolError("the user list's '_pagination.next' has no usable offset") from None
    if offset <= page.offset:
        raise HubProtocolError(
            f"the hub's pagination does not advance (offset {page.offset} -> {offset}); "
            "refusing to loop"
        )
    total = total_of(page)
    if total is not None and offset >= total:
        # The hub only offers a next page while offset + limit < total.
        raise HubProtocolError(
            f"the hub's pagination points past its own total (next offset {offset}, "
            f"total {total}); refusing to loop"
        )
    if offset > MAX_LISTING_OFFSET:
        raise HubProtocolError(
            f"the hub's pagination runs past offset {MAX_LISTING_OFFSET:,} without an end; "
            "refusing to loop"
        )
    return offset, limit


def page_plan(first: UserPage) -> range | None:
    """The offsets of every page after ``first``, from its ``_pagination``.

    The hub's own page size (``limit`` after its clamp to ``api_page_max_limit``, never
    the size asked for) and its ``total`` give every later offset. ``None`` when there is
    no next page or no usable ``limit``/``total``: then the pages are followed one by one.
    """
    if not first.following:
        return None
    start, _ = next_offset(first)
    limit = limit_of(first)
    total = total_of(first)
    if not limit or total is None:
        return None
    if total > MAX_LISTING_OFFSET:
        # The sequential path stops at this offset; a plan must not go further.
        raise HubProtocolError(
            f"the hub's pagination claims a total of {total:,} users, more than "
            f"{MAX_LISTING_OFFSET:,}; refusing to plan that many pages"
        )
    return range(start, total, limit)


def follow_pages(fetch: Fetch, page: UserPage) -> Iterator[list[Any]]:
    """The records of the pages after ``page``, one request at a time, following ``next``."""
    for following in walk_pages(fetch, page):
        yield following.items


def walk_pages(fetch: Fetch, page: UserPage) -> Iterator[UserPage]:
    """The pages after ``page``, one request at a time, following ``next``.

    Whole pages, not only their records: what a page says about the listing (its offset,
    the hub's page size and count) is what shows whether the listing was complete.
    """
    while page.following:
        page = fetch(*next_offset(page))
        yield page


def paced(
    fetch: Callable[P, UserPage],
    share: float = PAGE_GAP_SHARE,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Callable[P, UserPage]:
    """``fetch``, leaving the hub idle for ``share`` of each page's time before the next.

    A page holds the hub's only thread for as long as it takes to render (about 135 ms
    for 50 users on a 10,000-user hub on 2 cores), and pages asked for back to back keep
    that thread busy all the time: whatever else arrives meanwhile (a login, a
    single-user server checking a token, the hub's own spawner polls) queues behind
    this page and then behind the next one too. A short gap after each page lets that
    queue drain before we send more, for ``share`` more listing time at most; the time
    the caller spent judging the last page counts towards the gap.
    """
    previous: tuple[float, float] | None = None  # (how long it took, when it ended)

    def fetch_paced(*args: P.args, **kwargs: P.kwargs) -> UserPage:
        nonlocal previous
        if previous is not None:
            took, ended = previous
            gap = took * share - (clock() - ended)
            if gap > 0:
                sleep(gap)
        started = clock()
        page = fetch(*args, **kwargs)
        ended = clock()
        previous = (ended - started, ended)
        return page

    return fetch_paced


def list_pages(
    fetch: Fetch, limit: int = 0, *, executor: Executor, max_in_flight: int
) -> Generator[list[Any], None, None]:
    """Every page's records: the first alone, then the planned ones concurrently.

    With ``state=ready``, ``total`` counts *active* users and ready-filtering happens
    after offset/limit, so the plan still covers every user; pages may come back short
    or empty. At most ``max_in_flight`` pages are requested or held at once on
    ``executor`` (the caller's pool), so memory stays bounded by that window, not by
    the hub's size; closing the generator cancels the pages not yet started.

    Pages are yielded in the order the hub answered them, not in offset order: as with
    sequential paging, a user listed twice (the list shifted while paging) comes last
    in its fresher copy, which is the one the runner keeps. If the list grew meanwhile
    (the highest planned page still has a ``next``), the rest is followed sequentially.
    Hubs before 2.0 answer the whole list at once, as one page.
    """
    first = fetch(0, limit)
    yield first.items
    plan = page_plan(first)
    if plan is None:
        yield from follow_pages(fetch, first)
        return
    offsets = iter(plan)
    pending: set[Future[UserPage]] = set()

    def submit(how_many: int) -> None:
        for offset in islice(offsets, how_many):
            pending.add(executor.submit(fetch, offset, plan.step))

    highest = first
    try:
        submit(max(max_in_flight, 1))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for page in sorted((f.result() for f in done), key=lambda p: p.received):
                if page.following:
                    next_offset(page)  # refused on any page, not only the last one
                highest = max(highest, page, key=lambda p: p.offset)
                submit(1)
                yield page.items
    finally:
        for future in pending:
            future.cancel()
    yield from follow_pages(fetch, highest)
