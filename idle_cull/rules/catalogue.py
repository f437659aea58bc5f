"""Every rule, declared once with what it needs and what it decides: kube-janitor's ``Rule``.

A rule says when it is in force (from the limits), which user fields it reads (the
token's scopes must not hide them: ``runner.fields_rules_need``), which scopes the
preflight must find (``preflight.needed_scopes``), which limits the clock check measures
against (``clocks.smallest_limit``), and its decision: whom it protects (``keeps``), the
idle limit it sets for a server (``idle_limit``), the age at which it stops a server
(``age_limit``), and the names it matched (``matching``, for the warning about a rule
that named nobody). ``policy`` asks ``RULES`` in order and never names a rule itself, so
a new rule is one ``Rule`` here (with its field in ``CullLimits``) plus its option.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

from idle_cull.models import Server, User

__all__ = [
    "RULES",
    "CullLimits",
    "Limit",
    "Need",
    "Rule",
    "fields_needed",
    "limits_in_force",
    "scopes_needed",
]


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


@dataclass(frozen=True)
class Need:
    """A scope this configuration needs, and what for (it goes into the error)."""

    scope: str
    why: str
    included_in: str = ""  # a broader scope that also grants it, for the message
    # Whether the scope must cover every user the token lists (it acts on or reads users);
    # a scope about something else (groups) is held if held at all, and a filter that
    # leaves out a named group shows when that group is checked.
    per_user: bool = True


Limit = tuple[float, str]  # seconds, and the rule it comes from as the reason names it
Matched = set[tuple[str, str]]  # (option, rule) pairs, e.g. ("--profile-timeout", "gpu")


def _always(_limits: CullLimits) -> bool:
    return True


@dataclass(frozen=True)
class Rule:
    """One rule: when it is in force, the user fields it reads, the scopes it needs, the
    limits (seconds; ``None`` or 0 is off) it culls by, and its part of the decision.

    Each decision hook is optional; ``None`` means the rule takes no part in it.
    ``idle_precedence`` orders the rules that set idle limits (lower wins first).
    """

    name: str
    in_force: Callable[[CullLimits], bool] = _always
    fields: frozenset[str] = frozenset()
    scopes: tuple[Need, ...] = ()
    limits: Callable[[CullLimits], Iterable[float | None]] = lambda _limits: ()
    keeps: Callable[[User, CullLimits], str | None] | None = None
    idle_limit: Callable[[User, Server, CullLimits], Limit | None] | None = None
    idle_precedence: int = 0
    age_limit: Callable[[Server, datetime, CullLimits], Limit | None] | None = None
    matching: Callable[[User, CullLimits], Matched] | None = None


# -- each rule's decision, next to the rule below that holds it


def _profile(server: Server) -> object:
    return (server.user_options or {}).get("profile")


def _excluded_user(user: User, limits: CullLimits) -> str | None:
    for pattern in limits.exclude_users:
        if fnmatchcase(user.name, pattern):
            return f"excluded by --exclude-user {pattern}"
    return None


def _excluded_users_matching(user: User, limits: CullLimits) -> Matched:
    return {("--exclude-user", p) for p in limits.exclude_users if fnmatchcase(user.name, p)}


def _excluded_group(user: User, limits: CullLimits) -> str | None:
    for group in user.groups or ():
        if group in limits.exclude_groups:
            return f"excluded by --exclude-group {group}"
    return None


def _timeout(_user: User, _server: Server, limits: CullLimits) -> Limit:
    return limits.timeout, "--timeout"


def _max_age(_server: Server, _now: datetime, limits: CullLimits) -> Limit | None:
    return (limits.max_age, "--max-age") if limits.max_age else None


def _group_timeout(user: User, _server: Server, limits: CullLimits) -> Limit | None:
    """The most generous limit of the user's groups."""
    by_group = [(s, g) for g, s in limits.group_timeouts if g in (user.groups or ())]
    if not by_group:
        return None
    seconds, group = max(by_group)
    return seconds, f"group {group}"


def _profile_timeout(_user: User, server: Server, limits: CullLimits) -> Limit | None:
    profile = _profile(server)
    for name, seconds in limits.profile_timeouts:
        if profile == name:
            return seconds, f"profile {name}"
    return None


def _profiles_matching(user: User, limits: CullLimits) -> Matched:
    return {
        ("--profile-timeout", n)
        for n, _ in limits.profile_timeouts
        if any(_profile(server) == n for server in user.servers)
    }


def _server_timeout(_user: User, server: Server, limits: CullLimits) -> Limit | None:
    if server.is_default:
        return None
    for pattern, seconds in limits.server_timeouts:
        if fnmatchcase(server.name, pattern):
            return seconds, f"server {pattern}"
    return None


def _servers_matching(user: User, limits: CullLimits) -> Matched:
    return {
        ("--server-timeout", p)
        for server in user.servers
        if not server.is_default
        for p, _ in limits.server_timeouts
        if fnmatchcase(server.name, p)
    }


# Precedence of idle limits: the server's profile, then its name (named servers), then
# the user's groups, then --timeout.
RULES: tuple[Rule, ...] = (
    Rule(
        "idle servers (--timeout)",
        fields=frozenset({"last_activity", "servers"}),
        scopes=(
            Need("list:users", "to list users"),
            Need("read:users:activity", "to read users' last_activity"),
            Need("read:servers", "to read servers and their activity"),
            Need("delete:servers", "to stop servers"),
        ),
        limits=lambda limits: (limits.timeout,),
        idle_limit=_timeout,
        idle_precedence=4,
    ),
    Rule(
        "old servers (--max-age)",
        limits=lambda limits: (limits.max_age,),
        age_limit=_max_age,
    ),
    Rule(
        "idle and old users (--cull-users)",
        in_force=lambda limits: limits.cull_users,
        fields=frozenset({"admin", "created"}),
        scopes=(
            Need("read:users", "to read admin and created (--cull-users)", "admin:users"),
            Need("delete:users", "to delete users (--cull-users)", "admin:users"),
        ),
        limits=lambda limits: (limits.user_timeout, limits.user_max_age),
    ),
    Rule(
        "excluded users (--exclude-user)",
        keeps=_excluded_user,
        matching=_excluded_users_matching,
    ),
    Rule(
        "group rules (--exclude-group, --group-timeout)",
        in_force=lambda limits: limits.needs_groups,
        fields=frozenset({"groups"}),
        scopes=(
            Need(
                "read:users:groups",
                "to read users' groups (--exclude-group/--group-timeout)",
                "read:users",
            ),
        ),
        limits=lambda limits: (seconds for _, seconds in limits.group_timeouts),
        keeps=_excluded_group,
        idle_limit=_group_timeout,
        idle_precedence=3,
    ),
    Rule(
        "profile limits (--profile-timeout)",
        limits=lambda limits: (seconds for _, seconds in limits.profile_timeouts),
        idle_limit=_profile_timeout,
        idle_precedence=1,
        matching=_profiles_matching,
    ),
    Rule(
        "named-server limits (--server-timeout)",
        limits=lambda limits: (seconds for _, seconds in limits.server_timeouts),
        idle_limit=_server_timeout,
        idle_precedence=2,
        matching=_servers_matching,
    ),
)

# The rules that set idle limits, in the order they are asked.
IDLE_LIMIT_RULES: tuple[Rule, ...] = tuple(
    sorted((rule for rule in RULES if rule.idle_limit), key=lambda rule: rule.idle_precedence)
)


def in_force(limits: CullLimits) -> list[Rule]:
    return [rule for rule in RULES if rule.in_force(limits)]


def fields_needed(limits: CullLimits) -> frozenset[str]:
    """The user fields the rules in force read."""
    return frozenset().union(*(rule.fields for rule in in_force(limits)))


def scopes_needed(limits: CullLimits) -> list[Need]:
    """The scopes the rules in force need, in the order of ``RULES``."""
    return [need for rule in in_force(limits) for need in rule.scopes]


def limits_in_force(limits: CullLimits) -> list[float]:
    """Every idle or age limit that can cull something (0 and unset are off)."""
    found = [s for rule in in_force(limits) for s in rule.limits(limits)]
    return [s for s in found if s is not None and s > 0]
