"""Which listing a pass reads: ``state=ready``, or everyone filtered here when that is cheaper.

The choice is pure (``listing_for``, ``worth_counting_everyone``, ``prefer_everyone``,
``Listing.keeps``), so it is tested from tables; ``read_listing`` is run against a
population of users answered as JupyterHub 6.1 answers ``GET /users``
(``tests.support.emulated_hub.HubUsers``), first as plain calls, then through the real
``HubClient`` on the emulated hub.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from idle_cull.errors import HubProtocolError
from idle_cull.hub.client import HubClient
from idle_cull.hub.listing import (
    EVERYONE,
    READY,
    READY_AMONG_EVERYONE,
    READY_OR_INACTIVE,
    READY_UNLESS_EVERYONE_IS_CHEAPER,
    SWITCH_MIN_PAGES,
    SWITCH_SHARE,
    Listing,
    listing_for,
    prefer_everyone,
    read_listing,
    worth_counting_everyone,
)
from idle_cull.hub.retry import RetryPolicy
from idle_cull.models import User
from tests.support.emulated_hub import TOKEN, URL, EmulatedHub, HubUser, HubUsers
from tests.support.pagination import DEFAULT_PAGE_SIZE

# --- the choice, from tables ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "cull_users", "expected"),
    [
        ((1, 2, 2), False, EVERYONE),  # no state filter before 1.3
        ((1, 2, 2), True, EVERYONE),
        ((1, 3, 0), False, READY),
        ((1, 5, 0), False, READY),  # no pagination before 2.0: no counts to choose by
        ((1, 5, 0), True, READY_OR_INACTIVE),  # one listing instead of ready + inactive
        ((2, 0, 0), False, READY_UNLESS_EVERYONE_IS_CHEAPER),
        ((6, 1, 1), False, READY_UNLESS_EVERYONE_IS_CHEAPER),
        ((6, 1, 1), True, READY_OR_INACTIVE),
        ((), False, READY_UNLESS_EVERYONE_IS_CHEAPER),  # unreadable version: today's hub
    ],
)
def test_the_listing_a_pass_starts_with(
    version: tuple[int, ...], cull_users: bool, expected: Listing
) -> None:
    assert listing_for(version, cull_users) == expected


NO_RETRY = RetryPolicy(attempts=1, initial_wait=0, max_wait=0, max_retry_after=0)
LONG = SWITCH_MIN_PAGES * DEFAULT_PAGE_SIZE


@pytest.mark.parametrize(
    ("with_server", "limit", "worth"),
    [
        (LONG, 0, True),  # 20 pages of the hub's default 50
        (LONG - 1, 0, False),  # one user short
        (100 * LONG, 0, True),
        (LONG, DEFAULT_PAGE_SIZE, True),
        (LONG, 200, False),  # the page size asked for counts
        (20 * 200, 200, True),
        (40, 2, True),
        (39, 2, False),
        (None, 0, False),  # no usable count
    ],
)
def test_only_a_long_ready_listing_is_worth_counting_everyone(
    with_server: int | None, limit: int, worth: bool
) -> None:
    assert worth_counting_everyone(with_server, limit) is worth


@pytest.mark.parametrize(
    ("with_server", "everyone", "prefer"),
    [
        (2000, 2000, True),  # every user has a server: the benchmark's hub
        (1700, 2000, True),  # exactly the share
        (1699, 2000, False),
        (2000, 4000, False),  # half: twice the pages, each cheaper by only a quarter
        (1000, 100_000, False),
        (None, 2000, False),
        (2000, None, False),
        (2000, 0, False),  # a hub that counts nobody is not believed
    ],
)
def test_everyone_is_listed_only_when_nearly_everyone_has_a_server(
    with_server: int | None, everyone: int | None, prefer: bool
) -> None:
    assert SWITCH_SHARE == 0.85  # the table's edges are written for this share
    assert prefer_everyone(with_server, everyone) is prefer


def user(*servers: dict[str, Any], hidden: bool = False) -> User:
    record: dict[str, Any] = {"name": "u", "last_activity": None}
    if not hidden:
        record["servers"] = {s["name"]: s for s in servers}
    return User.from_api(record)


def server(name: str = "", ready: bool = True, pending: str | None = None) -> dict[str, Any]:
    return {"name": name, "ready": ready, "pending": pending, "last_activity": None}


@pytest.mark.parametrize(
    ("listing", "record", "kept"),
    [
        (READY, user(), True),  # the hub filtered already: everything it sent counts
        (EVERYONE, user(), True),
        (READY_AMONG_EVERYONE, user(server()), True),
        (READY_AMONG_EVERYONE, user(), False),  # no server
        (READY_AMONG_EVERYONE, user(server(ready=False, pending="spawn")), False),
        (READY_AMONG_EVERYONE, user(server(ready=False, pending="stop")), False),
        (READY_AMONG_EVERYONE, user(server("a", ready=False, pending="spawn"), server("b")), True),
        (READY_AMONG_EVERYONE, user(hidden=True), True),  # the token's scopes are judged later
        (READY_OR_INACTIVE, user(), True),  # no server: inactive
        (READY_OR_INACTIVE, user(server()), True),
        (READY_OR_INACTIVE, user(server(ready=False, pending="stop")), False),  # neither
        (READY_OR_INACTIVE, user(server("a", ready=False, pending="spawn"), server("b")), True),
        (READY_OR_INACTIVE, user(hidden=True), True),
    ],
)
def test_listing_everyone_keeps_exactly_who_state_ready_would(
    listing: Listing, record: User, kept: bool
) -> None:
    assert listing.keeps(record) is kept


# --- read_listing over a hub population ----------------------------------------------------


def population(everyone: int, with_server: int, pending: int = 0) -> list[HubUser]:
    """``everyone`` users, the first ``with_server`` with a server (the last ``pending`` not ready)."""
    return [
        HubUser(
            f"u{i:05d}",
            active=i < with_server,
            ready=i < with_server - pending,
        )
        for i in range(everyone)
    ]


def listed(
    hub: HubUsers, planned: Listing = READY_UNLESS_EVERYONE_IS_CHEAPER, limit: int = 0
) -> list[str]:
    names = []
    listing, pages = read_listing(hub.user_page, planned, limit)
    for items in pages:
        for record in items:
            if listing.keeps(User.from_api(record)):
                names.append(record["name"])
    return names


def queries(hub: HubUsers) -> list[tuple[str | None, int, bool]]:
    """``(state, offset, whether it was the one-user count)`` of every query answered."""
    return [(c.get("state"), int(c["offset"]), c.get("limit") == "1") for c in hub.calls]


def test_a_hub_where_everyone_has_a_server_is_listed_unfiltered() -> None:
    hub = HubUsers(population(LONG, LONG))
    assert listed(hub) == [f"u{i:05d}" for i in range(LONG)]
    pages = range(0, LONG, DEFAULT_PAGE_SIZE)
    counts = [("ready", 0, True), (None, 0, True)]
    assert queries(hub) == counts + [(None, o, False) for o in pages]


def test_a_hub_where_many_have_no_server_stays_with_state_ready() -> None:
    hub = HubUsers(population(2 * LONG, LONG))
    assert listed(hub) == [f"u{i:05d}" for i in range(LONG)]
    pages = range(0, LONG, DEFAULT_PAGE_SIZE)
    counts = [("ready", 0, True), (None, 0, True)]
    assert queries(hub) == counts + [("ready", o, False) for o in pages]


def test_a_short_ready_listing_asks_for_no_unfiltered_count() -> None:
    hub = HubUsers(population(LONG - 1, LONG - 1))
    assert len(listed(hub)) == LONG - 1
    assert queries(hub)[0] == ("ready", 0, True)
    assert {state for state, _, _ in queries(hub)} == {"ready"}


def test_a_plain_ready_listing_asks_for_no_count() -> None:
    hub = HubUsers(population(LONG, LONG))
    assert len(listed(hub, READY)) == LONG
    assert [q for q in queries(hub) if q[2]] == []


@pytest.mark.parametrize("with_server", [10, LONG])
def test_cull_users_reads_everyone_once(with_server: int) -> None:
    """Ready users and users without a server, from one unfiltered listing, short or long."""
    hub = HubUsers(population(LONG + 30, with_server, pending=3))
    names = listed(hub, READY_OR_INACTIVE)
    ready = [f"u{i:05d}" for i in range(with_server - 3)]
    assert names == ready + [f"u{i:05d}" for i in range(with_server, LONG + 30)]
    assert {state for state, _, _ in queries(hub)} == {None}


@pytest.mark.parametrize("seed", range(6))
def test_whichever_listing_is_read_the_same_users_come(seed: int) -> None:
    """Any mix of ready, pending and serverless users: what the hub's filters would give."""
    rng = random.Random(seed)
    users = [
        HubUser(f"u{i:05d}", active=rng.random() < 0.95, ready=rng.random() < 0.9)
        for i in range(rng.randrange(LONG, 2 * LONG))
    ]
    for u in users:
        u.ready = u.ready and u.active
    limit = rng.choice([0, 37])
    assert listed(HubUsers(users), limit=limit) == [u.name for u in users if u.ready]
    assert listed(HubUsers(users), READY_OR_INACTIVE, limit) == [
        u.name for u in users if u.ready or not u.active
    ]


def test_the_switch_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="idle_cull.hub.listing")
    listed(HubUsers(population(LONG, LONG)))
    assert f"listing all {LONG} users instead of state=ready: {LONG} of them" in caplog.text


# --- through the HTTP client, and a hub that lies -------------------------------------------


def serve(emulated_hub: EmulatedHub, hub: HubUsers) -> HubClient:
    emulated_hub.serve_population(hub)
    return HubClient(URL, TOKEN, retry=NO_RETRY, sleep=lambda _: None)


def test_the_client_lists_everyone_on_the_emulated_hub(emulated_hub: EmulatedHub) -> None:
    hub = HubUsers(population(LONG + 10, LONG, pending=5))
    client = serve(emulated_hub, hub)
    listing, pages = read_listing(client.user_page, READY_UNLESS_EVERYONE_IS_CHEAPER)
    assert listing == READY_AMONG_EVERYONE
    names = [r["name"] for items in pages for r in items if listing.keeps(User.from_api(r))]
    assert names == [f"u{i:05d}" for i in range(LONG - 5)]


def test_an_unfiltered_listing_that_lies_about_its_total_is_refused(
    emulated_hub: EmulatedHub,
) -> None:
    """After the switch the unfiltered pages are held to the same pagination checks."""

    def no_advance(offset: int, body: dict[str, Any]) -> dict[str, Any]:
        if offset and body["_pagination"]["next"]:
            body["_pagination"]["next"]["offset"] = offset  # next page: the same one again
        return body

    hub = HubUsers(population(LONG, LONG), override=no_advance)
    client = serve(emulated_hub, hub)
    with pytest.raises(HubProtocolError, match="does not advance"):
        for _ in read_listing(client.user_page, READY_UNLESS_EVERYONE_IS_CHEAPER)[1]:
            pass
    assert queries(hub)[-1][0] is None  # it was the unfiltered listing that looped


def test_a_count_that_is_not_a_count_keeps_state_ready(emulated_hub: EmulatedHub) -> None:
    def garbage_total(offset: int, body: dict[str, Any]) -> dict[str, Any]:
        if body["_pagination"]["limit"] == 1 and "state" not in body["_pagination"]["next"]["url"]:
            body["_pagination"]["total"] = "lots"
        return body

    hub = HubUsers(population(LONG, LONG), override=garbage_total)
    client = serve(emulated_hub, hub)
    assert read_listing(client.user_page, READY_UNLESS_EVERYONE_IS_CHEAPER)[0] == READY


def test_a_huge_unfiltered_total_is_refused_before_paging(emulated_hub: EmulatedHub) -> None:
    hub = HubUsers(population(LONG, LONG))
    client = serve(emulated_hub, hub)
    answer = hub.answer

    def huge_unfiltered_first_page(query: Any, *, paginated: bool = True) -> Any:
        body: Any = answer(query, paginated=paginated)
        if "state" not in query and query.get("limit") != "1":
            body["_pagination"]["total"] = 10**9
        return body

    hub.answer = huge_unfiltered_first_page  # type: ignore[method-assign]
    with pytest.raises(HubProtocolError, match="refusing to plan"):
        for _ in read_listing(client.user_page, READY_UNLESS_EVERYONE_IS_CHEAPER)[1]:
            pass
    assert len(hub.calls) == 3  # two counts, then the unfiltered page, refused at once
