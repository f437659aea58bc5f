"""How a pass's report reads: versioned JSON for machines, a text summary for people.

A job that runs every few minutes with nobody watching is judged by what it leaves
behind, so the JSON is stable across runs (sorted, NaN-free, schema-versioned) and the
text puts what needs attention first. Nothing here receives the settings, so the API
token cannot reach a report. Writing the result to a file is ``files``'s business.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from idle_cull import __version__
from idle_cull.durations import format_duration, skew_phrase
from idle_cull.evidence.kernel_probe import ProbeFinding
from idle_cull.models import Outcome, as_utc
from idle_cull.output.report import (
    KEPT,
    Entry,
    ExitStatus,
    Report,
    Upcoming,
    reading_rank,
    result_counts,
)
from idle_cull.rules.policy import ServerDecision
from idle_cull.safe_text import printable, public_url

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "iso_utc",
    "public_url",
    "render_json",
    "render_text",
    "report_document",
    "report_json_schema",
]

SCHEMA = "idle-cull-report"
# Bump on any change that could break a reader; adding fields is not one. Version 2:
# kept servers and users are counted but have entries only with --report-kept.
SCHEMA_VERSION = 2


def report_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``report_document``, shipped inside the package.

    One file serves the readers who validate reports, the tests that validate every kind
    of report, and the docs' report-schema page, which is rendered from it.
    """
    text = resources.files("idle_cull.output").joinpath("report_schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


# ---------------------------------------------------------------------------------------
# JSON


def report_document(report: Report, exit_status: ExitStatus) -> dict[str, Any]:
    """The report as a JSON-ready dict following schema ``idle-cull-report`` version 2.

    ``exit_status`` is passed in rather than taken from the report, because the CLI has
    the final word (a pass that could not list users has no actions, yet exits 3).
    Its JSON Schema is ``report_schema.json`` in this package (``report_json_schema``).
    """
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generator": {"name": "idle-cull", "version": __version__},
        "hub": {"url": public_url(report.hub_url), "version": report.hub_version or None},
        "started_at": iso_utc(report.started_at),
        "finished_at": iso_utc(report.finished_at),
        "duration_seconds": _duration(report),
        "now": iso_utc(report.now),
        "clock": report.clock,
        "clock_skew_seconds": _number(report.skew_seconds),
        "dry_run": report.dry_run,
        "exit_status": int(exit_status),
        "exit_status_name": exit_status.name.lower(),
        "error": report.error or None,
        "interrupted": report.interrupted or None,
        "cap_exceeded": report.cap_exceeded or None,
        "listing_incomplete": report.listing_incomplete or None,
        "warn_within_seconds": _number(report.warn_within),
        "counts": _counts_document(report),
        "entries_include_kept": report.kept_listed,
        "entries": [_entry_document(e, report) for e in _sorted_for_machines(report.entries)],
        "upcoming": [_upcoming_document(u, report.now) for u in _sorted_upcoming(report)],
        "rejected_records": list(report.rejected_records),
        "warnings": list(report.warnings),
        **_notifications_document(report),
    }


def render_json(report: Report, exit_status: ExitStatus) -> str:
    """The JSON document, indented, ending in a newline; NaN can never reach it."""
    document = report_document(report, exit_status)
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def _counts_document(report: Report) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "users_listed": report.users_listed,
        "rejected_records": len(report.rejected_records),
        "upcoming": len(report.upcoming),
        "servers": result_counts(report, "server"),
        "users": result_counts(report, "user"),
    }
    if report.probing:
        counts["probes"] = report.probe_counts()
    if report.activity_source == "server":
        counts["activity"] = report.activity_counts()
    if report.postponing:
        counts["postponed"] = report.postponed_count()
    if report.notifying:
        counts["notifications"] = report.notification_counts()
    return counts


def _notifications_document(report: Report) -> dict[str, Any]:
    """Only with ``--notify``: each warning, to whom, where, and what became of it."""
    if not report.notifying:
        return {}
    return {
        "notifications": [
            {
                "user": d.user,
                "server": d.server,
                "target": d.target,
                "outcome": d.outcome,
                "detail": d.detail or None,
            }
            for d in report.notifications
        ]
    }


def _postponed_document(report: Report, key: tuple[str, str] | None) -> dict[str, Any] | None:
    """What the user's keep-alive file did for this server (``--postpone-limit``)."""
    found = report.postponements.get(key) if key else None
    if found is None:
        return None
    kept = report.now is not None and found.keeps(report.now)
    return {"kept": kept, "until": iso_utc(found.until), "reason": found.reason}


def _entry_document(entry: Entry, report: Report) -> dict[str, Any]:
    decision = entry.decision
    result = entry.result
    detail = entry.detail or None
    document: dict[str, Any] = {
        "kind": entry.kind,
        "user": decision.user,
        "server": decision.server if isinstance(decision, ServerDecision) else None,
        "label": decision.label,
        "decision": decision.action.value,
        "reason": decision.reason,
        "outcome": result,
        "detail": detail,
        "error": (detail or "failed") if entry.outcome is Outcome.FAILED else None,
        "attempts": entry.attempts,
        "last_activity": iso_utc(decision.last_activity),
        "idle_seconds": _number(decision.idle_seconds),
        "age_seconds": _number(decision.age_seconds),
    }
    if report.probing:  # --probe-kernels: what the probe found, null if not probed
        key = (decision.user, decision.server) if isinstance(decision, ServerDecision) else None
        finding = report.probes.get(key) if key else None
        document["probe"] = None if finding is None else _probe_document(finding)
    if report.activity_source == "server":  # what the server's own activity showed
        key = (decision.user, decision.server) if isinstance(decision, ServerDecision) else None
        document["activity"] = _activity_document(report, key)
    if report.postponing:  # --postpone-limit: what the keep-alive file did, null if not read
        key = (decision.user, decision.server) if isinstance(decision, ServerDecision) else None
        document["postponed"] = _postponed_document(report, key)
    return document


def _activity_document(report: Report, key: tuple[str, str] | None) -> dict[str, Any] | None:
    """What ``--activity-source=server`` found for one server; null if it was not asked."""
    if key is None or key not in report.activity:
        return None
    found = report.activity[key]
    if found is None:
        return {"found": "would_probe", "source": "server", "idle_since": None, "reason": None}
    return {
        "found": found.word,
        "source": found.source,
        "idle_since": iso_utc(found.idle_since),
        "reason": found.reason,
    }


def _probe_document(finding: ProbeFinding) -> dict[str, Any]:
    """What ``--probe-kernels`` found for one server (schema: docs/reference/report-schema.md)."""
    result, verdict = finding.result, finding.verdict
    return {
        "found": finding.found,
        "kernels": None if result is None or result.failed else result.kernels,
        "busy_kernels": [
            {"name": kernel.name, "since": iso_utc(kernel.since)}
            for kernel in (result.busy if result else ())
        ],
        "failure": None if result is None else result.failure,
        "attempts": 0 if result is None else result.attempts,
        "seconds": None if result is None else _number(result.seconds),
        "kept": bool(verdict and verdict.keeps),
        "reason": None if verdict is None else verdict.reason,
    }


def _upcoming_document(upcoming: Upcoming, now: datetime | None) -> dict[str, Any]:
    crosses_at = None if now is None else as_utc(now) + timedelta(seconds=upcoming.seconds_left)
    return {
        "user": upcoming.user,
        "server": upcoming.server,
        "label": _label(upcoming.user, upcoming.server),
        "last_activity": iso_utc(upcoming.last_activity),
        "idle_seconds": _number(upcoming.idle_seconds),
        "limit_seconds": _number(upcoming.limit_seconds),
        "seconds_left": _number(upcoming.seconds_left),
        "crosses_limit_at": iso_utc(crosses_at),
        "rule": upcoming.rule,
    }


def _sorted_for_machines(entries: Iterable[Entry]) -> list[Entry]:
    """Servers, then users, each by name: stable across runs, so reports diff cleanly.

    The runner appends in completion order, which differs from run to run.
    """

    def key(entry: Entry) -> tuple[int, str, str]:
        decision = entry.decision
        server = decision.server if isinstance(decision, ServerDecision) else ""
        return (0 if entry.kind == "server" else 1, decision.user, server)

    return sorted(entries, key=key)


def _sorted_upcoming(report: Report) -> list[Upcoming]:
    return sorted(report.upcoming, key=lambda u: (u.seconds_left, u.user, u.server))


# ---------------------------------------------------------------------------------------
# Text


def render_text(report: Report, exit_status: ExitStatus) -> str:
    """A summary for a person at a terminal: what was done, what needs attention, counts.

    Every action and skip gets a line; kept servers and users, which can be thousands on
    a large hub, are only counted unless the pass listed them (``--report-kept``).
    """
    show_kept = report.kept_listed
    lines = _text_header(report)
    for kind in ("server", "user"):
        entries = [e for e in report.entries if e.kind == kind]
        counts = result_counts(report, kind)
        if kind == "server" or any(counts.values()):
            lines += ["", *_text_entries(kind, entries, counts, show_kept=show_kept)]
    if report.upcoming:
        lines += ["", *_text_upcoming(report)]
    if report.rejected_records:
        lines += ["", f"rejected records ({len(report.rejected_records)}), not judged:"]
        lines += [f"  - {text}" for text in report.rejected_records]
    lines += ["", *_text_footer(report, exit_status)]
    return "\n".join(printable(line) for line in lines) + "\n"


def _text_header(report: Report) -> list[str]:
    version = f" (JupyterHub {report.hub_version})" if report.hub_version else ""
    lines = [f"idle-cull pass over {public_url(report.hub_url)}{version}"]
    timing = f"started {iso_utc(report.started_at, 'seconds')}"
    duration = _duration(report)
    timing += f", took {duration:.1f}s" if duration is not None else ", did not finish"
    lines.append(f"{timing}; {_clock_text(report)}")
    if report.dry_run:
        lines.append("DRY RUN: nothing was changed")
    if report.listing_incomplete:
        lines.append(f"INCOMPLETE LISTING: {report.listing_incomplete}; nothing was culled")
    if report.cap_exceeded:
        lines.append(f"REFUSED: {report.cap_exceeded}; nothing was culled")
    if report.interrupted:
        lines.append(f"INTERRUPTED: {report.interrupted}")
    if report.error:
        lines.append(f"ERROR: {report.error}")
    lines += [f"WARNING: {warning}" for warning in report.warnings]
    return lines


def _clock_text(report: Report) -> str:
    if report.clock != "hub":
        return "idleness measured on this machine's clock"
    phrase = skew_phrase(report.skew_seconds)
    if phrase is None:
        return "idleness measured on the hub's clock"
    return f"idleness measured on the hub's clock ({phrase})"


def _text_entries(
    kind: str, entries: Sequence[Entry], counts: dict[str, int], *, show_kept: bool
) -> list[str]:
    if not any(counts.values()):
        return [f"{kind}s: none {'running' if kind == 'server' else 'considered'}"]
    title = f"{kind}s: {_counts_phrase(counts)}"
    listed = [e for e in entries if show_kept or e.result != KEPT]
    if counts[KEPT] > sum(1 for e in listed if e.result == KEPT):
        title += " (kept ones not listed; --report-kept lists them)"
    rows = [_entry_row(e) for e in sorted(listed, key=_human_order)]
    header = ("RESULT", kind.upper(), "IDLE", "AGE", "TRIES", "WHY")
    return [title, *_table(header, rows)] if rows else [title]


def _human_order(entry: Entry) -> tuple[int, str]:
    return (reading_rank(entry.result), entry.label)


def _entry_row(entry: Entry) -> tuple[str, ...]:
    decision = entry.decision
    why = decision.reason
    if entry.detail and entry.outcome not in (Outcome.DRY_RUN, Outcome.NOT_ATTEMPTED):
        # Dry-run and not-attempted details repeat the header's pass-wide reason.
        why += f"; {entry.detail}"
    return (
        _result_words(entry),
        entry.label,
        _human_seconds(decision.idle_seconds),
        _human_seconds(decision.age_seconds),
        str(entry.attempts) if entry.attempts else "-",
        why,
    )


def _result_words(entry: Entry) -> str:
    if entry.outcome is Outcome.DRY_RUN:
        return f"would {entry.decision.action.value}"
    return entry.result.replace("_", " ")


def _text_upcoming(report: Report) -> list[str]:
    upcoming = _sorted_upcoming(report)
    rows = [
        (
            _label(u.user, u.server),
            _human_seconds(u.idle_seconds),
            _human_seconds(u.limit_seconds),
            _human_seconds(u.seconds_left),
            u.rule,
        )
        for u in upcoming
    ]
    title = f"about to cross their idle limit ({len(upcoming)}):"
    return [title, *_table(("SERVER", "IDLE", "LIMIT", "LEFT", "RULE"), rows)]


def _text_footer(report: Report, exit_status: ExitStatus) -> list[str]:
    listed = f"users listed: {report.users_listed}"
    if report.rejected_records:
        listed += f", rejected records: {len(report.rejected_records)}"
    return [listed, f"exit status {int(exit_status)}: {exit_status.meaning}"]


def _counts_phrase(counts: dict[str, int]) -> str:
    parts = [f"{n} {result.replace('_', ' ')}" for result, n in counts.items() if n]
    return ", ".join(parts) or "none"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is free-length text."""
    cleaned = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [header, *cleaned]) for i in range(len(header) - 1)]

    def line(row: Sequence[str]) -> str:
        # widths has no entry for the last, free-length column: zip stops before it
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        return "  " + "  ".join([*cells, row[-1]]).rstrip()

    return [line(header), *(line(row) for row in cleaned)]


# ---------------------------------------------------------------------------------------
# Small conversions


def iso_utc(moment: datetime | None, timespec: str = "milliseconds") -> str | None:
    """ISO 8601 in UTC with ``Z``, the form the hub writes; naive values are UTC."""
    if moment is None:
        return None
    return as_utc(moment).isoformat(timespec=timespec).replace("+00:00", "Z")


def _number(value: float | None) -> float | None:
    """Seconds rounded to milliseconds; ``None`` for unknown or non-finite values."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 3)


def _duration(report: Report) -> float | None:
    if report.finished_at is None:
        return None
    return _number((as_utc(report.finished_at) - as_utc(report.started_at)).total_seconds())


def _human_seconds(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else format_duration(value)


def _label(user: str, server: str) -> str:
    return user if not server else f"{user}/{server}"
