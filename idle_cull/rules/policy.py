"""Pure culling decisions: records plus "now" plus limits in, decisions with reasons out.

Nothing here performs I/O or reads a clock, so every rule is testable with a table and
every decision carries the sentence that will appear in the log and the report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from fnmatch import fnmatchcase

from idle_cull.durations import format_duration
from idle_cull.models import Server, User
from idle_cull.wording import counted

__all__ = [
    "Action",
    "Caps",
    "CullLimits",
    "Judgement",
    "Plan",
    "ServerDecision",
    "Upcoming",
    "UserDecision",
    "cap_exceeded",
    "decide_server",
    "decide_user",
    "excluded",
    "idle_limit",
    "judge",
    "upcoming_for",
    "user_changed_since_listing",
]


class Action(str, Enum):
    """What the pass will do with one server or user."""

    STOP = "stop"
    DELETE = "delete"
    KEEP = "keep"
    SKIP = "skip"  # cannot be judged now (pending, not ready); looked at again next pass


@dataclass(frozen=True)
class CullLimits:
    """The culling rules: upstream's flags with their defaults, plus per-kind limits.

    Per-kind limits are tuples of ``(key, seconds)`` pairs in the order given on the
    command line, so the settings stay immutable and "first match wins" is well defined.
    """

    timeout: float = 600.0
    max_age: float = 0.0
    cull_users: bool = False
    cull_admin_users: bool = True
    cull_default_servers: bool = True
    cull_named_servers: bool = True
    remove_named_servers: bool = False
    exclude_users: tuple[str, ...] = ()  # shell globs
    exclude_groups: tuple[str, ...] = ()
    group_timeouts: tuple[tuple[str, float], ...] = ()
    profile_timeouts: tuple[tuple[str, float], ...] = ()
    server_timeouts: tuple[tuple[str, float], ...] = ()  # named-server globs
    user_timeout: float | None = None  # None: same as timeout
    user_max_age: float | None = None  # None: same as max_age

    @property
    def needs_groups(self) -> bool:
        return bool(self.exclude_groups or self.group_timeouts)


def excluded(user: User, limits: CullLimits) -> str | None:
    """The exclusion that protects this user (and all its servers), if any."""
    for pattern in limits.exclude_users:
        if fnmatchcase(user.name, pattern):
            return f"excluded by --exclude-user {pattern}"
    for group in user.groups or ():
        if group in limits.exclude_groups:
            return f"excluded by --exclude-group {group}"
    return None


def rules_matching(user: User, limits: CullLimits) -> set[tuple[str, str]]:
    """Every name rule that applies to this user or one of its servers, as
    ``(option, rule)``, even where a rule of higher precedence wins: so that a rule
    that named nobody (a typo) can be told apart from one that lost to another.
    """
    found = {("--exclude-user", p) for p in limits.exclude_users if fnmatchcase(user.name, p)}
    for server in user.servers:
        profile = (server.user_options or {}).get("profile")
        found |= {("--profile-timeout", n) for n, _ in limits.profile_timeouts if profile == n}
        if not server.is_default:
            found |= {
                ("--server-timeout", p)
                for p, _ in limits.server_timeouts
                if fnmatchcase(server.name, p)
            }
    return found


def idle_limit(user: User, server: Server, limits: CullLimits) -> tuple[float, str]:
    """The idle limit for one server and the rule it comes from.

    Precedence: the server's profile, then its name (named servers), then the most
    generous limit of the user's groups, then ``--timeout``.
    """
    profile = (server.user_options or {}).get("profile")
    for name, seconds in limits.profile_timeouts:
        if profile == name:
            return seconds, f"profile {name}"
    if not server.is_default:
        for pattern, seconds in limits.server_timeouts:
            if fnmatchcase(server.name, pattern):
                return seconds, f"server {pattern}"
    by_group = [(s, g) for g, s in limits.group_timeouts if g in (user.groups or ())]
    if by_group:
        seconds, group = max(by_group)
        return seconds, f"group {group}"
    return limits.timeout, "--timeout"


@dataclass(frozen=True)
class ServerDecision:
    user: str
    server: str
    action: Action
    reason: str
    remove: bool = False
    last_activity: datetime | None = None
    idle_seconds: float | None = None
    age_seconds: float | None = None
    url: str | None = None  # the server's url path, which --probe-kernels asks

    @property
    def label(self) -> str:
        """``alice`` for the default server, ``alice/gpu`` for a named one."""
        return self.user if not self.server else f"{self.user}/{self.server}"


@dataclass(frozen=True)
class UserDecision:
    user: str
    action: Action
    reason: str
    servers_to_stop_first: tuple[str, ...] = ()
    last_activity: datetime | None = None
    idle_seconds: float | None = None
    age_seconds: float | None = None

    @property
    def label(self) -> str:
        return self.user


@dataclass(frozen=True)
class Upcoming:
    """A server that will cross its idle limit soon (``--warn-within``), for notices."""

    user: str
    server: str  # "" for the default server
    last_activity: datetime | None
    idle_seconds: float
    limit_seconds: float
    rule: str  # which limit applies, e.g. "--timeout" or "profile gpu"

    @property
    def seconds_left(self) -> float:
        return max(0.0, self.limit_seconds - self.idle_seconds)


@dataclass(frozen=True)
class Judgement:
    """Everything one pass decided about one listed user: its servers, itself, warnings.

    ``listed`` is the record as listed, held only for a user to be deleted: the re-check
    compares the fresh record against it. Every other record can be dropped once judged.
    """

    user: str
    servers: tuple[ServerDecision, ...]
    decision: UserDecision | None = None  # None without --cull-users
    upcoming: tuple[Upcoming, ...] = ()
    listed: User | None = None

    @property
    def only_keeps(self) -> bool:
        """Nothing to do, skip or warn about: the common case, counted rather than held."""
        return (
            not self.upcoming
            and all(d.action is Action.KEEP for d in self.servers)
            and (self.decision is None or self.decision.action is Action.KEEP)
        )


class Plan:
    """The decisions of one pass, added user by user while the listing goes on.

    A big hub has 100,000 users and nearly all of them need nothing. A user whose every
    decision is "keep" is counted, not held (unless ``list_kept``), so a pass's memory
    grows with what it has to do rather than with the hub. A user listed twice (the hub's
    list changed while paging) counts once: the later copy, read later, replaces the
    earlier one. Order is the listing order, which the logs and the actions follow.
    """

    def __init__(self, *, list_kept: bool = False) -> None:
        self.list_kept = list_kept
        self._held: dict[str, Judgement] = {}
        # Users only counted, mapped to how many (servers, users) they kept; the few
        # distinct shapes are shared, so one entry costs about a dict slot.
        self._counted: dict[str, tuple[int, int]] = {}
        self._shapes: dict[tuple[int, int], tuple[int, int]] = {}
        self._counted_servers = 0
        self._counted_users = 0

    def add(self, judgement: Judgement) -> bool:
        """Take one user's judgement; ``True`` when it replaced an earlier copy of the user."""
        replaced = self._forget(judgement.user)
        if self.list_kept or not judgement.only_keeps:
            self._held[judgement.user] = judgement
            return replaced
        shape = (len(judgement.servers), 0 if judgement.decision is None else 1)
        self._counted[judgement.user] = self._shapes.setdefault(shape, shape)
        self._counted_servers += shape[0]
        self._counted_users += shape[1]
        return replaced

    def _forget(self, name: str) -> bool:
        if self._held.pop(name, None) is not None:
            return True
        shape = self._counted.pop(name, None)
        if shape is None:
            return False
        self._counted_servers -= shape[0]
        self._counted_users -= shape[1]
        return True

    @property
    def users_judged(self) -> int:
        return len(self._held) + len(self._counted)

    @property
    def counted_keeps(self) -> tuple[int, int]:
        """Kept servers and kept users that were counted instead of held."""
        return self._counted_servers, self._counted_users

    @property
    def servers(self) -> tuple[ServerDecision, ...]:
        """Server decisions held, in listing order (all of them with ``list_kept``)."""
        return tuple(d for j in self._held.values() for d in j.servers)

    @property
    def users(self) -> tuple[UserDecision, ...]:
        return tuple(j.decision for j in self._held.values() if j.decision is not None)

    @property
    def stops(self) -> tuple[ServerDecision, ...]:
        return tuple(d for d in self.servers if d.action is Action.STOP)

    @property
    def deletions(self) -> tuple[UserDecision, ...]:
        return tuple(d for d in self.users if d.action is Action.DELETE)

    @property
    def running(self) -> int:
        """Servers that could be judged (not pending or starting): the base of a fraction."""
        held = sum(1 for d in self.servers if d.action is not Action.SKIP)
        return held + self._counted_servers

    @property
    def upcoming(self) -> list[Upcoming]:
        """Servers that will cross their idle limit soon (``--warn-within``), soonest first."""
        soon = [u for j in self._held.values() for u in j.upcoming]
        return sorted(soon, key=lambda u: u.seconds_left)

    def listed_user(self, name: str) -> User | None:
        """The listed record of a user planned for deletion, for the re-check."""
        judgement = self._held.get(name)
        return None if judgement is None else judgement.listed


# The hub's Date header, our usual "now", has one-second resolution: activity stamped a
# moment ago can look up to a second in the future. That is resolution, not skew.
CLOCK_RESOLUTION = 2.0


def _seconds_between(later: datetime, earlier: datetime | None) -> float | None:
    if earlier is None:
        return None
    seconds = (later - earlier).total_seconds()
    return 0.0 if -CLOCK_RESOLUTION <= seconds < 0 else seconds


def decide_server(user: User, server: Server, now: datetime, limits: CullLimits) -> ServerDecision:
    """Stop a ready server that is idle past ``timeout`` or older than ``max_age``.

    Pending and not-ready servers are skipped rather than kept, so the report says they
    were not judged; a server of a kind that is not culled is never stopped, neither for
    idleness nor for age (upstream ignored the kind flags for max-age).
    """
    reference = server.last_activity or server.started
    idle = _seconds_between(now, reference)
    age = _seconds_between(now, server.started)

    def decision(action: Action, reason: str) -> ServerDecision:
        remove = action is Action.STOP and limits.remove_named_servers and not server.is_default
        return ServerDecision(
            user.name, server.name, action, reason, remove, reference, idle, age, server.url
        )

    exclusion = excluded(user, limits)
    if exclusion:
        return decision(Action.KEEP, exclusion)
    if server.pending:
        return decision(Action.SKIP, f"pending {server.pending}")
    if not server.ready:
        return decision(Action.SKIP, "not ready")
    if server.is_default and not limits.cull_default_servers:
        return decision(
            Action.KEEP, "default servers are not culled (--cull-default-servers=false)"
        )
    if not server.is_default and not limits.cull_named_servers:
        return decision(Action.KEEP, "named servers are not culled (--cull-named-servers=false)")
    if idle is None:
        return decision(Action.KEEP, "no last_activity and no start time: cannot tell how idle")
    limit, rule = idle_limit(user, server, limits)
    if idle >= limit:
        return decision(Action.STOP, _compared("idle", idle, ">=", limit, rule))
    if limits.max_age and age is not None and age >= limits.max_age:
        return decision(Action.STOP, _compared("age", age, ">=", limits.max_age, "--max-age"))
    if idle < 0:
        return decision(Action.KEEP, "last activity is in the future (clock skew?)")
    return decision(Action.KEEP, _compared("idle", idle, "<", limit, rule))


def _compared(what: str, seconds: float, relation: str, limit: float, rule: str) -> str:
    """``idle 2h10m >= 2h (profile gpu)``: the measurement, the limit and its rule."""
    return f"{what} {format_duration(seconds)} {relation} {format_duration(limit)} ({rule})"


def decide_user(
    user: User, server_decisions: Iterable[ServerDecision], now: datetime, limits: CullLimits
) -> UserDecision:
    """Delete a user only if none of its servers survives this pass and it is idle or old.

    A server that is kept, skipped or pending keeps its user: deleting a user stops its
    servers, so anything short of "every server is being stopped" protects the user.
    """
    reference = user.last_activity or user.created
    idle = _seconds_between(now, reference)
    age = _seconds_between(now, user.created)
    decisions = tuple(server_decisions)
    to_stop = tuple(d.server for d in decisions if d.action is Action.STOP)

    def decision(action: Action, reason: str) -> UserDecision:
        return UserDecision(user.name, action, reason, to_stop, reference, idle, age)

    survivor = next((d for d in decisions if d.action is not Action.STOP), None)
    if survivor is not None:
        name = survivor.server or "default"
        return decision(Action.KEEP, f"server {name!r} stays ({survivor.reason})")
    exclusion = excluded(user, limits)
    if exclusion:
        return decision(Action.KEEP, exclusion)
    if user.admin is None and not limits.cull_admin_users:
        return decision(Action.KEEP, "cannot tell whether admin (token cannot read 'admin')")
    if user.admin and not limits.cull_admin_users:
        return decision(Action.KEEP, "admin user (--cull-admin-users=false)")
    if idle is None:
        return decision(Action.KEEP, "no last_activity and no creation time: cannot tell how idle")
    timeout, timeout_rule = _user_limit(limits.user_timeout, limits.timeout, "--user-timeout")
    max_age, max_age_rule = _user_limit(limits.user_max_age, limits.max_age, "--user-max-age")
    if idle >= timeout:
        return decision(Action.DELETE, _compared("user idle", idle, ">=", timeout, timeout_rule))
    if max_age and age is not None and age >= max_age:
        return decision(Action.DELETE, _compared("user age", age, ">=", max_age, max_age_rule))
    return decision(Action.KEEP, _compared("user idle", idle, "<", timeout, timeout_rule))


def _user_limit(specific: float | None, general: float, flag: str) -> tuple[float, str]:
    """User limits default to the server limits, so old command lines keep their meaning."""
    if specific is None:
        return general, flag.replace("--user-", "--")
    return specific, flag


def judge(
    user: User, now: datetime, limits: CullLimits, warn_within: float | None = None
) -> Judgement:
    """Every decision about one user and its servers, and the warnings due for them."""
    servers = tuple(decide_server(user, server, now, limits) for server in user.servers)
    decision = decide_user(user, servers, now, limits) if limits.cull_users else None
    upcoming = upcoming_for(user, servers, now, limits, warn_within) if warn_within else ()
    to_delete = decision is not None and decision.action is Action.DELETE
    return Judgement(user.name, servers, decision, upcoming, user if to_delete else None)


def upcoming_for(
    user: User,
    decisions: Iterable[ServerDecision],
    now: datetime,
    limits: CullLimits,
    window: float,
) -> tuple[Upcoming, ...]:
    """This user's servers kept now that will cross their idle limit within ``window``.

    Users ask to be warned before their work is stopped; this is what to warn from.
    ``decisions`` are this user's server decisions, in the order of its servers.
    """
    if excluded(user, limits):
        return ()
    soon: list[Upcoming] = []
    for server, decision in zip(user.servers, decisions, strict=True):
        if decision.action is not Action.KEEP or not server.ready:
            continue
        reference = server.last_activity or server.started
        idle = _seconds_between(now, reference)
        if idle is None or idle < 0:
            continue
        limit, rule = idle_limit(user, server, limits)
        if _kind_culled(server, limits) and 0 < limit - idle <= window:
            soon.append(Upcoming(user.name, server.name, reference, idle, limit, rule))
    return tuple(soon)


def _kind_culled(server: Server, limits: CullLimits) -> bool:
    return limits.cull_default_servers if server.is_default else limits.cull_named_servers


@dataclass(frozen=True)
class Caps:
    """Blast-radius limits: a plan larger than this is not acted on at all."""

    max_culls: int | None = None  # stops plus deletions
    max_cull_fraction: float | None = None  # stops / ready servers seen


def cap_exceeded(plan: Plan, caps: Caps) -> str | None:
    """Why the plan is too large to act on, or ``None`` when it is within the caps.

    A misconfigured rule or a proxy that stopped reporting activity makes everything
    look idle at once; refusing the whole plan turns that into one failed pass instead
    of an empty hub.
    """
    actions = len(plan.stops) + len(plan.deletions)
    if caps.max_culls is not None and actions > caps.max_culls:
        return f"{counted(actions, 'cull')} planned, more than --max-culls={caps.max_culls}"
    running = plan.running
    if caps.max_cull_fraction is not None and running:
        share = len(plan.stops) / running
        if share > caps.max_cull_fraction:
            return (
                f"{len(plan.stops)} of {counted(running, 'running server')} planned to stop "
                f"({share:.0%}), "
                f"more than --max-cull-fraction={caps.max_cull_fraction:g}"
            )
    return None


def user_changed_since_listing(
    listed: User, fresh: User, our_first_stop: datetime | None, limits: CullLimits
) -> str | None:
    """Why a user planned for deletion must be kept after all, or ``None``.

    The hub stamps a user's ``last_activity`` with "now" when one of its servers stops,
    so a newer stamp at or after our own first stop of its servers is our doing, not the
    user's; anything else newer than the listing is real activity.
    """
    if fresh.servers:
        names = ", ".join(repr(s.name or "default") for s in fresh.servers)
        return f"has an active server again ({names})"
    if fresh.admin and not limits.cull_admin_users:
        return "became an admin (--cull-admin-users=false)"
    if fresh.last_activity is None or listed.last_activity is None:
        return None
    if fresh.last_activity <= listed.last_activity:
        return None
    if our_first_stop is not None and fresh.last_activity >= our_first_stop:
        return None
    return f"active since listing (last_activity {fresh.last_activity:%Y-%m-%dT%H:%M:%SZ})"
