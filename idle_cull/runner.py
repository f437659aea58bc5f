"""One culling pass: list everything, decide, act concurrently, report.

Listing finishes before anything is acted on: deleting users while paging shifts the
hub's offsets and silently skips users. Decisions come from the pure policy; the only
I/O is through ``HubClient``, bounded by a ``ThreadPoolExecutor`` of ``concurrency``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from typing import TypeVar

from idle_cull.config import Settings
from idle_cull.errors import HubAuthError, HubError
from idle_cull.hub import ActionResult, HubClient, parse_version
from idle_cull.models import SCOPED_FIELDS, Outcome, RecordError, User
from idle_cull.policy import Action, CullLimits, Plan, ServerDecision, UserDecision, make_plan
from idle_cull.report import Entry, Report

__all__ = ["list_users", "run_pass", "utc_now"]

log = logging.getLogger(__name__)

D = TypeVar("D", ServerDecision, UserDecision)
Clock = Callable[[], datetime]

# A deletion goes ahead only when every server it depends on has really stopped.
_STOPPED = (Outcome.STOPPED, Outcome.GONE)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def run_pass(settings: Settings, client: HubClient, *, clock: Clock = utc_now) -> Report:
    """Do exactly one pass and return its report.

    ``HubError`` raised while probing or listing propagates: nothing has been acted on
    then, and the CLI reports the hub as unusable. Errors of single actions are recorded
    in the report instead, so one failing stop does not abandon the others.
    """
    report = Report(hub_url=settings.url, started_at=clock())
    report.hub_version = client.hub_version()
    log.info("hub %s at %s", report.hub_version, settings.url)
    users = list_users(client, settings, report)
    require_visible_fields(users, settings.limits, parse_version(report.hub_version))
    report.now = clock()
    plan = make_plan(users, report.now, settings.limits)
    _log_plan(plan)
    _act(plan, client, settings.concurrency, report)
    report.finished_at = clock()
    return report


def list_users(client: HubClient, settings: Settings, report: Report) -> list[User]:
    """Every user the pass must judge, de-duplicated, with unusable records set aside.

    ``state=ready`` keeps the listing to users with a running server; ``--cull-users``
    also needs ``state=inactive`` (users without any server). Hubs before 1.3 know no
    state filter and return everyone.
    """
    version = parse_version(report.hub_version)
    if version and version < (1, 3):
        states: Sequence[str | None] = [None]
    elif settings.limits.cull_users:
        states = ["ready", "inactive"]
    else:
        states = ["ready"]
    seen: dict[str, User] = {}
    for state in states:
        for page in client.iter_user_pages(state, settings.api_page_size):
            for record in page:
                _add_record(record, seen, report)
    report.users_listed = len(seen)
    log.info("listed %d users (%s)", len(seen), ", ".join(s or "all" for s in states))
    return list(seen.values())


def _add_record(record: object, seen: dict[str, User], report: Report) -> None:
    try:
        user = User.from_api(record)
    except RecordError as error:
        log.warning("ignoring a user record: %s", error)
        report.rejected_records.append(str(error))
        return
    if user.name in seen:
        log.warning(
            "user %r listed twice (the hub's list changed while paging); using the first", user.name
        )
        return
    seen[user.name] = user


def require_visible_fields(
    users: Iterable[User], limits: CullLimits, version: tuple[int, ...]
) -> None:
    """Fail before acting when the token's scopes hide a field a rule depends on.

    Without this, a hidden ``last_activity`` would read as "never active" and a hidden
    ``admin`` as "not an admin": exactly the servers and users that must not be culled.
    """
    if version and version < (2, 0):
        return  # no scopes before 2.0; older shapes are handled by the models
    needed = {"last_activity", "servers"}
    if limits.cull_users:
        needed |= {"admin", "created"}
    for user in users:
        missing = sorted(needed & user.hidden)
        if missing:
            scopes = sorted({SCOPED_FIELDS[name] for name in missing})
            raise HubAuthError(
                f"the token cannot read {', '.join(missing)} of users (e.g. {user.name!r}); "
                f"it needs the scope(s) {', '.join(scopes)}"
                + (" (admin:users includes them)" if limits.cull_users else "")
                + "; nothing was culled. See README, 'Role and scopes'"
            )


def _log_plan(plan: Plan) -> None:
    for server in plan.servers:
        log.info("%s server %s: %s", server.action.value, server.label, server.reason)
    for user in plan.users:
        log.info("%s user %s: %s", user.action.value, user.label, user.reason)


def _act(plan: Plan, client: HubClient, concurrency: int, report: Report) -> None:
    """Stop servers, then delete the users whose servers all stopped."""
    report.entries.extend(Entry("server", d) for d in plan.servers if d.action is not Action.STOP)
    report.entries.extend(Entry("user", d) for d in plan.users if d.action is not Action.DELETE)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="idle-cull") as pool:
        stops = _run_actions(
            pool, plan.stops, lambda d: client.stop_server(d.user, d.server, remove=d.remove)
        )
        report.entries.extend(Entry("server", d).settled(*r) for d, r in stops)
        stopped = {(d.user, d.server) for d, (outcome, _, _) in stops if outcome in _STOPPED}
        ready, blocked = _split_deletions(plan.deletions, stopped)
        report.entries.extend(blocked)
        deletions = _run_actions(pool, ready, lambda d: client.delete_user(d.user))
        report.entries.extend(Entry("user", d).settled(*r) for d, r in deletions)


def _split_deletions(
    deletions: Iterable[UserDecision], stopped: set[tuple[str, str]]
) -> tuple[list[UserDecision], list[Entry]]:
    ready: list[UserDecision] = []
    blocked: list[Entry] = []
    for decision in deletions:
        waiting = [s for s in decision.servers_to_stop_first if (decision.user, s) not in stopped]
        if not waiting:
            ready.append(decision)
            continue
        names = ", ".join(repr(s or "default") for s in waiting)
        detail = f"server(s) {names} not stopped yet; the user is looked at again next pass"
        log.info("not deleting user %s: %s", decision.user, detail)
        blocked.append(Entry("user", decision).settled(Outcome.SKIPPED, 0, detail))
    return ready, blocked


def _verb(decision: ServerDecision | UserDecision) -> str:
    """``stop server`` or ``delete user``: the start of every action log line."""
    kind = "server" if isinstance(decision, ServerDecision) else "user"
    return f"{decision.action.value} {kind}"


def _run_actions(
    pool: ThreadPoolExecutor, decisions: Sequence[D], action: Callable[[D], ActionResult]
) -> list[tuple[D, tuple[Outcome, int, str]]]:
    """Run ``action`` for every decision on the pool; results in completion order."""
    futures = {pool.submit(action, decision): decision for decision in decisions}
    results: list[tuple[D, tuple[Outcome, int, str]]] = []
    for future in as_completed(futures):
        decision = futures[future]
        try:
            result = future.result()
        except HubError as error:
            log.error("%s %s failed: %s", _verb(decision), decision.label, error)
            results.append((decision, (Outcome.FAILED, error.attempts, str(error))))
            continue
        log.info(
            "%s %s: %s%s",
            _verb(decision),
            decision.label,
            result.outcome.value,
            f" ({result.detail})" if result.detail else "",
        )
        results.append((decision, (result.outcome, result.attempts, result.detail)))
    return results
