"""The one seam for evidence about a server: what a source is asked, and what it answers.

Every source of evidence (the hub's record, the kernel probe, and whatever comes next: a
server's own activity, a user's keep-alive file) answers the same question about one
server: how long has it been idle, is it doing work right now, as far as this source
knows, and why. It answers with a ``Finding``; ``Evidence`` asks every source it holds
about each server the pass is about to stop and records the findings per server, and
``rules.evidence.combine`` (pure) turns a server's findings into "keep it" or "stop it".
The runner, the report and the metrics see findings, never a particular source, so a new
source is its own module, its options and its tests.

A source that must speak to the server gets its url in the ``Target``, and mints a
per-user token through ``evidence.probe_tokens`` from what ``expect`` told it; a source
says whether it wants to be asked about every running server or only the candidates
(``asks``); its finding may keep a server (``keep``), postpone it to a time (a keep-alive
file: ``keep`` with its reason), or say when it was last active (``idle_since``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from idle_cull.models import ActionResult, Outcome
from idle_cull.rules.evidence import Finding, combine

__all__ = ["Asks", "Evidence", "EvidenceSource", "Finding", "Target"]

Key = tuple[str, str]  # (user, server)


class Asks(str, Enum):
    """Which servers a source is asked about."""

    CANDIDATES = "candidates"  # only the servers the pass is about to stop (after the re-check)
    RUNNING = "running"  # every running server, before the rules decide (issue 24)


@dataclass(frozen=True)
class Target:
    """One server a source is asked about: who, where, and the hub's freshest record."""

    user: str
    server: str
    label: str  # "ann" or "ann/lab", as logs name it
    url: str | None  # the server's url path as the hub lists it (``/user/ann/``)
    last_activity: datetime | None  # the hub's record (``started`` when it has none)
    age_seconds: float | None
    idle_limit: float | None = None  # the limit the rules apply to this server (Asks.RUNNING)
    started: datetime | None = None  # the hub's record of the server's start


class EvidenceSource(Protocol):
    """A source of evidence about a server (see the module docstring)."""

    @property
    def name(self) -> str: ...

    @property
    def asks(self) -> Asks: ...

    def wanted(self, target: Target) -> bool:
        """Whether this server is worth asking this source about."""

    def expect(self, targets: Sequence[Target]) -> None:
        """The servers about to be asked about, before the first ``gather``."""

    def gather(self, target: Target, now: datetime) -> Finding:
        """What this source finds about ``target``; never raises for one server."""

    def would_gather(self, target: Target) -> Finding | None:
        """Dry run: the finding recorded for a server that would be asked (nothing is
        sent), or ``None`` when it would not be."""


class Evidence:
    """Asks every source about each server about to be stopped; thread-safe.

    Workers of the pass call ``check`` concurrently; the findings of each server are
    kept, in the order of the sources, for the report and the metrics.
    """

    def __init__(self, sources: Sequence[EvidenceSource]) -> None:
        self.sources = tuple(sources)
        self._lock = threading.Lock()
        self._findings: dict[Key, tuple[Finding, ...]] = {}
        self._surveyed: dict[Key, tuple[Finding, ...]] = {}

    @property
    def findings(self) -> Mapping[Key, tuple[Finding, ...]]:
        """Each server's findings: those of the sources asked before stopping it, else
        (a server kept by the rules) those of the survey."""
        with self._lock:
            return {**self._surveyed, **self._findings}

    def source(self, name: str) -> EvidenceSource | None:
        return next((s for s in self.sources if s.name == name), None)

    def expect(self, targets: Iterable[Target]) -> None:
        listed = list(targets)
        for source in self.sources:
            source.expect([t for t in listed if source.wanted(t)])

    def would_check(self, target: Target) -> list[Finding]:
        """Dry run: the findings recorded for sources that would be asked."""
        found = [f for s in self.sources if s.wanted(target) and (f := s.would_gather(target))]
        if found:
            self._record(target, found)
        return found

    def running(self) -> tuple[EvidenceSource, ...]:
        """The sources asked about every running server, before the rules decide."""
        return tuple(s for s in self.sources if s.asks is Asks.RUNNING)

    def survey(self, target: Target, now: datetime) -> tuple[Finding, ...]:
        """Ask the ``Asks.RUNNING`` sources about a listed server, before the rules decide;
        their findings are recorded and reused when the server is about to be stopped."""
        found = tuple(s.gather(target, now) for s in self.running() if s.wanted(target))
        if found:
            with self._lock:
                self._surveyed[(target.user, target.server)] = found
        return found

    def would_survey(self, target: Target) -> tuple[Finding, ...]:
        """Dry run: what the ``Asks.RUNNING`` sources would be asked (nothing is sent)."""
        wanted = [s for s in self.running() if s.wanted(target)]
        found = tuple(f for s in wanted if (f := s.would_gather(target)) is not None)
        if found:
            self._record(target, found)
        return found

    def surveyed(self, user: str, server: str) -> tuple[Finding, ...]:
        with self._lock:
            return self._surveyed.get((user, server), ())

    def check(self, target: Target, now: datetime) -> ActionResult | None:
        """Ask the sources about ``target``: the result that keeps it, or ``None``.

        ``Asks.RUNNING`` sources are not asked again: their survey's findings count."""
        asked = [
            s.gather(target, now)
            for s in self.sources
            if s.asks is not Asks.RUNNING and s.wanted(target)
        ]
        found = [*asked, *self.surveyed(target.user, target.server)]
        if not found:
            return None
        self._record(target, found)
        kept = combine(found)
        if kept is None:
            return None
        return ActionResult(Outcome.SKIPPED, kept.attempts, kept.reason)

    def _record(self, target: Target, found: Sequence[Finding]) -> None:
        with self._lock:
            self._findings[(target.user, target.server)] = tuple(found)
