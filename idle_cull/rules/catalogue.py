"""Every rule, declared once with what it needs: kube-janitor's ``Rule``, as a table.

A rule says when it is in force (from the limits), which user fields it reads (the
token's scopes must not hide them: ``runner.fields_rules_need``), which scopes the
preflight must find (``preflight.needed_scopes``) and which limits the clock check
measures against (``clocks.smallest_limit``). Those three are derived from ``RULES``,
so a new rule is one entry here plus its decision in ``policy`` and its option.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from idle_cull.rules.policy import CullLimits

__all__ = ["RULES", "Need", "Rule", "fields_needed", "limits_in_force", "scopes_needed"]


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


def _always(_limits: CullLimits) -> bool:
    return True


@dataclass(frozen=True)
class Rule:
    """One rule: when it is in force, the user fields it reads, the scopes it needs, and
    the limits (seconds; ``None`` or 0 is off) it culls by."""

    name: str
    in_force: Callable[[CullLimits], bool] = _always
    fields: frozenset[str] = frozenset()
    scopes: tuple[Need, ...] = ()
    limits: Callable[[CullLimits], Iterable[float | None]] = lambda _limits: ()


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
    ),
    Rule("old servers (--max-age)", limits=lambda limits: (limits.max_age,)),
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
    ),
    Rule(
        "profile limits (--profile-timeout)",
        limits=lambda limits: (seconds for _, seconds in limits.profile_timeouts),
    ),
    Rule(
        "named-server limits (--server-timeout)",
        limits=lambda limits: (seconds for _, seconds in limits.server_timeouts),
    ),
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
