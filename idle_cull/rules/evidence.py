"""How a server's findings from every source of evidence combine: pure, one place.

Each source says, in its ``Finding``, whether it keeps the server in this pass; the
first one that does keeps it, with its reason as the report's detail (prefixed by the
source, ``probe: ...``), and the requests every source sent count as the attempts.
``latest_activity`` is the newest activity any source saw, which a source that makes a
server idle or active (issue 24) is measured by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Finding", "Kept", "combine", "latest_activity"]


@dataclass(frozen=True)
class Finding:
    """What one source found about one server, in the seam's terms (here, with the rule
    that combines findings, so the rules need nothing of ``evidence/``).

    ``keep`` is the reason this finding keeps the server in this pass (work happening
    now, a failed probe kept closed, a keep-alive file), ``None`` when it does not;
    ``idle_since`` is the last activity this source saw (``None``: no opinion); ``busy``
    names work happening now and ``failed`` why the source could not tell. ``detail`` is
    the source's own record for the report; ``attempts`` the requests it sent.
    """

    source: str
    keep: str | None = None
    idle_since: datetime | None = None
    busy: str | None = None
    failed: str | None = None
    attempts: int = 0
    detail: object = None


@dataclass(frozen=True)
class Kept:
    """A server kept by its evidence: why, and how many requests asking took."""

    reason: str
    attempts: int


def combine(findings: Sequence[Finding]) -> Kept | None:
    """The verdict of a server's findings: kept (the first finding that keeps it), or
    ``None`` to stop it as the rules decided."""
    attempts = sum(f.attempts for f in findings)
    for finding in findings:
        if finding.keep is not None:
            return Kept(finding.keep, attempts)
    return None


def latest_activity(findings: Sequence[Finding]) -> datetime | None:
    """The newest activity any source saw (``None``: no source had an opinion)."""
    seen = [f.idle_since for f in findings if f.idle_since is not None]
    return max(seen) if seen else None
