"""A pass lists one page after the other: the next is asked for once the last is judged.

The hub renders pages on its only thread, so a page asked for early (or several in
flight) is served before requests of other users that arrived meanwhile.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timezone

from idle_cull.command.settings import Settings
from idle_cull.hub.listing import READY, read_listing
from idle_cull.hub.pages import PAGE_GAP_SHARE
from idle_cull.output.report import Report
from idle_cull.rules.policy import CullLimits
from idle_cull.runner import list_users
from tests.support.emulated_hub import SMALL_HUB_USERS as USERS
from tests.support.emulated_hub import hub_of_users


def test_read_listing_asks_for_the_next_page_only_when_the_last_is_done() -> None:
    fetch = hub_of_users()
    _, pages = read_listing(fetch.user_page, READY)
    assert fetch.offsets() == [0]  # the first page, which the choice of listing reads
    assert [r["name"] for r in next(pages)] == ["u0", "u1", "u2"]
    assert fetch.offsets() == [0]  # nothing asked for ahead
    next(pages)
    assert fetch.offsets() == [0, 3]
    assert [r["name"] for page in pages for r in page] == ["u6", "u7"]
    assert fetch.offsets() == [0, 3, 6]


def test_the_pass_judges_a_page_before_it_asks_for_the_next_even_with_concurrency() -> None:
    events: list[str] = []

    def record(query: dict[str, str]) -> None:
        events.append("count" if query.get("limit") == "1" else f"page {query['offset']}")

    hub = hub_of_users(record)
    settings = Settings(
        url="http://hub.test/hub/api",
        token="t0ken-for-tests",
        limits=CullLimits(timeout=600),
        concurrency=10,
    )
    report = Report(hub_url=settings.url, started_at=datetime.now(timezone.utc))
    report.hub_version = "6.1.1"
    for user in list_users(hub, settings, report):  # type: ignore[arg-type]
        events.append(user.name)
    assert events == [
        "count",  # how many users have a server: too few for the unfiltered listing
        "page 0", "u0", "u1", "u2",
        "page 3", "u3", "u4", "u5",
        "page 6", "u6", "u7",
    ]  # fmt: skip


def test_a_pass_lists_with_the_gap_between_pages() -> None:
    """list_users paces its fetches: on a hub whose pages take time, the gaps show."""
    starts: list[float] = []

    def slowly(_query: dict[str, str]) -> None:
        starts.append(time.monotonic())
        time.sleep(0.05)

    hub = hub_of_users(slowly)
    settings = Settings(
        url="http://hub.test/hub/api", token="t0ken-for-tests", limits=CullLimits(timeout=600)
    )
    report = Report(hub_url=settings.url, started_at=datetime.now(timezone.utc))
    report.hub_version = "6.1.1"
    started = time.monotonic()
    names = [u.name for u in list_users(hub, settings, report)]  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert names == [f"u{i}" for i in range(USERS)]
    assert len(starts) == 4  # the count of users with a server, then three pages
    gaps = [later - earlier - 0.05 for earlier, later in itertools.pairwise(starts)]
    assert all(gap >= 0.05 * PAGE_GAP_SHARE * 0.9 for gap in gaps), gaps
    assert elapsed < 4 * 0.05 * (1 + PAGE_GAP_SHARE) + 1
