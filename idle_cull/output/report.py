"""What a pass did: an entry per server and user acted on or skipped, counts, exit status.

Kept servers and users are counted; they have entries too only when asked for
(``--report-kept``), because on a big hub they are nearly everyone.

The runner fills a ``Report``; ``app`` turns it into the closing log line and the exit
status. ``Report.exit_status`` says what the pass itself amounts to; failures around it
(an exception, an undelivered report) are mapped in ``app``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

from idle_cull.evidence.kernel_probe import ProbeFinding
from idle_cull.exits import ExitStatus
from idle_cull.models import Outcome
from idle_cull.output.notify import Delivery
from idle_cull.output.notify import counts as delivery_counts
from idle_cull.rules.evidence import Finding
from idle_cull.rules.policy import Action, ServerDecision, Upcoming, UserDecision
from idle_cull.rules.postponement import Postponement
from idle_cull.rules.server_activity import PROTECTIONS, ActivityFinding

__all__ = [
    "KEPT",
    "SKIPPED",
    "Entry",
    "ExitStatus",
    "Report",
    "Upcoming",
    "kind_results",
    "reading_rank",
    "result_counts",
    "result_name",
]

# Results of entries without an outcome: nothing was to be done, or nothing could be.
KEPT = "kept"
SKIPPED = "skipped"

# The order a person wants to read results in: what needs attention first.
_RESULT_ORDER = (
    "failed",
    "not_attempted",
    "pending",
    "stopped",
    "deleted",
    "already_gone",
    "dry_run",
    "skipped",
    "kept",
)


@dataclass(frozen=True)
class Entry:
    """One server or user the pass looked at, and what became of it."""

    kind: str  # "server" or "user"
    decision: ServerDecision | UserDecision
    outcome: Outcome | None = None  # None: nothing was to be done (kept or skipped)
    attempts: int = 0
    detail: str = ""

    @property
    def label(self) -> str:
        return self.decision.label

    @property
    def result(self) -> str:
        """One word for what became of it: the outcome (``already_gone``), else ``kept``
        when the decision was to keep, or ``skipped`` when it could not be judged."""
        if self.outcome is not None:
            return result_name(self.outcome)
        return KEPT if self.decision.action is Action.KEEP else SKIPPED

    def settled(self, outcome: Outcome, attempts: int = 0, detail: str = "") -> Entry:
        return replace(self, outcome=outcome, attempts=attempts, detail=detail)


@dataclass
class Report:
    hub_url: str
    started_at: datetime
    hub_version: str = ""
    now: datetime | None = None
    finished_at: datetime | None = None
    users_listed: int = 0
    rejected_records: list[str] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    kept_listed: bool = False  # whether kept servers and users have entries (--report-kept)
    servers_kept_unlisted: int = 0  # kept servers counted without an entry
    users_kept_unlisted: int = 0
    dry_run: bool = False
    clock: str = "hub"
    skew_seconds: float | None = None  # hub clock minus this machine's clock
    cap_exceeded: str | None = None  # why the plan was refused, when it was
    listing_incomplete: str | None = None  # why the listing fell short of the hub's count
    interrupted: str | None = None  # deadline or signal that ended the pass early
    upcoming: list[Upcoming] = field(default_factory=list)  # only with --warn-within
    warn_within: float | None = None  # the --warn-within window; None: not asked
    error: str | None = None  # what ended the pass before any action (exit 3, or interrupted)
    warnings: list[str] = field(default_factory=list)  # rules that named nobody, unchecked groups
    # --probe-kernels: what each probed (or, in a dry run, would-be probed) server said
    probing: bool = False  # the pass ran with --probe-kernels (the report then says so)
    activity_source: str = "hub"  # --activity-source: "server" adds each server's evidence
    # every source's findings about each server it was asked about (evidence.base)
    findings: dict[tuple[str, str], tuple[Finding, ...]] = field(default_factory=dict)
    postponing: bool = False  # the pass ran with --postpone-limit (the report then says so)
    notifying: bool = False  # the pass ran with --notify
    notifications: list[Delivery] = field(default_factory=list)  # each warning and its fate

    @property
    def postponements(self) -> dict[tuple[str, str], Postponement]:
        """What each server's keep-alive file did, per server read: its findings' records."""
        return {
            key: f.detail
            for key, found in self.findings.items()
            for f in found
            if f.source == "keep-alive" and isinstance(f.detail, Postponement)
        }

    def postponed_count(self) -> int:
        """Servers kept by their user's keep-alive file in this pass."""
        now = self.now
        return sum(1 for p in self.postponements.values() if now is not None and p.keeps(now))

    def notification_counts(self) -> dict[str, int]:
        return delivery_counts(self.notifications)

    @property
    def probes(self) -> dict[tuple[str, str], ProbeFinding]:
        """What the kernel probe found, per server: its findings' own records."""
        return {
            key: f.detail
            for key, found in self.findings.items()
            for f in found
            if f.source == "kernels" and isinstance(f.detail, ProbeFinding)
        }

    @property
    def activity(self) -> dict[tuple[str, str], ActivityFinding | None]:
        """What each server's own activity showed (``--activity-source=server``); ``None``
        for a server that would have been asked (a dry run)."""
        return {
            key: f.detail if isinstance(f.detail, ActivityFinding) else None
            for key, found in self.findings.items()
            for f in found
            if f.source == "server"
        }

    def activity_counts(self) -> dict[str, int]:
        """Servers by what their own activity showed; every key always present.

        ``culled_hub_active``: stopped on the server's evidence while the hub's record
        called the server active (what an open tab hid); ``fell_back``: the hub's record
        decided (a failed probe, or no kernels or terminals with ``--no-sessions=hub``).
        """
        found = Counter("would_probe" if f is None else f.word for f in self.activity.values())
        stopped = {
            (e.decision.user, getattr(e.decision, "server", None))
            for e in self.entries
            if e.kind == "server" and e.outcome in (Outcome.STOPPED, Outcome.PENDING)
        }
        culled = sum(
            1
            for key, f in self.activity.items()
            if f is not None and f.hub_called_active and f.word == "idle" and key in stopped
        )
        words = ("idle", "fell_back", "would_probe", *(f"protected_{k}" for k in PROTECTIONS))
        counts = {word: found[word] for word in words}
        counts["probed"] = sum(n for word, n in found.items() if word != "would_probe")
        counts["culled_hub_active"] = culled
        return counts

    def probe_counts(self) -> dict[str, int]:
        """Probes by what they found, and the servers they kept; every key always present."""
        found = Counter(finding.found for finding in self.probes.values())
        kept = Counter(f.found for f in self.probes.values() if f.verdict and f.verdict.keeps)
        return {
            "probed": sum(n for word, n in found.items() if word != "would_probe"),
            "busy": found["busy"],
            "not_busy": found["not_busy"],
            "failed": found["failed"],
            "kept_busy": kept["busy"],
            "kept_failed": kept["failed"],
            "would_probe": found["would_probe"],
        }

    def mask(self, secret: str) -> None:
        """Replace ``secret`` by ``***`` in every text that came from outside.

        The hub client masks the token where it quotes the hub; this is the backstop for
        any other path (a gateway quoting it in a record, a header, an error), applied
        once before the report reaches stdout, a file or a Pushgateway.
        """
        if not secret:
            return

        def masked(text: str) -> str:
            return text.replace(secret, "***")

        self.error = masked(self.error) if self.error else self.error
        self.interrupted = masked(self.interrupted) if self.interrupted else self.interrupted
        if self.listing_incomplete:
            self.listing_incomplete = masked(self.listing_incomplete)
        self.rejected_records = [masked(text) for text in self.rejected_records]
        self.entries = [
            replace(entry, detail=masked(entry.detail)) if secret in entry.detail else entry
            for entry in self.entries
        ]

    def counts(self) -> Counter[str]:
        """Counts by kind and result, e.g. ``server_stopped``, ``user_kept``."""
        counts: Counter[str] = Counter()
        for entry in self.entries:
            counts[f"{entry.kind}_{entry.result}"] += 1
        counts[f"server_{KEPT}"] += self.servers_kept_unlisted
        counts[f"user_{KEPT}"] += self.users_kept_unlisted
        return counts

    @property
    def failed(self) -> list[Entry]:
        return [e for e in self.entries if e.outcome is Outcome.FAILED]

    def exit_status(self) -> ExitStatus:
        """What the finished pass amounts to: refused for an incomplete listing or by a
        cap, some action failed or was cut short, or all well."""
        if self.listing_incomplete:
            return ExitStatus.LISTING_INCOMPLETE
        if self.cap_exceeded:
            return ExitStatus.CAP_EXCEEDED
        if self.failed or self.interrupted:
            return ExitStatus.ACTION_FAILED
        return ExitStatus.OK

    def summary_line(self, status: ExitStatus | None = None) -> str:
        """The closing ``key=value`` line a log search or a person reads first.

        ``status`` is the process's exit status when the CLI knows better than the
        report (a pass that never listed has no actions, yet exits 2 or 3).
        """
        counts = self.counts()
        keys: tuple[str, ...] = (
            "server_stopped",
            "server_pending",
            "server_already_gone",
            "server_failed",
            "server_kept",
            "server_skipped",
            "user_deleted",
            "user_pending",
            "user_already_gone",
            "user_failed",
            "user_kept",
            "user_skipped",
        )
        if self.dry_run:
            keys += ("server_dry_run", "user_dry_run")
        if self.interrupted or self.cap_exceeded or self.listing_incomplete:
            keys += ("server_not_attempted", "user_not_attempted")
        fields = [f"users_listed={self.users_listed}"]
        fields += [f"{key}={counts.get(key, 0)}" for key in keys]
        if self.probing:
            probes = self.probe_counts()
            fields += [f"probe_{key}={probes[key]}" for key in ("kept_busy", "failed")]
        if self.postponing:
            fields.append(f"postponed={self.postponed_count()}")
        if self.notifying:
            sent = self.notification_counts()
            fields += [f"warnings_{key}={sent[key]}" for key in ("sent", "failed")]
        fields.append(f"rejected_records={len(self.rejected_records)}")
        if self.finished_at is not None:
            seconds = (self.finished_at - self.started_at).total_seconds()
            fields.append(f"duration={seconds:.2f}s")
        fields.append(f"exit={int(self.exit_status() if status is None else status)}")
        prefix = "DRY RUN, nothing was changed: " if self.dry_run else ""
        return f"summary: {prefix}" + " ".join(fields)


# ---------------------------------------------------------------------------------------
# The vocabulary of results: JSON counts, the text report and the metrics' ``outcome``


def result_name(outcome: Outcome) -> str:
    """The one word for an outcome in reports and metrics: ``already gone`` is ``already_gone``."""
    return outcome.value.replace(" ", "_")


def kind_results(kind: str) -> tuple[str, ...]:
    """Every result a ``server`` or ``user`` entry can have, so counts never miss a key.

    Readers and alerts see an explicit 0 instead of a missing key or series.
    """
    not_for_kind = Outcome.DELETED if kind == "server" else Outcome.STOPPED
    results = [result_name(o) for o in Outcome if o is not not_for_kind]
    return (*sorted(results, key=reading_rank), KEPT)


def reading_rank(result: str) -> int:
    """Position in the reading order; results added later sort last instead of failing."""
    return _RESULT_ORDER.index(result) if result in _RESULT_ORDER else len(_RESULT_ORDER)


def result_counts(report: Report, kind: str) -> dict[str, int]:
    """How many servers (or users) ended in each result, from ``Report.counts``."""
    prefix = f"{kind}_"
    counted = {k[len(prefix) :]: n for k, n in report.counts().items() if k.startswith(prefix)}
    counts = {result: counted.pop(result, 0) for result in kind_results(kind)}
    counts.update(counted)  # an unexpected pairing still shows up rather than vanishing
    return counts
