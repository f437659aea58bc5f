"""The hub's record as a source of evidence: the server's last activity, never a keep."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from idle_cull.evidence.base import Target
from idle_cull.evidence.hub_record import HubRecord
from idle_cull.rules.evidence import Finding

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
ANN = Target("ann", "", "ann", "/user/ann/", NOW - timedelta(hours=2), 9000.0)


def test_the_hub_record_is_a_source_that_never_keeps() -> None:
    finding = HubRecord().gather(ANN, NOW)
    assert finding == Finding("hub", idle_since=ANN.last_activity)
    assert HubRecord().would_gather(ANN) is None
