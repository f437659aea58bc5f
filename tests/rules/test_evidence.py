"""How a server's findings from every source make one verdict: ``combine`` and ``latest_activity``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from idle_cull.rules.evidence import Finding, Kept, combine, latest_activity

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("findings", "kept"),
    [
        pytest.param([], None, id="no-findings-stop"),
        pytest.param([Finding("hub")], None, id="no-source-keeps"),
        pytest.param([Finding("hub"), Finding("k", keep="busy", attempts=2)], Kept("busy", 2), id="one-keeps"),
        pytest.param([Finding("a", keep="first", attempts=1), Finding("b", keep="second", attempts=1)], Kept("first", 2), id="first-keeper-wins-attempts-add"),
    ],
)  # fmt: skip
def test_combine(findings: list[Finding], kept: Kept | None) -> None:
    assert combine(findings) == kept


def test_latest_activity_is_the_newest_any_source_saw() -> None:
    older, newer = NOW - timedelta(hours=1), NOW - timedelta(minutes=1)
    found = [Finding("hub", idle_since=older), Finding("x"), Finding("y", idle_since=newer)]
    assert latest_activity(found) == newer
    assert latest_activity([Finding("x")]) is None
