"""One culling pass: list and judge, then act concurrently, then report.

Users are judged page by page as the listing arrives, and only what acting needs is
kept: the decisions that act or skip, and the listed record of users to delete (the
re-check compares against it). Users with nothing to do are counted, so a pass over
100,000 users holds little more than their names. Nothing is acted on before the
listing finishes: deleting users while paging shifts the hub's offsets and silently
skips users. Decisions come from the pure policy; the only I/O is through a ``Hub``
(``HubClient`` in production), bounded by a ``ThreadPoolExecutor`` of ``concurrency``.
The safety rails live here too, as the few branches between deciding and acting:
blast-radius caps, dry run, a fresh re-check of each record, and a deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar, cast

from idle_cull.command.settings import Settings
from idle_cull.durations import format_duration, skew_phrase
from idle_cull.errors import ClocksDisagree, ConfigError, HubAuthError, HubError, PassInterrupted
from idle_cull.evidence.base import Evidence, Target
from idle_cull.hub.client import parse_version
from idle_cull.hub.limiter import SURVEY_STALLS, SURVEY_TUNING, InFlightLimiter, StallRelease
from idle_cull.hub.listing import listing_for, paginates, read_listing
from idle_cull.hub.pages import UserPage, paced
from idle_cull.models import SCOPED_FIELDS, ActionResult, Outcome, RecordError, Server, User
from idle_cull.output.notify import Notifier
from idle_cull.output.report import Entry, Report
from idle_cull.preflight import check_before_listing, probing_refusal, warn_unmatched_rules
from idle_cull.rules.announce import notices_due
from idle_cull.rules.catalogue import fields_needed
from idle_cull.rules.clocks import clocks_disagree
from idle_cull.rules.evidence import Finding
from idle_cull.rules.policy import (
    Action,
    CullLimits,
    Judgement,
    Plan,
    ServerDecision,
    UserDecision,
    cap_exceeded,
    decide_server,
    excluded,
    idle_limit,
    judge,
    rules_matching,
    user_changed_since_listing,
)
from idle_cull.safe_text import public_url
from idle_cull.wording import counted

__all__ = [
    "Hub",
    "PassControl",
    "judge_listing",
    "list_users",
    "run_pass",
    "utc_now",
]

log = logging.getLogger(__name__)

D = TypeVar("D", ServerDecision, UserDecision)
T = TypeVar("T")
R = TypeVar("R")
_END: Any = object()  # the end of ``in_flight``'s items
Clock = Callable[[], datetime]
ProgressLine = Callable[[str], None]


def _no_progress(_line: str) -> None:
    pass


class Hub(Protocol):
    """What a pass needs from the hub: ``HubClient`` in production, a fake in tests."""

    def hub_version(self) -> str: ...

    def hub_now(self) -> datetime | None: ...

    def user_page(self, state: str | None, offset: int, limit: int = 0) -> UserPage: ...

    def get_user(self, name: str) -> dict[str, Any] | None: ...

    def stop_server(self, user: str, server: str, *, remove: bool = False) -> ActionResult: ...

    def delete_user(self, name: str) -> ActionResult: ...

    def token_owner(self) -> dict[str, Any] | None: ...

    def group_exists(self, name: str) -> bool | None: ...

    def group_names(self) -> list[str] | None: ...

    def responsiveness(self) -> float | None: ...


# A deletion goes ahead only when every server it depends on has really stopped.
_STOPPED = (Outcome.STOPPED, Outcome.GONE)
SKEW_WORTH_A_WARNING = 60.0


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class PassControl:
    """The deadline and cancellation of one pass: once stopped, no new action starts.

    Requests already in flight get a short grace, then the hub client's transport
    abandons them (it polls ``stopped``); actions still queued are reported as not
    attempted. Signal handlers call ``cancel``.
    """

    def __init__(self, deadline: float | None = None) -> None:
        self._deadline = deadline
        self._deadline_at = time.monotonic() + deadline if deadline else None
        self._cancelled = threading.Event()
        self.reason = ""

    def cancel(self, reason: str) -> None:
        if self._cancelled.is_set():
            return
        self.reason = reason
        self._cancelled.set()
        log.warning("%s: starting no new actions; waiting for those in flight", reason)

    def stopped(self) -> bool:
        if self._deadline_at is not None and time.monotonic() >= self._deadline_at:
            self.cancel(f"--deadline of {format_duration(self._deadline or 0)} passed")
        return self._cancelled.is_set()


def run_pass(
    settings: Settings,
    client: Hub,
    *,
    clock: Clock = utc_now,
    control: PassControl | None = None,
    progress: ProgressLine = _no_progress,
    evidence: Evidence | None = None,
    notifier: Notifier | None = None,
) -> Report:
    """Do exactly one pass and return its report.

    ``HubError`` raised while probing or listing propagates: nothing has been acted on
    then, and the CLI reports the hub as unusable. A listing the hub cut short (fewer
    users than it counts, or a plain list from a release that pages) is judged, shown
    and not acted on (``report.listing_incomplete``, exit status 7), like a plan over
    the caps. Errors of single actions are recorded in the report instead, so one
    failing stop does not abandon the others.
    ``evidence`` asks its sources (``--probe-kernels``: the kernel probe) about each
    server about to be stopped, after the re-check; a probe's token scope is checked
    before listing.
    """
    control = control or PassControl(settings.deadline)
    report = Report(
        hub_url=settings.url,
        started_at=clock(),
        dry_run=settings.dry_run,
        clock=settings.clock,
        warn_within=settings.warn_within,
    )
    report.hub_version = client.hub_version()
    log.info("hub %s at %s", report.hub_version, public_url(settings.url))
    probing = evidence is not None and evidence.source("kernels") is not None
    # The kernel probe, the server's own activity and the keep-alive file all send a token
    # minted for the user: the same scope and release checks.
    minting = evidence is not None and (
        probing or bool(evidence.running()) or evidence.source("keep-alive") is not None
    )
    refusal = probing_refusal(parse_version(report.hub_version)) if minting else None
    if refusal is not None:
        raise ConfigError(refusal)
    check_before_listing(
        client,
        settings.limits,
        report,
        probe_kernels=minting,
        allow_unchecked_groups=settings.allow_unchecked_groups,
    )
    # "Now" is read once, before listing: a record is never older than this when judged,
    # so a slow listing can understate idleness but never overstate it.
    now = _choose_clock(settings, client, clock, report)
    report.now = now()
    listed_at = time.monotonic()  # every record is at least this fresh
    plan = judge_listing(
        client,
        settings,
        report,
        report.now,
        control=control,
        progress=progress,
        evidence=evidence,
    )
    if settings.warn_within:
        report.upcoming = plan.upcoming
        _log_upcoming(report)
    over_cap = cap_exceeded(plan, settings.caps)
    if report.listing_incomplete:
        # Acting on part of the hub would be a silent partial pass, and the caps would
        # be measured against a part too: nothing is culled; the next pass lists again.
        why = f"the listing is incomplete: {report.listing_incomplete}"
        _refuse(plan, report, why, detail="the listing is incomplete")
    elif over_cap:
        report.cap_exceeded = over_cap
        _refuse(plan, report, over_cap)
    elif settings.dry_run:
        _record_dry_run(plan, report, evidence)
    else:
        actor = _Actor(
            client,
            settings,
            control,
            now,
            plan.listed_user,
            listed_at=listed_at,
            progress=progress,
            evidence=evidence,
        )
        actor.act(plan, report)
    if evidence is not None:
        report.probing = probing
        report.postponing = evidence.source("keep-alive") is not None
        report.activity_source = "server" if evidence.running() else "hub"
        report.findings = dict(evidence.findings)
    if notifier is not None:
        _warn_users(notifier, settings, report)
    report.interrupted = control.reason or None
    report.finished_at = clock()
    return report


def _warn_users(notifier: Notifier, settings: Settings, report: Report) -> None:
    """``--notify``, the pass's last output: warn the users whose upcoming cull's window
    opened in this pass's slot of the schedule (``rules.announce``); a dry run sends
    nothing and says what it would send. Failures are counted, never raised."""
    report.notifying = True
    if report.now is None or not settings.warn_within or not settings.schedule_interval:
        return
    due = notices_due(report.upcoming, report.now, settings.warn_within, settings.schedule_interval)
    log.info("%d upcoming culls to announce in this pass", len(due))
    report.notifications = notifier.deliver(due, report.now, dry_run=settings.dry_run)


def judge_listing(
    client: Hub,
    settings: Settings,
    report: Report,
    now: datetime,
    *,
    control: PassControl | None = None,
    progress: ProgressLine = _no_progress,
    evidence: Evidence | None = None,
) -> Plan:
    """Judge every listed user at ``now`` as its page arrives: the pass's plan.

    A token that cannot see a field some rule needs fails the pass here, before anything
    is acted on. A listing the hub cut short is recorded in ``report.listing_incomplete``.
    With a source asked about every running server (``--activity-source=server``), each
    user's servers are surveyed first, under the actions' adaptive limiter, and judged on
    the activity the servers measured (``with_measured_activity``).
    """
    if evidence is not None and evidence.running():
        return _judge_surveyed(
            client, settings, report, now, evidence=evidence, control=control, progress=progress
        )
    needed = fields_rules_need(settings.limits, parse_version(report.hub_version))
    plan = Plan(list_kept=settings.report_kept)
    matched: set[tuple[str, str]] = set()
    with closing(list_users(client, settings, report, control, progress)) as users:
        for user in users:
            require_visible_fields(user, needed, settings.limits)
            matched |= rules_matching(user, settings.limits)
            judgement = judge(user, now, settings.limits, settings.warn_within)
            if plan.add(judgement):
                # The later copy was read later: it is the fresher view of this user.
                log.warning(
                    "user %r listed twice (the hub's list changed while paging); "
                    "using the later copy",
                    user.name,
                )
            _log_judgement(judgement, settings.dry_run)
    report.users_listed = plan.users_judged
    warn_unmatched_rules(settings.limits, matched, report)
    return plan


def _judge_surveyed(
    client: Hub,
    settings: Settings,
    report: Report,
    now: datetime,
    *,
    evidence: Evidence,
    control: PassControl | None,
    progress: ProgressLine,
) -> Plan:
    """``judge_listing`` with every user's servers surveyed before they are judged.

    The survey runs under the limiter the actions use (``in_flight``), with marks
    measured for probes (``SURVEY_TUNING``): every probe makes the single-user server
    check its token with the hub, on the thread that serves everyone else, so the survey
    keeps fewer probes in flight while the hub is slow to answer others, and at most
    ``--concurrency`` that the hub is working for. A probe that has waited far longer
    than the hub could make it wait (a server that never answers) gives its slot up
    (``SURVEY_STALLS``, at most 100 such probes at once) and runs on to its deadline: a
    few unreachable servers cannot stall the pass. The listing is read lazily, a user
    only when a slot is free, so the next page is asked for only once this one is being
    surveyed; users are judged in listing order (a user listed twice keeps the later
    copy), which holds back at most the users finished while an earlier one's probe is
    still out (each probe has a whole-answer deadline).
    """
    needed = fields_rules_need(settings.limits, parse_version(report.hub_version))
    plan = Plan(list_kept=settings.report_kept)
    matched: set[tuple[str, str]] = set()
    limiter = InFlightLimiter(settings.concurrency, SURVEY_TUNING)
    workers = settings.concurrency + SURVEY_STALLS.cap

    def surveyed(numbered: tuple[int, User]) -> User:
        return with_measured_activity(numbered[1], evidence, settings, now)

    with (
        closing(list_users(client, settings, report, control, progress)) as users,
        ThreadPoolExecutor(workers, thread_name_prefix="idle-cull-survey") as pool,
    ):
        done = in_flight(
            pool,
            enumerate(users),
            surveyed,
            limiter=limiter,
            probe=client.responsiveness,
            stalls=SURVEY_STALLS,
            probe_after_start=True,
        )
        with closing(done):
            for user in in_listing_order(done):
                require_visible_fields(user, needed, settings.limits)
                matched |= rules_matching(user, settings.limits)
                judgement = judge(user, now, settings.limits, settings.warn_within)
                if plan.add(judgement):
                    log.warning("user %r listed twice; using the later copy", user.name)
                _log_judgement(judgement, settings.dry_run)
    log.debug("surveys in flight: at most %d of %d", limiter.highest, limiter.ceiling)
    report.users_listed = plan.users_judged
    warn_unmatched_rules(settings.limits, matched, report)
    return plan


def in_listing_order(
    done: Iterable[tuple[tuple[int, Any], Future[R]]],
) -> Generator[R, None, None]:
    """Surveyed users, from ``in_flight``'s completion order back into listing order."""
    held: dict[int, Future[R]] = {}
    expected = 0
    for (index, _), future in done:
        held[index] = future
        while expected in held:
            yield held.pop(expected).result()
            expected += 1


def with_measured_activity(
    user: User, evidence: Evidence, settings: Settings, now: datetime
) -> User:
    """The user with each ready server's ``last_activity`` as the server itself measured
    it (its kernels and terminals), where a source asked about every running server
    measured one; a server whose probe failed or found nothing to measure keeps the
    hub's record. A dry run asks nothing and records which servers would be asked.
    An excluded user's servers are not asked: nothing they say could stop them, and a
    probe costs the hub a token check, mints the user a token, and through the proxy
    shows up as activity in the hub's record."""
    if excluded(user, settings.limits):
        return user
    servers = []
    for server in user.servers:
        target = survey_target(user, server, settings, now)
        if target is None:
            servers.append(server)
            continue
        if settings.dry_run:
            evidence.would_survey(target)
            servers.append(server)
            continue
        measured = measured_activity(evidence.survey(target, now))
        servers.append(server if measured is None else replace(server, last_activity=measured))
    return replace(user, servers=tuple(servers))


def survey_target(user: User, server: Server, settings: Settings, now: datetime) -> Target | None:
    """The server as a surveying source is asked about it; ``None`` when not ready."""
    if not server.ready:
        return None
    limit, _ = idle_limit(user, server, settings.limits)
    age = None if server.started is None else (now - server.started).total_seconds()
    label = user.name if server.is_default else f"{user.name}/{server.name}"
    return Target(
        user.name,
        server.name,
        label,
        server.url,
        server.last_activity or server.started,
        age,
        idle_limit=limit,
        started=server.started,
    )


def measured_activity(findings: Sequence[Finding]) -> datetime | None:
    """The activity a server measured itself, if any source could measure it."""
    return next(
        (f.idle_since for f in findings if f.idle_since is not None and f.failed is None), None
    )


def list_users(
    client: Hub,
    settings: Settings,
    report: Report,
    control: PassControl | None = None,
    progress: ProgressLine = _no_progress,
) -> Generator[User, None, None]:
    """Every user the pass must judge, as pages arrive; unusable records are set aside.

    Which listing (``state=ready``, or everyone filtered here: always for
    ``--cull-users``) is ``listing.read_listing``'s choice. Pages are read one
    after the other, the next asked for only once this one is judged, and after a short
    gap (``pages.paced``), so that what queued behind one page on the hub's only thread
    is served before the next. A user can come twice when the hub's list changes while
    paging; the caller keeps the later copy. Once the last page is read, whether the hub
    handed over every user it counts is recorded (``report.listing_incomplete``).
    """
    version = parse_version(report.hub_version)
    planned = listing_for(version, settings.limits.cull_users)
    listing, pages = read_listing(
        paced(client.user_page), planned, settings.api_page_size, paginated=paginates(version)
    )
    count = 0
    for page in pages:
        if control is not None and control.stopped():
            raise PassInterrupted(f"{control.reason} while listing users; nothing was culled")
        for record in page:
            user = _parse_record(record, report)
            if user is not None and listing.keeps(user):
                count += 1
                yield user
        progress(f"listing users ({listing.label}): {count}")
    log.info("listed %s (%s)", counted(count, "user record"), listing.label)
    report.listing_incomplete = pages.shortfall()


def _parse_record(record: object, report: Report) -> User | None:
    try:
        return User.from_api(record)
    except RecordError as error:
        log.warning("ignoring a user record: %s", error)
        report.rejected_records.append(str(error))
        return None


def fields_rules_need(limits: CullLimits, version: tuple[int, ...]) -> frozenset[str]:
    """The user fields the rules read, which the token's scopes must not hide.

    Empty before JupyterHub 2.0: no scopes then, and older shapes are handled by the models.
    """
    if version and version < (2, 0):
        return frozenset()
    return fields_needed(limits)


def require_visible_fields(user: User, needed: frozenset[str], limits: CullLimits) -> None:
    """Fail before acting when the token's scopes hide a field a rule depends on.

    Without this, a hidden ``last_activity`` would read as "never active" and a hidden
    ``admin`` as "not an admin": exactly the servers and users that must not be culled.
    """
    missing = sorted(needed & user.hidden)
    if missing:
        scopes = sorted({SCOPED_FIELDS[name] for name in missing})
        raise HubAuthError(
            f"the token cannot read {', '.join(missing)} of users (e.g. {user.name!r}); "
            f"it needs the scope(s) {', '.join(scopes)}"
            + (" (admin:users includes them)" if limits.cull_users else "")
            + "; nothing was culled. See README, 'Role and scopes'"
        )
    if limits.profile_timeouts and any(s.user_options is None for s in user.servers):
        raise HubAuthError(
            f"--profile-timeout needs the servers' user_options, which the hub does not "
            f"report (e.g. for {user.name!r}); it needs JupyterHub 2.0 or newer and the "
            "scope read:servers; nothing was culled"
        )


def _choose_clock(settings: Settings, client: Hub, local: Clock, report: Report) -> Clock:
    """ "Now" on the hub's clock (it stamps last_activity), or this machine's if asked.

    A cron host whose clock runs ahead would otherwise see everyone as idle too early.
    """
    if settings.clock == "local":
        return local
    hub_now = client.hub_now()
    if hub_now is None:
        log.warning("the hub sent no Date header; measuring idleness on this machine's clock")
        report.clock = "local"
        return local
    local_now = local()
    skew = (hub_now - local_now).total_seconds()
    report.skew_seconds = skew
    refusal = clocks_disagree(hub_now, local_now, settings.limits)
    if refusal is not None and not settings.allow_clock_skew:
        raise ClocksDisagree(refusal)
    phrase = skew_phrase(skew)
    if phrase is None:
        log.info("measuring idleness on the hub's clock")
    else:
        level = logging.WARNING if abs(skew) > SKEW_WORTH_A_WARNING else logging.INFO
        log.log(level, "%s; idleness is measured on the hub's clock", phrase)
    return lambda: client.hub_now() or local()


def _log_judgement(judgement: Judgement, dry_run: bool) -> None:
    """Actions and skips at info; keeps at debug (a big hub keeps most of its users,
    which at info would be 100,000 lines a pass; the summary line counts them)."""
    mark = "DRY RUN: " if dry_run else ""
    decisions: list[ServerDecision | UserDecision] = list(judgement.servers)
    if judgement.decision is not None:
        decisions.append(judgement.decision)
    for decision in decisions:
        level = logging.DEBUG if decision.action is Action.KEEP else logging.INFO
        log.log(level, "%s%s %s: %s", mark, _verb(decision), decision.label, decision.reason)


def _log_upcoming(report: Report) -> None:
    for soon in report.upcoming:
        label = f"{soon.user}/{soon.server}" if soon.server else soon.user
        log.info(
            "upcoming: server %s will be culled in %s (idle %s of %s, %s)",
            label,
            format_duration(soon.seconds_left),
            format_duration(soon.idle_seconds),
            format_duration(soon.limit_seconds),
            soon.rule,
        )


def _record_idle(plan: Plan, report: Report) -> None:
    """Record the decisions that need no action: skipped ones, and kept ones if listed.

    Kept decisions that get no entry are counted in the report instead.
    """
    report.kept_listed = plan.list_kept
    servers = [d for d in plan.servers if d.action is not Action.STOP]
    users = [d for d in plan.users if d.action is not Action.DELETE]
    if not plan.list_kept:
        counted_servers, counted_users = plan.counted_keeps
        report.servers_kept_unlisted = counted_servers + _keeps(servers)
        report.users_kept_unlisted = counted_users + _keeps(users)
        servers = [d for d in servers if d.action is not Action.KEEP]
        users = [d for d in users if d.action is not Action.KEEP]
    report.entries.extend(Entry("server", d) for d in servers)
    report.entries.extend(Entry("user", d) for d in users)


def _keeps(decisions: Iterable[ServerDecision | UserDecision]) -> int:
    return sum(1 for d in decisions if d.action is Action.KEEP)


def _record_all(plan: Plan, report: Report, outcome: Outcome, detail: str = "") -> None:
    _record_idle(plan, report)
    report.entries.extend(Entry("server", d).settled(outcome, 0, detail) for d in plan.stops)
    report.entries.extend(Entry("user", d).settled(outcome, 0, detail) for d in plan.deletions)


def _refuse(plan: Plan, report: Report, reason: str, detail: str = "") -> None:
    """A plan refused (over the blast-radius caps, or from an incomplete listing) is
    shown in full and not acted on; ``detail`` (default: ``reason``) goes on each entry."""
    log.error("refusing to act: %s; nothing was culled. The plan was:", reason)
    actions: list[ServerDecision | UserDecision] = [*plan.stops, *plan.deletions]
    for decision in actions:
        log.error("  would %s %s: %s", _verb(decision), decision.label, decision.reason)
    _record_all(plan, report, Outcome.NOT_ATTEMPTED, f"refused: {detail or reason}")


def _record_dry_run(plan: Plan, report: Report, evidence: Evidence | None = None) -> None:
    """Record what would be done; with ``--probe-kernels``, which servers would be asked
    first (nothing is sent to them: a probe is proxied traffic, which counts as activity)."""
    _record_idle(plan, report)
    would_probe = 0
    for decision in plan.stops:
        detail = "--dry-run"
        found = evidence.would_check(target_of(decision)) if evidence is not None else []
        if any(f.source == "kernels" for f in found):
            detail += "; would probe its kernels first"
            would_probe += 1
        report.entries.append(Entry("server", decision).settled(Outcome.DRY_RUN, 0, detail))
    report.entries.extend(
        Entry("user", d).settled(Outcome.DRY_RUN, 0, "--dry-run") for d in plan.deletions
    )
    log.info(
        "DRY RUN: nothing was changed; %s would be stopped, %s deleted",
        counted(len(plan.stops), "server"),
        counted(len(plan.deletions), "user"),
    )
    if evidence is not None and evidence.source("kernels") is not None:
        log.info(
            "DRY RUN: %d of them would be probed for busy kernels first; nothing was sent "
            "to any server",
            would_probe,
        )


def target_of(decision: ServerDecision, fresh: Server | None = None) -> Target:
    """The server a decision is about, as the sources of evidence are asked about it.

    The fresh record from the re-check, when there is one, gives the url and the activity
    (``started`` when it has none) a source measures from; else the listing's.
    """
    if fresh is not None:
        url, activity = fresh.url, fresh.last_activity or fresh.started
    else:
        url, activity = decision.url, decision.last_activity
    return Target(
        decision.user, decision.server, decision.label, url, activity, decision.age_seconds
    )


class _Actor:
    """Carries out a plan: stops first, then deletions whose servers all stopped."""

    def __init__(
        self,
        client: Hub,
        settings: Settings,
        control: PassControl,
        now: Clock,
        listed: Callable[[str], User | None],
        *,
        listed_at: float,
        progress: ProgressLine = _no_progress,
        evidence: Evidence | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.control = control
        self.now = now
        self.listed = listed
        self.listed_at = listed_at
        self.progress = progress
        self.evidence = evidence
        self._first_stop: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def act(self, plan: Plan, report: Report) -> None:
        _record_idle(plan, report)
        if self.evidence is not None:
            self.evidence.expect(target_of(d) for d in plan.stops)
        workers = self.settings.concurrency
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="idle-cull") as pool:
            stops = self._run(pool, plan.stops, self.stop)
            report.entries.extend(Entry("server", d).settled(*r) for d, r in stops)
            stopped = {(d.user, d.server) for d, (outcome, _, _) in stops if outcome in _STOPPED}
            ready, blocked = _split_deletions(plan.deletions, stopped)
            report.entries.extend(blocked)
            deletions = self._run(pool, ready, self.delete)
            report.entries.extend(Entry("user", d).settled(*r) for d, r in deletions)

    def _run(
        self, pool: ThreadPoolExecutor, decisions: Sequence[D], action: Callable[[D], ActionResult]
    ) -> list[tuple[D, tuple[Outcome, int, str]]]:
        """One kind of action, as many in flight as the hub takes (``idle_cull.hub.limiter``)."""
        limiter = InFlightLimiter(self.settings.concurrency)
        results = _run_actions(
            pool,
            decisions,
            action,
            self.progress,
            limiter=limiter,
            probe=self.client.responsiveness,
        )
        if decisions:
            log.debug("actions in flight: at most %d of %d", limiter.highest, limiter.ceiling)
        return results

    def stop(self, decision: ServerDecision) -> ActionResult:
        if self.control.stopped():
            return ActionResult(Outcome.NOT_ATTEMPTED, 0, self.control.reason)
        fresh: Server | None = None
        if self._stop_recheck_due():
            rechecked = self._recheck_server(decision)
            if isinstance(rechecked, ActionResult):
                return rechecked
            fresh = rechecked
        if self.evidence is not None:
            kept = self._gather(self.evidence, decision, fresh)
            if kept is not None:
                return kept
        with self._lock:
            self._first_stop.setdefault(decision.user, self.now())
        return self.client.stop_server(decision.user, decision.server, remove=decision.remove)

    def delete(self, decision: UserDecision) -> ActionResult:
        if self.control.stopped():
            return ActionResult(Outcome.NOT_ATTEMPTED, 0, self.control.reason)
        if self.settings.recheck:  # always: a deletion cannot be undone
            objection = self._recheck_user(decision)
            if objection is not None:
                return objection
        return self.client.delete_user(decision.user)

    def _stop_recheck_due(self) -> bool:
        """Whether the listing is old enough for a re-check before a stop to be worth it.

        The hub learns of activity late (single-user servers post it every 5 minutes,
        the proxy's is copied as often), so a record listed seconds ago is as fresh as
        the hub's own view; a re-check then costs the hub a request (5-11 ms of its only
        thread) and protects nothing. Late in a long pass it matters, and is made.
        Deletions are always re-checked: they cannot be undone, they are few, and the
        pass itself has just changed their users (it stopped their servers).
        """
        if not self.settings.recheck:
            return False
        return time.monotonic() - self.listed_at >= self.settings.recheck_after

    def _fresh(self, name: str) -> User | ActionResult:
        record = self.client.get_user(name)
        if record is None:
            return ActionResult(Outcome.GONE, 1, "the user was gone at the re-check")
        try:
            return User.from_api(record)
        except RecordError as error:
            return ActionResult(Outcome.SKIPPED, 1, f"re-check: {error}")

    def _gather(
        self, evidence: Evidence, decision: ServerDecision, fresh: Server | None
    ) -> ActionResult | None:
        """Ask the sources of evidence about the server (``target_of``); a result keeps it."""
        kept = evidence.check(target_of(decision, fresh), self.now())
        if kept is None:
            return None
        rechecked = 1 if fresh is not None else 0
        return ActionResult(kept.outcome, rechecked + kept.attempts, kept.detail)

    def _recheck_server(self, decision: ServerDecision) -> ActionResult | Server:
        """Decide again on a fresh record: a server may have woken up since the listing.

        The fresh server record when the stop still stands, else the result that ends it.
        """
        user = self._fresh(decision.user)
        if isinstance(user, ActionResult):
            return user
        server = next((s for s in user.servers if s.name == decision.server), None)
        if server is None:
            return ActionResult(Outcome.GONE, 1, "the server had stopped by the re-check")
        if self.evidence is not None:
            # judged on what the server measured, as in the listing (the hub's record is
            # what an open tab keeps fresh)
            measured = measured_activity(self.evidence.surveyed(user.name, server.name))
            if measured is not None:
                server = replace(server, last_activity=measured)
        again = decide_server(user, server, self.now(), self.settings.limits)
        if again.action is not Action.STOP:
            return ActionResult(Outcome.SKIPPED, 1, f"re-check: {again.reason}")
        return server

    def _recheck_user(self, decision: UserDecision) -> ActionResult | None:
        user = self._fresh(decision.user)
        if isinstance(user, ActionResult):
            return user
        with self._lock:
            first_stop = self._first_stop.get(decision.user)
        listed = self.listed(decision.user)
        if listed is None:  # cannot happen: every planned deletion keeps its listed record
            return ActionResult(Outcome.SKIPPED, 1, "re-check: the listed record was not kept")
        objection = user_changed_since_listing(listed, user, first_stop, self.settings.limits)
        if objection is not None:
            return ActionResult(Outcome.SKIPPED, 1, f"re-check: {objection}")
        return None


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
    pool: ThreadPoolExecutor,
    decisions: Sequence[D],
    action: Callable[[D], ActionResult],
    progress: ProgressLine = _no_progress,
    *,
    limiter: InFlightLimiter,
    probe: Callable[[], float | None],
    clock: Callable[[], float] = time.monotonic,
) -> list[tuple[D, tuple[Outcome, int, str]]]:
    """Run ``action`` for every decision on the pool (``in_flight``); results in
    completion order, each logged as it is settled."""
    results: list[tuple[D, tuple[Outcome, int, str]]] = []
    done = in_flight(pool, iter(decisions), action, limiter=limiter, probe=probe, clock=clock)
    for decision, future in done:
        progress(f"{_verb(decision)}: {len(results) + 1}/{len(decisions)}")
        results.append((decision, _settle(decision, future)))
    return results


def in_flight(
    pool: ThreadPoolExecutor,
    items: Iterator[T],
    work: Callable[[T], R],
    *,
    limiter: InFlightLimiter,
    probe: Callable[[], float | None],
    clock: Callable[[], float] = time.monotonic,
    stalls: StallRelease | None = None,
    probe_after_start: bool = False,
) -> Generator[tuple[T, Future[R]], None, None]:
    """``work`` on every item, as many in flight as ``limiter`` allows; yields each
    finished (item, future) in completion order.

    Only this thread submits, and only it touches ``limiter``: as many items as the
    limiter allows, paced by it, while a thread of its own probes the hub's
    responsiveness whenever the limiter asks. Finished items are handed over after the
    next ones started, so our bookkeeping overlaps the hub's work. ``items`` is read one
    item at a time, only when a slot is free: a lazily read listing is never read ahead
    of the work, and no future is held for an item before it starts.

    With ``stalls`` (the survey), an item running longer than the hub could be
    responsible for is released from its slot (``StallRelease``): it no longer counts
    against the limit, and its duration does not enter the average that paces starts
    (one 5 s timeout would otherwise space the next starts by seconds). ``pool`` must
    then have ``stalls.cap`` workers more than the limiter's ceiling. Without it (the
    actions), every item counts until it finishes.

    ``probe_after_start`` (the survey) also looks for a due probe once the next items
    have started. Otherwise a probe is sent only when work is still running at the top
    of the loop, which never happens while each item finishes within the probe interval
    (0.2 s) of its start: a survey of quick probes was never measured, and its limit
    stayed at 1. The actions keep their original schedule (unchanged by issue 24).
    """
    upcoming = next(items, _END)
    running: dict[Future[R], tuple[T, float]] = {}
    released: set[Future[R]] = set()
    finished: list[tuple[T, Future[R]]] = []
    probing: Future[float | None] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="idle-cull-probe") as prober:
        while True:
            now = clock()
            stall_check = None
            if stalls is not None and upcoming is not _END:
                stall_check = _release_stalled(running, released, stalls, limiter, now)
            if probing is not None and probing.done():
                latency = None if probing.exception() else probing.result()
                counted = len(running) - len(released)
                limiter.probe_result(latency, counted, waiting=upcoming is not _END)
                probing = None
            if probing is None and running and limiter.probe_due(now):
                probing = prober.submit(probe)
            pause = limiter.wait_before_start(now, len(running) - len(released))
            while upcoming is not _END and pause == 0:
                item = cast(T, upcoming)
                running[pool.submit(work, item)] = (item, now)
                limiter.started(now)
                upcoming = next(items, _END)
                now = clock()  # reading the next item may have waited for a page
                pause = limiter.wait_before_start(now, len(running) - len(released))
            if probe_after_start and probing is None and running and limiter.probe_due(now):
                probing = prober.submit(probe)
            yield from finished
            finished.clear()
            if not running:
                return
            timeout = None if probing is not None else limiter.until_probe(now)
            if upcoming is not _END:
                timeout = _sooner(timeout, pause, stall_check)
            watched: list[Future[Any]] = [*running, *([probing] if probing else [])]
            for future in wait(watched, timeout=timeout, return_when=FIRST_COMPLETED).done:
                if future in running:
                    item, started = running.pop(future)
                    if future in released:
                        released.discard(future)
                    else:
                        limiter.action_finished(clock() - started)
                    finished.append((item, future))


def _sooner(timeout: float | None, *wakes: float | None) -> float | None:
    """``timeout``, shortened to the soonest of ``wakes`` that is set (``None`` or 0:
    nothing to wake up for)."""
    for wake in wakes:
        if wake:
            timeout = wake if timeout is None else min(timeout, wake)
    return timeout


def _release_stalled(
    running: dict[Future[R], tuple[T, float]],
    released: set[Future[R]],
    stalls: StallRelease,
    limiter: InFlightLimiter,
    now: float,
) -> float | None:
    """Release the items ``stalls`` says have waited too long, oldest first; the seconds
    until the next one may be due (``None``: nothing to wake up for)."""
    held = sorted(
        ((started, future) for future, (_, started) in running.items() if future not in released),
        key=lambda pair: pair[0],
    )
    ages = [now - started for started, _ in held]
    typical, slow = limiter.typical, limiter.hub_slow
    count = stalls.due(ages, len(released), typical, hub_slow=slow)
    released.update(future for _, future in held[:count])
    return stalls.next_check(ages[count:], len(released), typical, hub_slow=slow)


def _settle(
    decision: ServerDecision | UserDecision, future: Future[ActionResult]
) -> tuple[Outcome, int, str]:
    """The outcome of one finished action, logged."""
    try:
        result = future.result()
    except HubError as error:
        log.error("%s %s failed: %s", _verb(decision), decision.label, error)
        return Outcome.FAILED, error.attempts, str(error)
    log.info(
        "%s %s: %s%s",
        _verb(decision),
        decision.label,
        result.outcome.value,
        f" ({result.detail})" if result.detail else "",
    )
    return result.outcome, result.attempts, result.detail
