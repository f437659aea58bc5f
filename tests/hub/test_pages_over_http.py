"""The listing (``pages.follow_pages`` over ``HubClient.user_page``) against a ``responses`` hub.

The emulated hub serves a population of users (``HubUsers``) the way JupyterHub's
``UserListAPIHandler`` does: it clamps ``limit`` to its maximum, counts ``total`` over
*active* users for ``state=ready`` and filters ready users only after offset/limit (so
pages can be short or empty while ``next`` is set).
Pages are read one after the other, each from the offset the previous page's ``next``
names, as ``listing.read_listing`` reads them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from itertools import islice
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from idle_cull.errors import HubAuthError, HubProtocolError
from idle_cull.hub.client import PAGINATION_MEDIA_TYPE, HubClient
from idle_cull.hub.pages import follow_pages
from idle_cull.hub.retry import RetryPolicy
from tests.support.emulated_hub import URL, EmulatedHub, HubUser, HubUsers, json_text

USERS = f"{URL}/users"
TOKEN = "s3cr3t-T0KEN-pages"
FAST = RetryPolicy(attempts=2, initial_wait=0, max_wait=0, max_retry_after=0)
INTERNAL = "http://internal:8081/hub/api"  # what the hub writes in next: not our URL

Answer = tuple[int, dict[str, str], str]


def names(pages: list[list[Any]]) -> list[str]:
    return [u["name"] for p in pages for u in p]


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


def listing(client: HubClient, state: str | None, page_size: int = 0) -> Iterator[list[Any]]:
    """Every page's records as the pass reads them: the first, then each ``next`` followed."""
    fetch = partial(client.user_page, state)
    first = fetch(0, page_size)
    yield first.items
    yield from follow_pages(fetch, first)


def listed_pages(client: HubClient, state: str | None, page_size: int = 0) -> list[list[Any]]:
    return list(listing(client, state, page_size))


def test_later_pages_carry_state_limit_and_the_pagination_accept_header(
    emulated_hub: EmulatedHub, client: HubClient
) -> None:
    hub = serve(emulated_hub, users(12))
    listed_pages(client, "inactive", 0)
    # page_size 0: no limit on the first request; the hub's default (from the first
    # page's _pagination.limit) on the later ones
    assert hub.calls[0] == {"offset": "0", "state": "inactive"}
    for call in emulated_hub.calls:
        assert call.request.headers["Accept"] == PAGINATION_MEDIA_TYPE
        assert urlsplit(str(call.request.url)).netloc == "hub.test:8081"


def test_page_size_comes_from_the_first_pages_limit_after_the_hubs_clamp(
    emulated_hub: EmulatedHub, client: HubClient
) -> None:
    hub = serve(emulated_hub, users(10), max_limit=4)  # like api_page_max_limit=4
    pages = listed_pages(client, "ready", 500)
    assert sorted(names(pages)) == [u.name for u in hub.users]
    assert sorted((c["offset"], c["limit"]) for c in hub.calls) == [
        ("0", "500"),
        ("4", "4"),
        ("8", "4"),
    ]


def test_ready_pages_short_or_empty_mid_list_still_reach_every_ready_user(
    emulated_hub: EmulatedHub, client: HubClient
) -> None:
    # total counts active users; only every fifth is ready, and users 5-14 none at all.
    population = users(40, ready=lambda i: i % 5 == 0 and not 5 <= i < 15)
    hub = serve(emulated_hub, population)
    pages = listed_pages(client, "ready", 5)

    assert [] in pages  # empty pages mid-list did not end the listing
    assert sorted(names(pages)) == [u.name for u in population if u.ready]
    assert hub.offsets() == list(range(0, 40, 5))  # offsets from total (active), not ready


def test_total_of_active_users_covers_users_past_the_ready_ones(
    emulated_hub: EmulatedHub, client: HubClient
) -> None:
    # Only the last active user is ready: a page count from len(items) would miss it.
    population = users(13, ready=lambda i: i == 12)
    serve(emulated_hub, population)
    assert names(listed_pages(client, "ready", 4)) == ["user-0012"]


def test_plain_list_from_a_hub_before_2_0_is_one_page(
    emulated_hub: EmulatedHub, client: HubClient
) -> None:
    everyone = [u.record() for u in users(3)]
    emulated_hub.get(USERS, json=everyone)
    assert listed_pages(client, None, 2) == [everyone]
    assert len(emulated_hub.calls) == 1


# -- bounds -----------------------------------------------------------------------------


def test_an_error_on_a_later_page_is_raised_and_ends_the_listing(
    emulated_hub: EmulatedHub, client: HubClient
) -> None:
    hub = HubUsers(users(20), advertised_url=INTERNAL)

    def refuse_offset_6(request: requests.PreparedRequest) -> Answer:
        params = dict(parse_qsl(urlsplit(str(request.url)).query))
        if params["offset"] == "6":
            return 403, {}, json_text({"status": 403, "message": "requires any of [list:users]"})
        return 200, {}, json_text(hub.answer(params))

    emulated_hub.add_callback(responses.GET, USERS, callback=refuse_offset_6)
    pages = listing(client, "ready", 2)
    received: list[list[Any]] = []
    with pytest.raises(HubAuthError, match="list:users"):
        received.extend(pages)
    got = names(received)
    assert got[:2] == ["user-0000", "user-0001"]
    assert "user-0006" not in got
    assert len(got) == len(set(got))


# -- the hub's pagination changes or misbehaves ------------------------------------------


def test_growth_after_the_first_page_is_reached_through_the_last_pages_next(
    emulated_hub: EmulatedHub, client: HubClient
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
    pages = listed_pages(client, "ready", 2)
    assert sorted(names(pages)) == sorted(u.name for u in hub.users)  # 11; the plan knew of 6
    assert hub.offsets() == [0, 2, 4, 6, 8, 10]


def test_users_removed_while_listing_give_empty_pages_not_errors(
    emulated_hub: EmulatedHub, client: HubClient
) -> None:
    hub = HubUsers(users(10), advertised_url=INTERNAL)

    def shrink(params: dict[str, str]) -> None:
        if params["offset"] == "2":
            with hub.lock:
                del hub.users[4:]

    hub.before_answer = shrink
    emulated_hub.serve_population(hub)
    pages = listed_pages(client, "ready", 2)
    assert names(pages)[:2] == ["user-0000", "user-0001"]
    assert set(names(pages)) <= {u.name for u in users(10)}


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
                listing(client, "ready", 2),
                50,
            )
        )
    assert len(hub.calls) < 50
