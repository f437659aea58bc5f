"""Checks before a pass acts: what the configuration needs of its surroundings.

The judgements are pure functions of the environment or of what the hub said; only
``check_before_listing`` asks the hub (through the client), before anything is listed
or acted on, so that a dry run predicts its real run.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from idle_cull.errors import ConfigError, HubAuthError
from idle_cull.output.report import Report
from idle_cull.rules.catalogue import Need, scopes_needed
from idle_cull.rules.policy import CullLimits

__all__ = [
    "MANAGED_SERVICE_DOC",
    "Need",
    "PreflightClient",
    "check_before_listing",
    "held_scopes",
    "managed_service_refusal",
    "missing_scopes",
    "needed_scopes",
    "probing_refusal",
    "role_snippet",
    "unmatched_rules",
    "warn_unmatched_rules",
]

log = logging.getLogger(__name__)

# The how-to that replaces a hub-managed culler (TLJH's included) with a timer; a path in
# the repository, so that it reads the same in a log, a terminal and the source tree.
MANAGED_SERVICE_DOC = "docs/how-to/tljh.md"


def managed_service_refusal(environ: Mapping[str, str]) -> str | None:
    """Why idle-cull will not run as a hub-managed service, or ``None`` if it is not one.

    JupyterHub starts a service with a ``command`` with ``JUPYTERHUB_SERVICE_NAME`` and
    the OAuth client id every process it spawns gets (``JUPYTERHUB_CLIENT_ID``). A
    one-pass tool there exits, is restarted by the hub about every 30 s and logs an
    error each time: what upstream's long-running culler needed, and not this tool.
    """
    name = environ.get("JUPYTERHUB_SERVICE_NAME")
    if not name or not environ.get("JUPYTERHUB_CLIENT_ID"):
        return None
    return (
        f"idle-cull was started by JupyterHub as the managed service {name!r} (a "
        "c.JupyterHub.services entry with a command); it does one pass and exits, so the "
        "hub would restart it about every 30 s and log an error each time. Remove the "
        "service's command (keep its name, api_token and role) and run idle-cull from a "
        f"systemd timer, cron or a Kubernetes CronJob: see {MANAGED_SERVICE_DOC} (The "
        "Littlest JupyterHub, and any hub that ran the culler as a service). If a wrapper "
        "of yours loops between passes, pass --allow-managed-service"
    )


# What checking the groups the rules name takes (``GET /groups/{name}``).
CHECK_GROUPS = Need(
    "read:groups:name",
    "to check that the groups --exclude-group/--group-timeout name exist, so that a "
    "misspelt one stops the pass; --allow-unchecked-groups goes on without the check",
    "read:groups",
    per_user=False,
)


def needed_scopes(
    limits: CullLimits, *, probe_kernels: bool = False, allow_unchecked_groups: bool = False
) -> tuple[Need, ...]:
    """Every scope a pass with these limits uses, dry run or not.

    A dry run checks the scopes its real run will use (``delete:servers`` included, and
    ``tokens`` with ``--probe-kernels``), so that a clean dry run predicts a clean real
    one. Probing needs ``tokens`` and not ``access:servers``: each probe sends a token
    the hub mints for the server's own user (``probe_tokens``), and the hub checks the
    requested scope against that user, not against the culler (JupyterHub 3.1 to 6.1).
    Group rules need ``read:groups:name`` too: a group that cannot be checked may be a
    misspelt one that protects nobody, so it is needed unless the operator accepted that
    risk (``--allow-unchecked-groups``).
    """
    needs = scopes_needed(limits)
    if limits.needs_groups and not allow_unchecked_groups:
        needs.append(CHECK_GROUPS)
    if probe_kernels:
        why = (
            "to mint each user whose server is read a token for that server only "
            "(--probe-kernels, --postpone-limit, --activity-source=server)"
        )
        needs.append(Need("tokens", why))
    return tuple(needs)


PROBE_TOKENS_SINCE = (3, 0)  # the first release that honours ``scopes`` when minting a token


def probing_refusal(version: tuple[int, ...]) -> str | None:
    """Why ``--probe-kernels`` cannot run against a hub of this version, or ``None``.

    A probe sends a token owned by the probed user and scoped to that user's servers.
    JupyterHub before 3.0 ignores the scopes asked for a new token and gives it the
    user's whole ``token`` role, so no such token can be had there (checked on 2.3.1).
    An unparsable version is not refused: the minted token's scopes are checked anyway.
    """
    if not version or version >= PROBE_TOKENS_SINCE:
        return None
    shown = ".".join(map(str, version))
    return (
        f"--probe-kernels needs JupyterHub 3.0 or later, and this hub is {shown}: older "
        "hubs cannot mint a token limited to one user's servers, and the culler's own "
        "token is never sent to a server; upgrade the hub or run without --probe-kernels"
    )


def held_scopes(scopes: Iterable[str]) -> dict[str, frozenset[str]]:
    """The token's scopes by name, each with its filters (``""``: unfiltered)."""
    held: dict[str, set[str]] = {}
    for scope in scopes:
        name, _, scope_filter = scope.partition("!")
        held.setdefault(name, set()).add(scope_filter)
    return {name: frozenset(filters) for name, filters in held.items()}


def missing_scopes(needs: Iterable[Need], scopes: Iterable[str]) -> list[str]:
    """What the token lacks, one phrase per need; empty when it has all it needs.

    ``scopes`` are the token's expanded scopes as ``GET /user`` reports them, so
    ``admin:users`` already shows as ``read:users`` and ``delete:users``. A filtered
    scope (``delete:servers!group=students``) counts only when it covers every user the
    token can list: if ``list:users`` is filtered too, each other scope must carry the
    same filters; if the token lists everyone, a filtered scope would fail (403) on the
    users outside the filter, which a dry run would not reveal.
    """
    held = held_scopes(scopes)
    listed = held.get("list:users", frozenset())
    listed_filters = None if "" in listed else listed  # None: lists every user
    missing = []
    for need in needs:
        filters = held.get(need.scope, frozenset())
        if "" in filters or (filters and not need.per_user):
            continue
        if filters and listed_filters and listed_filters <= filters:
            continue
        if not filters:
            also = f"; {need.included_in} includes it" if need.included_in else ""
            missing.append(f"{need.scope} ({need.why}{also})")
        elif listed_filters is None:
            missing.append(
                f"{need.scope} ({need.why}; held only for {', '.join(sorted(filters))}, "
                "but the token lists every user)"
            )
        else:
            uncovered = sorted(listed_filters - filters)
            missing.append(
                f"{need.scope} ({need.why}; held for {', '.join(sorted(filters))} but not "
                f"for {', '.join(uncovered)}, which the token lists)"
            )
    return missing


def role_snippet(needs: Iterable[Need], owner: Mapping[str, Any] | None) -> str:
    """The ``load_roles`` entry that grants every needed scope, ready to paste.

    It lists every scope of the configuration in use, held or missing, since the entry
    replaces the role as a whole. It is written for the token's owner as ``GET /user``
    names it (a service or a user) and named as the owner's one role when the hub says
    which (``roles``, shown with ``read:roles:services``), else after the service, so
    that pasting it changes the role that is there rather than adding a second one.
    """
    scopes = ", ".join(f'"{need.scope}"' for need in needs)
    kind, name, role = _owner_names(owner)
    holder = f'"{kind}s": ["{name or "<the service>"}"]'
    return f'c.JupyterHub.load_roles = [{{"name": "{role}", "scopes": [{scopes}], {holder}}}]'


def _owner_names(owner: Mapping[str, Any] | None) -> tuple[str, str | None, str]:
    """The owner's kind (``service`` or ``user``), name and the role to name in a snippet."""
    owner = owner or {}
    kind = "user" if owner.get("kind") == "user" else "service"
    name = owner.get("name") if isinstance(owner.get("name"), str) else None
    roles = [r for r in owner.get("roles") or () if isinstance(r, str)]
    if len(roles) == 1:
        return kind, name, roles[0]
    return kind, name, name if name and kind == "service" else "idle-cull"


def unmatched_rules(limits: CullLimits, matched: set[tuple[str, str]]) -> list[str]:
    """Warnings for the rules that named nobody listed in this pass (a typo, or a case).

    ``matched`` holds the ``(option, rule)`` pairs ``policy.rules_matching`` found.
    """
    configured = [("--exclude-user", pattern) for pattern in limits.exclude_users]
    configured += [("--profile-timeout", name) for name, _ in limits.profile_timeouts]
    configured += [("--server-timeout", pattern) for pattern, _ in limits.server_timeouts]
    what = {
        "--exclude-user": "no listed user",
        "--profile-timeout": "no listed server's profile",
        "--server-timeout": "no listed named server",
    }
    return [
        f"{option} {rule!r} matched {what[option]} in this pass; check its spelling "
        "(names are case-sensitive)"
        for option, rule in configured
        if (option, rule) not in matched
    ]


# -- asking the hub ----------------------------------------------------------------------


class PreflightClient(Protocol):
    """The questions preflight asks the hub (``HubClient`` answers them)."""

    def token_owner(self) -> dict[str, Any] | None: ...

    def group_exists(self, name: str) -> bool | None: ...

    def group_names(self) -> list[str] | None: ...


def check_before_listing(
    client: PreflightClient,
    limits: CullLimits,
    report: Report,
    *,
    probe_kernels: bool = False,
    allow_unchecked_groups: bool = False,
) -> None:
    """Refuse before listing when the token lacks a scope or a rule names a missing group.

    Raises ``HubAuthError`` (exit 3) naming every missing scope with the role that
    grants them, or ``ConfigError`` (exit 2) naming the groups the hub does not have.
    A named group that cannot be checked (the token may not read it) fails closed as a
    missing scope would, since a misspelt one protects nobody, unless
    ``allow_unchecked_groups``: then it is a warning in the log and the report. A hub
    before 2.0 reports no scopes: the log says they could not be checked.
    """
    owner = client.token_owner()
    scopes = owner.get("scopes") if owner else None
    needs = needed_scopes(
        limits, probe_kernels=probe_kernels, allow_unchecked_groups=allow_unchecked_groups
    )
    groups = _GroupCheck(client, limits, report, allow_unchecked_groups, role_snippet(needs, owner))
    if not isinstance(scopes, list):
        log.info(
            "the hub does not report the token's scopes (JupyterHub before 2.0): they "
            "cannot be checked before listing"
        )
        groups.check(None)
        return
    missing = missing_scopes(needs, [str(scope) for scope in scopes])
    if missing:
        raise HubAuthError(
            "the token lacks what this configuration needs: "
            + "; ".join(missing)
            + "; nothing was culled (dry runs check the scopes of the real run). "
            "Grant them in the token's role, e.g. " + groups.role
        )
    log.info("the token has the scopes this pass needs: %s", ", ".join(n.scope for n in needs))
    groups.check(held_scopes(str(scope) for scope in scopes))


@dataclass(frozen=True)
class _GroupCheck:
    """Do the groups the rules name exist? Missing ones stop the pass (exit 2), and ones
    the token may not read stop it too (exit 3) unless unchecked groups are allowed."""

    client: PreflightClient
    limits: CullLimits
    report: Report
    allow_unchecked: bool
    role: str  # the role snippet of the whole configuration, for the refusal

    def check(self, held: Mapping[str, frozenset[str]] | None) -> None:
        named = [("--exclude-group", group) for group in self.limits.exclude_groups]
        named += [("--group-timeout", group) for group, _ in self.limits.group_timeouts]
        if not named:
            return
        if held is not None and not ({"read:groups", "read:groups:name"} & set(held)):
            # Only reached when allowed: otherwise the scope was missing, and refused.
            self.unchecked(sorted({group for _, group in named}))
            return
        exists = {group: self.client.group_exists(group) for group in sorted({g for _, g in named})}
        unknown = [(option, group) for option, group in named if exists[group] is False]
        if unknown:
            may_list = held is None or "list:groups" in held
            suggest = _suggestions(self.client.group_names() if may_list else None)
            wrong = ", ".join(f"{option} {group!r}{suggest(group)}" for option, group in unknown)
            raise ConfigError(
                f"the hub has no such group: {wrong}; check the spelling (group names are "
                "case-sensitive); nothing was sent that changes anything"
            )
        unchecked = [group for group, found in exists.items() if found is None]
        if unchecked:
            self.unchecked(unchecked)

    def unchecked(self, groups: list[str]) -> None:
        """Refuse (exit 3), or with ``--allow-unchecked-groups`` warn, about ``groups``."""
        named = ", ".join(map(repr, groups))
        if not self.allow_unchecked:
            raise HubAuthError(
                f"cannot check that the group(s) {named} exist: the token may not read them "
                "(read:groups:name), and a misspelt group would protect nobody; nothing was "
                "culled. Grant read:groups:name in the token's role, e.g. "
                f"{self.role}; or pass --allow-unchecked-groups to go on without the check"
            )
        _warn(
            self.report,
            f"cannot check that the group(s) {named} exist: the token may not read groups; "
            "going on as --allow-unchecked-groups asks, so a misspelt group protects "
            "nobody; grant read:groups:name to check them",
        )


def _suggestions(names: list[str] | None) -> Callable[[str], str]:
    """`` (did you mean 'instructors'?)`` for a misspelt group, when the hub's are known."""

    def suggest(group: str) -> str:
        near = difflib.get_close_matches(group, names or [], n=1)
        if not near:
            near = [name for name in names or [] if name.lower() == group.lower()][:1]
        return f" (did you mean {near[0]!r}?)" if near else ""

    return suggest


def _warn(report: Report, warning: str) -> None:
    log.warning("%s", warning)
    report.warnings.append(warning)


def warn_unmatched_rules(limits: CullLimits, matched: set[tuple[str, str]], report: Report) -> None:
    """Log and report each rule that named nobody this pass."""
    for warning in unmatched_rules(limits, matched):
        _warn(report, warning)
