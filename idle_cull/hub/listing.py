"""Which ``GET /users`` listing a pass asks for: what it must see at the least cost to the hub.

Nothing here speaks HTTP: the listing runs over ``user_page(state, offset, limit)``
(``HubClient.user_page``), so the choice and the page sequence are tested with plain
functions.

A pass that does not delete users needs only users with a ready server, which
``state=ready`` selects (one that does also needs those without any server, and reads
everyone: see ``listing_for``). But the hub pays for that filter on every page: it
joins each user to their servers and groups the whole filtered set again to count it. On a
2,000-user hub with every server running, a 50-user ``state=ready`` page cost the hub
about 60 ms of its only thread, the same page unfiltered about 44 ms
(``tests.benchmarks.pagecost``). So when nearly every user has a server anyway, the
unfiltered listing (with the users without a ready server dropped here, exactly as the
hub's filter would) gives the same users for about a quarter less of the hub's time.
A one-user ``state=ready`` page says how many users have a server (its ``total``);
only when that is many pages does the pass ask for one more one-user page, unfiltered,
to learn how many users there are in all, and switch when the share with a server
is at least ``SWITCH_SHARE``.

Whatever is read, its pages are measured against the hub's own count as they pass
(``completeness``): a listing the hub cut short says so at its end (``ListedPages``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import Any

from idle_cull.hub.completeness import Completeness
from idle_cull.hub.pages import UserPage, page_plan, total_of, walk_pages
from idle_cull.models import User

__all__ = [
    "EVERYONE",
    "READY",
    "READY_AMONG_EVERYONE",
    "READY_OR_INACTIVE",
    "READY_UNLESS_EVERYONE_IS_CHEAPER",
    "SWITCH_MIN_PAGES",
    "SWITCH_SHARE",
    "ListedPages",
    "Listing",
    "listing_for",
    "paginates",
    "prefer_everyone",
    "read_listing",
    "worth_counting_everyone",
]

log = logging.getLogger(__name__)

# Per page, the unfiltered listing cost the hub 0.73-0.82 of a state=ready page for the
# same running users (tests/benchmarks/README.md, "What one listing page costs the
# hub"); below this share of users with a server, its extra pages cost more than that.
SWITCH_SHARE = 0.85
# The switch costs one more one-user request: it pays only when the ready listing is
# long. Shorter listings stay as they are.
SWITCH_MIN_PAGES = 20
# JupyterHub's api_page_default_limit: the page size when a pass asks for none.
HUB_DEFAULT_PAGE_SIZE = 50

UserPageSource = Callable[[str | None, int, int], UserPage]
"""``user_page(state, offset, limit)``: one page of ``GET /users`` (``None``: unfiltered)."""


@dataclass(frozen=True)
class Listing:
    """One listing: the ``state`` asked for, and which users count when the hub did not filter.

    ``keeps_only`` names the hub's filters applied here instead, on an unfiltered
    listing: ``"ready"`` (users with a ready server) and ``"inactive"`` (users without
    any server); empty: every listed user counts.
    """

    state: str | None
    keeps_only: tuple[str, ...] = ()
    may_switch: bool = False  # ask first how many users there are, and list everyone if cheaper

    @property
    def label(self) -> str:
        """How logs and the progress line name it."""
        if self.state:
            return self.state
        if self.keeps_only:
            return f"all, keeping the {' and '.join(self.keeps_only)} ones"
        return "all"

    @property
    def filtered_after_window(self) -> bool:
        """Whether the hub drops records from each page after cutting it (``state=ready``).

        Its pages can then be short or empty while more follow; every other listing's
        pages hold every record of their window.
        """
        return self.state == "ready"

    def keeps(self, user: User) -> bool:
        """Whether ``user`` belongs in this listing: as the hub's filter would decide.

        A user whose servers the token cannot see is kept, so that the pass refuses the
        token for it (``require_visible_fields``) as it would on a filtered page.
        """
        if not self.keeps_only or "servers" in user.hidden:
            return True
        if "ready" in self.keeps_only and any(server.ready for server in user.servers):
            return True
        # A user whose only server is still starting is in neither (the hub lists it as
        # inactive until the server has an address); a pending server keeps its user anyway.
        return "inactive" in self.keeps_only and not user.servers


READY = Listing("ready")
READY_UNLESS_EVERYONE_IS_CHEAPER = Listing("ready", may_switch=True)
EVERYONE = Listing(None)
READY_AMONG_EVERYONE = Listing(None, ("ready",))
READY_OR_INACTIVE = Listing(None, ("ready", "inactive"))


def listing_for(version: tuple[int, ...], cull_users: bool) -> Listing:
    """The listing a pass starts with, by hub release and whether it deletes users.

    Hubs before 1.3 know no state filter and answer everyone. Deleting users needs the
    users with a ready server and those without any server: one unfiltered listing
    holds both in fewer pages than ``state=ready`` and ``state=inactive`` together, each
    page cheaper for the hub (``state=inactive`` joins, groups and counts as well), so
    the pass reads everyone and keeps those two kinds itself.
    """
    if version and version < (1, 3):
        return EVERYONE
    if cull_users:
        return READY_OR_INACTIVE
    if version and version < (2, 0):
        return READY  # no pagination, so no counts: the answer is the whole list
    return READY_UNLESS_EVERYONE_IS_CHEAPER


def paginates(version: tuple[int, ...]) -> bool:
    """Whether a hub of this release answers ``GET /users`` in pages (2.0 and later).

    An unreadable version counts as today's hub, as in ``listing_for``.
    """
    return not version or version >= (2, 0)


def worth_counting_everyone(with_server: int | None, limit: int) -> bool:
    """Whether ``with_server`` users make a ready listing long enough to look for a cheaper one.

    ``limit`` is the page size asked for (0: the hub's default, 50 unless configured).
    """
    pages_of = limit or HUB_DEFAULT_PAGE_SIZE
    return with_server is not None and with_server >= SWITCH_MIN_PAGES * pages_of


def prefer_everyone(with_server: int | None, everyone: int | None) -> bool:
    """Whether listing all ``everyone`` users costs the hub less than the ``with_server`` ones.

    ``with_server`` is the ``state=ready`` listing's ``total`` (users with any server
    record, ready or pending); either count missing or unusable keeps the ready listing.
    """
    if with_server is None or not everyone:
        return False
    return with_server >= SWITCH_SHARE * everyone


class ListedPages(Iterator[list[Any]]):
    """The records of a listing's pages, one page per step; measured as they pass.

    Once exhausted, ``shortfall`` says whether the hub handed over less than it counts.
    """

    def __init__(self, pages: Iterator[UserPage], completeness: Completeness) -> None:
        self._pages = pages
        self.completeness = completeness

    def __next__(self) -> list[Any]:
        page = next(self._pages)
        self.completeness.add(page)
        return page.items

    def shortfall(self) -> str | None:
        """Why the listing read so far is incomplete; ``None`` when it is not."""
        return self.completeness.shortfall()


def read_listing(
    user_page: UserPageSource, planned: Listing, limit: int = 0, *, paginated: bool = True
) -> tuple[Listing, ListedPages]:
    """The listing read (``planned``, or everyone when that costs the hub less) and its pages.

    The first page is asked for at once (the choice needs it); each later one only when
    the caller advances the iterator, done with the last: the hub renders pages on its
    only thread, so a second page in flight, even one asked for early, is served before
    any request of someone else that arrived meanwhile. ``paginated``: the hub's
    release answers in pages (``paginates``), so a plain list from it is a short one.
    """
    listing, first = _first_page(user_page, planned, limit)
    pages = chain([first], walk_pages(partial(user_page, listing.state), first))
    completeness = Completeness(listing.filtered_after_window, paginated)
    return listing, ListedPages(pages, completeness)


def _first_page(
    user_page: UserPageSource, listing: Listing, limit: int
) -> tuple[Listing, UserPage]:
    """The listing to read and its first page."""
    if listing.may_switch:
        listing = _cheaper_listing(user_page, limit)
    first = user_page(listing.state, 0, limit)
    page_plan(first)  # refuses a claimed total past MAX_LISTING_OFFSET at once
    return listing, first


def _cheaper_listing(user_page: UserPageSource, limit: int) -> Listing:
    """``state=ready``, or everyone when that costs the hub less: asked with one-user pages.

    One-user pages carry the hub's counts for little of its time (about 25 ms for
    ``state=ready`` on a 2,000-user hub, against about 55 ms for the first full page,
    which would be the pass's most expensive request).
    """
    with_server = total_of(_count_page(user_page, "ready"))
    if not worth_counting_everyone(with_server, limit):
        return READY
    everyone = total_of(_count_page(user_page, None))
    if not prefer_everyone(with_server, everyone):
        return READY
    log.info(
        "listing all %d users instead of state=ready: %d of them have a server, "
        "and the hub renders unfiltered pages for less",
        everyone,
        with_server,
    )
    return READY_AMONG_EVERYONE


def _count_page(user_page: UserPageSource, state: str | None) -> UserPage:
    """A one-user page, for its ``total``; one past ``MAX_LISTING_OFFSET`` is refused at once."""
    page = user_page(state, 0, 1)
    page_plan(page)
    return page
