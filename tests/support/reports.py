"""Reports as a pass over a small hub makes them, and the JSON schema they must satisfy.

Shared by the tests of the JSON and text reports, the metrics and the published files, so
each builds the same scene the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import jsonschema

from idle_cull.models import Outcome, User
from idle_cull.output.render import report_json_schema
from idle_cull.output.report import Entry, Report
from idle_cull.rules.policy import Action, CullLimits, ServerDecision, UserDecision
from tests.support.emulated_hub import URL
from tests.support.records import NOW, plan_of, server_json, user_json

HOUR = 3600.0
SCHEMA = report_json_schema()


def validate(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)


def a_report() -> Report:
    """An empty report of a pass that started and ended now, on a 6.1.1 hub."""
    now = datetime.now(timezone.utc)
    return Report(hub_url=URL, started_at=now, finished_at=now, hub_version="6.1.1")


def base_report(**fields: Any) -> Report:
    values: dict[str, Any] = {
        "hub_url": URL,
        "started_at": NOW,
        "hub_version": "5.2.1",
        "now": NOW,
        "finished_at": NOW + timedelta(seconds=2.5),
        "users_listed": 0,
        "skew_seconds": 0.4,
    }
    values.update(fields)
    return Report(**values)


def settled_report(
    settle: dict[str, tuple[Outcome, int, str]] | None = None, **fields: Any
) -> Report:
    """A pass over a small hub: alice and bob idle (stop + delete), carol busy, dave spawning.

    ``settle`` maps a label (``server:bob/gpu``, ``user:alice``) to the outcome of its
    action; unlisted actions stopped or deleted on the first attempt.
    """
    users = [
        User.from_api(user_json("alice", idle=9000, servers=[server_json(idle=9000, age=90000)])),
        User.from_api(
            user_json("bob", idle=9000, servers=[server_json("gpu", idle=9000, age=900)])
        ),
        User.from_api(user_json("carol", servers=[server_json(idle=10, age=900)])),
        User.from_api(user_json("dave", servers=[server_json(pending="spawn", ready=False)])),
    ]
    plan = plan_of(users, NOW, CullLimits(timeout=HOUR, cull_users=True))
    report = base_report(users_listed=len(users), **fields)
    settle = settle or {}
    decisions: tuple[ServerDecision | UserDecision, ...] = (*plan.servers, *plan.users)
    for decision in decisions:
        kind = "server" if isinstance(decision, ServerDecision) else "user"
        entry = Entry(kind, decision)
        if decision.action in (Action.STOP, Action.DELETE):
            done = Outcome.STOPPED if kind == "server" else Outcome.DELETED
            entry = entry.settled(*settle.get(f"{kind}:{decision.label}", (done, 1, "")))
        report.entries.append(entry)
    return report


def dry_run_report() -> Report:
    report = settled_report(dry_run=True)
    report.entries[:] = [
        e.settled(Outcome.DRY_RUN, 0, "--dry-run") if e.outcome else e for e in report.entries
    ]
    return report


FAILED_STOP = {
    "server:bob/gpu": (Outcome.FAILED, 5, "HTTP 500 after 5 attempts: Internal Server Error")
}
