"""The evidence seam: every source answers with a ``Finding``, combined by one rule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from idle_cull.evidence.base import Asks, Evidence, Target
from idle_cull.evidence.hub_record import HubRecord
from idle_cull.models import ActionResult, Outcome
from idle_cull.rules.evidence import Finding

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
ANN = Target("ann", "", "ann", "/user/ann/", NOW - timedelta(hours=2), 9000.0)


class Fixed:
    """A source that finds the same thing about every server it is asked about."""

    asks = Asks.CANDIDATES

    def __init__(self, name: str, finding: Finding | None, *, wanted: bool = True) -> None:
        self.name = name
        self.finding = finding
        self.asked: list[Target] = []
        self.expected: list[Target] = []
        self._wanted = wanted

    def wanted(self, target: Target) -> bool:
        return self._wanted

    def expect(self, targets: Sequence[Target]) -> None:
        self.expected = list(targets)

    def gather(self, target: Target, now: datetime) -> Finding:
        self.asked.append(target)
        assert self.finding is not None
        return self.finding

    def would_gather(self, target: Target) -> Finding | None:
        return self.finding


def test_evidence_asks_every_wanted_source_and_records_their_findings() -> None:
    keeper = Fixed("keeper", Finding("keeper", keep="kept: testing", attempts=1))
    unwanted = Fixed("unwanted", Finding("unwanted", keep="never asked"), wanted=False)
    evidence = Evidence([HubRecord(), unwanted, keeper])
    evidence.expect([ANN])
    assert (keeper.expected, unwanted.expected) == ([ANN], [])
    assert evidence.check(ANN, NOW) == ActionResult(Outcome.SKIPPED, 1, "kept: testing")
    assert unwanted.asked == []
    assert [f.source for f in evidence.findings[("ann", "")]] == ["hub", "keeper"]


def test_evidence_that_keeps_nothing_lets_the_stop_go_on() -> None:
    evidence = Evidence([HubRecord(), Fixed("quiet", Finding("quiet"))])
    assert evidence.check(ANN, NOW) is None
    assert evidence.source("quiet") is not None
    assert evidence.source("loud") is None
