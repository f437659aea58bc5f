"""A pass lists one page after the other: the next is asked for once the last is judged.

The hub renders pages on its only thread, so a page asked for early (or several in
flight) is served before requests of other users that arrived meanwhile.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from idle_cull.config import Settings
from idle_cull.pages import UserPage, read_pages
from idle_cull.policy import CullLimits
from idle_cull.report import Report
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

    def __call__(self, offset: int, limit: int) -> UserPage:
        self.offsets.append(offset)
        return page_at(offset, limit)


def test_read_pages_asks_for_the_next_page_only_when_the_last_is_done() -> None:
    fetch = CountingFetch()
    pages = read_pages(fetch)
    assert fetch.offsets == []
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
        self.events.append(f"page {offset}")
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
        "page 0", "u0", "u1", "u2",
        "page 3", "u3", "u4", "u5",
        "page 6", "u6", "u7",
    ]  # fmt: skip
