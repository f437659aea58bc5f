"""The hub's record as a source of evidence: the server's ``last_activity`` as the hub
last heard of it (``started`` when it has none).

The rules judge every listed server on this record before any other source is asked;
as a source it adds the record's activity to the server's findings, so that a source
that measures idleness itself (issue 24) is combined with the hub's view by the same
pure function (``rules.evidence``). It sends nothing and never keeps a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from idle_cull.evidence.base import Asks, Target
from idle_cull.rules.evidence import Finding

__all__ = ["HubRecord"]


class HubRecord:
    """The hub's record of a server, in the seam's terms."""

    name = "hub"
    asks = Asks.CANDIDATES

    def wanted(self, target: Target) -> bool:
        return True

    def expect(self, targets: Sequence[Target]) -> None:
        """Nothing to prepare: the record came with the listing (or the re-check)."""

    def would_gather(self, target: Target) -> Finding | None:
        """A dry run records nothing for the hub's record: it is in the report already."""
        return None

    def gather(self, target: Target, now: datetime) -> Finding:
        return Finding(self.name, idle_since=target.last_activity)
