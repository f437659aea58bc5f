"""A pass lists one page after the other: the next is asked for once the last is judged.

The hub renders pages on its only thread, so a page asked for early (or several in
flight) is served before requests of other users that arrived meanwhile.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pytest

from idle_cull.command.settings import Settings
from idle_cull.hub.listing import READY, read_listing
from idle_cull.hub.pages import PAGE_GAP_SHARE, UserPage, paced
from idle_cull.output.report import Report
from idle_cull.rules.policy import CullLimits
from idle_cull.runner import list_users

PAGE = 3
USERS = 8


def page_at(offset: int, limit: int) -> UserPage:
    """A page of the 8 users ``u0``..``u7``, ``PAGE`` at a time, as a 6.x hub pages."""
    size = limit or PAGE
    names = [f"u{i}" for i in range(offset, min(offset + size, USERS))]
    following = {"offset": offset + size, "limit": size} if offset + size < USERS else None
    pagination = {"offset": offset, "limit": size, "total": USERS, "next": following}
    items: list[dict[str, Any]] = [{"name": n, "last_activity": None, "servers": {}} for n in names]
    return UserPage(items, offset, limit, pagination)


class CountingFetch:
    def __init__(self) -> None:
        self.offsets: list[int] = []

    def __call__(self, state: str | None, offset: int, limit: int) -> UserPage:
        self.offsets.append(offset)
        return page_at(offset, limit)


def test_read_listing_asks_for_the_next_page_only_when_the_last_is_done() -> None:
    fetch = CountingFetch()
    _, pages = read_listing(fetch, READY)
    assert fetch.offsets == [0]  # the first page, which the choice of listing reads
    assert [r["name"] for r in next(pages)] == ["u0", "u1", "u2"]
    assert fetch.offsets == [0]  # nothing asked for ahead
    next(pages)
    assert fetch.offsets == [0, 3]
    assert [r["name"] for page in pages for r in page] == ["u6", "u7"]
    assert fetch.offsets == [0, 3, 6]


class OnePageHub:
    """Only what ``list_users`` calls: ``user_page``, recording the order of events."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def user_page(self, state: str | None, offset: int, limit: int = 0) -> UserPage:
        self.events.append("count" if limit == 1 else f"page {offset}")
        return page_at(offset, limit)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"list_users must not call {name}")


def test_the_pass_judges_a_page_before_it_asks_for_the_next_even_with_concurrency() -> None:
    hub = OnePageHub()
    settings = Settings(
        url="http://hub.test/hub/api",
        token="t0ken-for-tests",
        limits=CullLimits(timeout=600),
        concurrency=10,
    )
    report = Report(hub_url=settings.url, started_at=datetime.now(timezone.utc))
    report.hub_version = "6.1.1"
    for user in list_users(hub, settings, report):
        hub.events.append(user.name)
    assert hub.events == [
        "count",  # how many users have a server: too few for the unfiltered listing
        "page 0", "u0", "u1", "u2",
        "page 3", "u3", "u4", "u5",
        "page 6", "u6", "u7",
    ]  # fmt: skip


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

    def fetch(offset: int, limit: int) -> UserPage:
        time_.now += next(durations)
        return page_at(offset, limit)

    fetch_paced = paced(fetch, share, clock=time_.clock, sleep=time_.sleep)
    fetch_paced(0, 1)
    for offset, judging in enumerate(judging_seconds, start=1):
        time_.now += judging
        fetch_paced(offset, 1)
    assert time_.sleeps == gaps


def test_a_pass_lists_with_the_gap_between_pages() -> None:
    """list_users paces its fetches: on a hub whose pages take time, the gaps show."""
    hub = SlowPagesHub(page_seconds=0.05)
    settings = Settings(
        url="http://hub.test/hub/api", token="t0ken-for-tests", limits=CullLimits(timeout=600)
    )
    report = Report(hub_url=settings.url, started_at=datetime.now(timezone.utc))
    report.hub_version = "6.1.1"
    started = time.monotonic()
    names = [u.name for u in list_users(hub, settings, report)]  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert names == [f"u{i}" for i in range(USERS)]
    assert len(hub.starts) == 4  # the count of users with a server, then three pages
    gaps = [
        later - earlier - 0.05 for earlier, later in zip(hub.starts, hub.starts[1:], strict=False)
    ]
    assert all(gap >= 0.05 * PAGE_GAP_SHARE * 0.9 for gap in gaps), gaps
    assert elapsed < 4 * 0.05 * (1 + PAGE_GAP_SHARE) + 1


class SlowPagesHub:
    """``user_page`` that takes ``page_seconds``, recording when each request started."""

    def __init__(self, page_seconds: float) -> None:
        self.page_seconds = page_seconds
        self.starts: list[float] = []

    def user_page(self, state: str | None, offset: int, limit: int = 0) -> UserPage:
        self.starts.append(time.monotonic())
        time.sleep(self.page_seconds)
        return page_at(offset, limit)
