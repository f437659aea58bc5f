"""A listing short of the hub's own count is never a silent success (issue 21, item 5).

The measure is pure (``completeness.gaps``, ``Completeness``), so it is tested from
tables of pages; then over a population answered as JupyterHub 6.1 answers
``GET /users`` while the hub changes between pages (which must raise no alarm); then as
a whole pass against a hub that says it is 5.2.1 (so it paginates) and hands over less
than it counts: exit status 7, nothing culled, what was listed reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from idle_cull.exits import ExitStatus
from idle_cull.hub.completeness import Completeness, gaps
from idle_cull.hub.listing import (
    READY,
    READY_OR_INACTIVE,
    READY_UNLESS_EVERYONE_IS_CHEAPER,
    Listing,
    paginates,
    read_listing,
)
from idle_cull.hub.pages import UserPage
from idle_cull.output.metrics import metrics_text
from idle_cull.output.render import render_text
from tests.support.cli import run
from tests.support.emulated_hub import EmulatedHub, HubUser, HubUsers, server_json, user_json
from tests.support.reports import base_report, validate

# --- the measure, from tables -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spans", "total", "missing"),
    [
        pytest.param([(0, 50), (50, 100)], 100, [], id="contiguous"),
        pytest.param([(0, 50)], 180, [(50, 180)], id="ended-early"),
        pytest.param([(0, 50), (100, 150), (150, 180)], 180, [(50, 100)], id="skipped-a-page"),
        pytest.param([(0, 50), (40, 90), (90, 140)], 120, [], id="overlapping-windows"),
        pytest.param([(100, 150), (0, 50), (50, 100)], 150, [], id="in-any-order"),
        pytest.param([(0, 200)], 180, [], id="window-past-the-total"),
        pytest.param([], 0, [], id="empty-hub"),
        pytest.param([(0, 0)], 0, [], id="empty-page-of-an-empty-hub"),
        pytest.param([], 3, [(0, 3)], id="nothing-listed"),
        pytest.param([(10, 20)], 30, [(0, 10), (20, 30)], id="both-ends"),
        pytest.param([(0, 10), (200, 250)], 30, [(10, 30)], id="span-beyond-the-total"),
    ],
)
def test_gaps(spans: list[tuple[int, int]], total: int, missing: list[tuple[int, int]]) -> None:
    assert gaps(spans, total) == missing


def page(
    offset: int, items: int, *, total: int | None, limit: int = 50, following: bool = False
) -> UserPage:
    """A page at ``offset`` holding ``items`` records, as the hub describes it."""
    nxt = {"offset": offset + limit, "limit": limit, "url": "x"} if following else None
    pagination = {"offset": offset, "limit": limit, "total": total, "next": nxt}
    return UserPage([{"name": f"u{i}"} for i in range(items)], offset, limit, pagination)


def plain(items: int) -> UserPage:
    return UserPage([{"name": f"u{i}"} for i in range(items)], 0, 0, None)


def shortfall(*pages: UserPage, ready: bool = False, paginated: bool = True) -> str | None:
    completeness = Completeness(filtered_after_window=ready, paginates=paginated)
    for each in pages:
        completeness.add(each)
    return completeness.shortfall()


@pytest.mark.parametrize(
    ("pages", "ready", "short"),
    [
        pytest.param(
            [page(0, 50, total=120), page(50, 50, total=120), page(100, 20, total=120)],
            False,
            None,
            id="complete",
        ),
        pytest.param([page(0, 50, total=180)], False, "left 130 of them out", id="next-null"),
        pytest.param(
            [page(0, 50, total=180), page(100, 50, total=180), page(150, 30, total=180)],
            False,
            "offsets 50-99",
            id="next-skips-a-page",
        ),
        pytest.param(
            [page(0, 120, total=180), page(100, 50, total=180), page(150, 30, total=180)],
            False,
            "offsets 50-99",
            id="padding-cannot-cover-a-skipped-page",
        ),
        pytest.param(
            [
                page(0, 50, total=180),
                page(50, 10, total=180, following=True),
                page(100, 50, total=180),
                page(150, 30, total=180),
            ],
            False,
            "offsets 60-99",
            id="unfiltered-page-short-of-its-window",
        ),
        pytest.param(
            [
                page(0, 3, total=180),
                page(50, 0, total=180),
                page(100, 7, total=180),
                page(150, 1, total=180),
            ],
            True,
            None,
            id="ready-pages-short-and-empty",
        ),
        pytest.param(
            [page(0, 3, total=180), page(100, 7, total=180), page(150, 1, total=180)],
            True,
            "offsets 50-99",
            id="ready-pages-skipping-a-window",
        ),
        pytest.param([page(0, 30, total=180)], True, "left 130 of them out", id="ready-next-null"),
        pytest.param(
            [page(0, 50, total=100), page(50, 49, total=99)], False, None, id="latest-total-counts"
        ),
        pytest.param([page(0, 50, total=None)], False, None, id="no-count-nothing-to-fall-short"),
        pytest.param([plain(50)], False, "plain list of 50 users", id="plain-list"),
        pytest.param(
            [page(0, 50, total=60), plain(10)], False, "plain list of 10", id="plain-page-later"
        ),
    ],
)
def test_the_shortfall(pages: list[UserPage], ready: bool, short: str | None) -> None:
    said = shortfall(*pages, ready=ready)
    if short is None:
        assert said is None
    else:
        assert said is not None
        assert short in said, said


def test_a_plain_list_from_a_release_before_pagination_is_the_whole_list() -> None:
    assert shortfall(plain(500), paginated=False) is None


@pytest.mark.parametrize(
    ("version", "pages"),
    [((1, 5, 0), False), ((1, 2, 2), False), ((2, 0, 0), True), ((5, 2, 1), True), ((), True)],
)
def test_which_releases_paginate(version: tuple[int, ...], pages: bool) -> None:
    assert paginates(version) is pages


def test_the_plain_list_message_says_what_to_do() -> None:
    said = shortfall(plain(50)) or ""
    assert "Accept: application/jupyterhub-pagination+json" in said
    assert "let that header through" in said


# --- over a hub population that changes while it is paged ---------------------------------


def read_all(hub: HubUsers, planned: Listing, limit: int = 10) -> tuple[list[str], str | None]:
    """The names the hub sent, and the listing's shortfall."""
    _listing, pages = read_listing(hub.user_page, planned, limit)
    names = [record["name"] for items in pages for record in items]
    return names, pages.shortfall()


def change_at(hub: HubUsers, offset: int, change: Callable[[list[HubUser]], None]) -> None:
    """``change`` the hub's users once, just before it answers the page at ``offset``."""
    done: list[bool] = []

    def before(query: dict[str, str]) -> None:
        if int(query["offset"]) == offset and not done:
            done.append(True)
            with hub.lock:
                change(hub.users)

    hub.before_answer = before


def people(count: int, *, ready: bool = True) -> list[HubUser]:
    return [HubUser(f"u{i:03d}", ready=ready) for i in range(count)]


def delete_listed(users: list[HubUser]) -> None:
    del users[3]  # listed on the first page: every later offset moves down by one


def delete_unlisted(users: list[HubUser]) -> None:
    del users[-1]


def create_two(users: list[HubUser]) -> None:
    users += [HubUser("new-1"), HubUser("new-2")]


def stop_a_listed_server(users: list[HubUser]) -> None:
    users[2].active = users[2].ready = False  # leaves state=ready (and its count)


def start_a_server(users: list[HubUser]) -> None:
    users[-1].active = users[-1].ready = True


CHURN = [
    pytest.param(READY_OR_INACTIVE, 20, delete_listed, id="unfiltered-a-listed-user-deleted"),
    pytest.param(READY_OR_INACTIVE, 20, delete_unlisted, id="unfiltered-an-unlisted-user-deleted"),
    pytest.param(READY_OR_INACTIVE, 20, create_two, id="unfiltered-users-created"),
    pytest.param(READY_OR_INACTIVE, 30, create_two, id="unfiltered-created-at-the-last-page"),
    pytest.param(READY, 20, stop_a_listed_server, id="ready-a-listed-server-stopped"),
    pytest.param(READY, 20, start_a_server, id="ready-a-server-started"),
    pytest.param(READY, 10, delete_listed, id="ready-a-listed-user-deleted"),
]


@pytest.mark.parametrize(("planned", "at", "change"), CHURN)
def test_a_hub_changing_while_it_is_paged_raises_no_alarm(
    planned: Listing, at: int, change: Callable[[list[HubUser]], None]
) -> None:
    """The count moves between pages, and offsets with it: measured against the hub's
    latest count in offsets covered (not records seen), the listing is complete."""
    users = people(35)
    users[-1].active = users[-1].ready = False  # one without a server, for start_a_server
    hub = HubUsers(users)
    first_count = len(hub.selected(planned.state))
    change_at(hub, at, change)
    _names, short = read_all(hub, planned)
    assert len(hub.selected(planned.state)) != first_count  # the hub did change meanwhile
    assert short is None


def test_ready_pages_short_or_empty_while_next_is_set_raise_no_alarm() -> None:
    """state=ready: total counts every user with a server, the pages only the ready ones."""
    users = people(60)
    for user in users[10:45]:
        user.ready = False  # pending: counted, not listed; whole pages come back empty
    names, short = read_all(HubUsers(users), READY)
    assert len(names) == 25
    assert short is None


@pytest.mark.parametrize("planned", [READY, READY_UNLESS_EVERYONE_IS_CHEAPER, READY_OR_INACTIVE])
def test_an_unchanged_hub_is_complete_for_every_listing(planned: Listing) -> None:
    names, short = read_all(HubUsers(people(123)), planned, limit=0)
    assert len(names) == 123
    assert short is None


# --- a whole pass against a 5.2.1 hub that hands over less than it counts ------------------

IDLE_USERS = 180  # every one idle for 2 h, with --timeout=1h: all would be stopped


@pytest.fixture
def hub_5_2() -> Iterator[EmulatedHub]:
    """A JupyterHub that says it is 5.2.1: it paginates."""
    hub = EmulatedHub("5.2.1")
    with hub:
        yield hub


def serve_idle_hub(hub: EmulatedHub, rewrite: Callable[[dict[str, str], Any], Any]) -> None:
    users = [
        user_json(f"u{i:03d}", idle=7200, servers=[server_json(idle=7200)])
        for i in range(IDLE_USERS)
    ]
    hub.serve_users("ready", users)
    for record in users:
        hub.answer_stop(record["name"])
    hub.rewrite_users = rewrite


def first_full_page(query: dict[str, str]) -> bool:
    """The listing's first page (not the one-user page that counts users first)."""
    return query.get("offset") == "0" and query.get("limit") != "1"


def plain_list(query: dict[str, str], body: Any) -> Any:
    """A proxy that drops the pagination Accept header: JupyterHub >= 2.0 answers a list."""
    return body["items"] if isinstance(body, dict) else body


def next_null(query: dict[str, str], body: Any) -> Any:
    if first_full_page(query):
        body["_pagination"]["next"] = None  # total still says 180
    return body


def next_skips_a_page(query: dict[str, str], body: Any) -> Any:
    if first_full_page(query):
        body["_pagination"]["next"]["offset"] = 100
    return body


SHORT_LISTINGS = [
    pytest.param(plain_list, 50, "plain list of 50 users", id="plain-list-of-one-page"),
    pytest.param(next_null, 50, "counts 180 users in this listing", id="next-null-before-total"),
    pytest.param(next_skips_a_page, 130, "offsets 50-99", id="next-skips-a-page"),
]


@pytest.mark.parametrize(("rewrite", "listed", "says"), SHORT_LISTINGS)
def test_a_short_listing_culls_nothing_and_exits_7(
    hub_5_2: EmulatedHub,
    tmp_path: Path,
    rewrite: Callable[[dict[str, str], Any], Any],
    listed: int,
    says: str,
) -> None:
    """Before: ``listed`` of 180 idle servers stopped, exit 0, not a word of warning."""
    serve_idle_hub(hub_5_2, rewrite)
    report_file = tmp_path / "report.json"
    result = run("--timeout=1h", "--report=json", f"--report-file={report_file}")
    assert result.exit_code == 7, result.stderr
    assert hub_5_2.deleted_urls() == []
    document = json.loads(result.stdout)
    validate(document)
    assert document["exit_status_name"] == "listing_incomplete"
    assert says in document["listing_incomplete"]
    assert document["counts"]["users_listed"] == listed
    assert document["counts"]["servers"]["not_attempted"] == listed
    assert document["counts"]["servers"]["stopped"] == 0
    assert {e["detail"] for e in document["entries"]} == {"refused: the listing is incomplete"}
    assert f"the listing is incomplete: {document['listing_incomplete']}" in result.stderr
    assert "nothing was culled" in result.stderr
    summary = [line for line in result.stderr.splitlines() if " summary: " in line]
    assert len(summary) == 1
    assert "exit=7" in summary[0]
    assert f"server_not_attempted={listed}" in summary[0]


def test_a_short_listing_in_a_dry_run_exits_7_too(hub_5_2: EmulatedHub) -> None:
    serve_idle_hub(hub_5_2, next_null)
    result = run("--timeout=1h", "--dry-run", "--report=json")
    assert result.exit_code == 7, result.stderr
    assert json.loads(result.stdout)["counts"]["servers"]["not_attempted"] == 50


def test_a_complete_listing_of_the_same_hub_stops_every_idle_server(
    hub_5_2: EmulatedHub,
) -> None:
    """The reference: the same hub, answering honestly, is culled entirely with exit 0."""
    serve_idle_hub(hub_5_2, lambda query, body: body)
    result = run("--timeout=1h", "--report=json")
    assert result.exit_code == 0, result.stderr
    assert len(hub_5_2.deleted_urls()) == IDLE_USERS
    assert json.loads(result.stdout)["listing_incomplete"] is None


def test_a_pre_2_0_hub_s_plain_list_is_not_flagged() -> None:
    """Before 2.0 a plain list is the whole list: the hub knows no pagination."""
    hub = EmulatedHub("1.5.0")
    with hub:
        serve_idle_hub(hub, lambda query, body: body)
        result = run("--timeout=1h")
        assert result.exit_code == 0, result.stderr
        assert len(hub.deleted_urls()) == IDLE_USERS


# --- what the operator and the alerts see --------------------------------------------------


def test_the_text_report_and_the_metrics_say_the_listing_was_incomplete() -> None:
    report = base_report(listing_incomplete="the hub counts 180 users ...", users_listed=50)
    status = report.exit_status()
    assert status is ExitStatus.LISTING_INCOMPLETE
    text = render_text(report, status)
    assert "INCOMPLETE LISTING: the hub counts 180 users ...; nothing was culled" in text
    assert text.endswith(f"exit status 7: {ExitStatus.LISTING_INCOMPLETE.meaning}\n")
    metrics = metrics_text(report, status)
    assert "idle_cull_last_run_listing_incomplete 1.0" in metrics
    assert "idle_cull_last_run_exit_status 7.0" in metrics
    fine = base_report()
    assert "idle_cull_last_run_listing_incomplete 0.0" in metrics_text(fine, fine.exit_status())
