"""Frozen ``User`` and ``Server`` records built from the hub's JSON.

Parsing is tolerant of older hub shapes (no ``servers`` dict before 0.9, naive
timestamps before 2.0) and strict about what the policy relies on: a record that cannot
be understood raises ``RecordError`` so that one bad user never hides the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from dateutil.parser import isoparse

__all__ = [
    "SCOPED_FIELDS",
    "ActionResult",
    "Outcome",
    "RecordError",
    "Server",
    "User",
    "as_utc",
    "parse_timestamp",
]

# Fields of the user model and the scope that lets a token read each (JupyterHub >= 2.0).
SCOPED_FIELDS = {
    "last_activity": "read:users:activity",
    "servers": "read:servers",
    "admin": "read:users:name",
    "created": "read:users",
    "groups": "read:users:groups",
}


class Outcome(str, Enum):
    """What happened to one planned action, as the hub answered it."""

    STOPPED = "stopped"
    DELETED = "deleted"
    PENDING = "pending"  # the hub accepted it and is still working (202, "pending" 400)
    GONE = "already gone"  # 404: someone else got there first; the goal is reached
    FAILED = "failed"
    SKIPPED = "skipped"  # decided against at the last moment (re-check, servers still stopping)
    NOT_ATTEMPTED = "not attempted"  # refused plan, deadline or signal: nothing was sent
    DRY_RUN = "dry run"  # would have been done; --dry-run sent nothing


@dataclass(frozen=True)
class ActionResult:
    """What became of one stop or delete, and how many requests it took: the hub's
    answer, or the evidence that kept the server (``evidence.base``)."""

    outcome: Outcome
    attempts: int
    detail: str = ""


class RecordError(ValueError):
    """One user record is unusable; the pass reports it and goes on with the rest."""


# The shape every JupyterHub writes (``2026-11-26T04:14:31.123456Z``), which the standard
# library parses several times faster than dateutil; anything else goes to dateutil.
_HUB_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:[0-5]\d)?",
    re.ASCII,
)


def _parse_iso(value: str) -> datetime:
    match = _HUB_TIMESTAMP.fullmatch(value)
    if match is None:
        return isoparse(value)
    seconds, fraction, zone = match.groups()
    # Python 3.9 and 3.10 only take 3 or 6 fractional digits and no "Z".
    fraction = f".{fraction.ljust(6, '0')}" if fraction else ""
    zone = "+00:00" if zone == "Z" else zone or ""
    try:
        return datetime.fromisoformat(seconds + fraction + zone)
    except ValueError:  # e.g. 24:00:00, which ISO 8601 (and dateutil) allow
        return isoparse(value)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC, as the hub's timestamps are."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_timestamp(value: object, *, field: str) -> datetime | None:
    """An aware UTC datetime from the hub's ISO 8601 text; naive values are UTC."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{field} is not a timestamp: {value!r}")
    try:
        parsed = _parse_iso(value)
    except (ValueError, OverflowError):
        raise RecordError(f"{field} is not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31T23:30:00-01:00 is in the year 10000 in UTC
        raise RecordError(f"{field} is out of range in UTC: {value!r}") from None


@dataclass(frozen=True)
class Server:
    """One active server of a user; ``name`` is ``""`` for the default server."""

    name: str
    ready: bool
    pending: str | None
    started: datetime | None
    last_activity: datetime | None
    user_options: Mapping[str, Any] | None = None
    url: str | None = None  # ``/user/<name>/[<server>/]``: where the proxy routes it

    @property
    def is_default(self) -> bool:
        return self.name == ""

    @classmethod
    def from_api(cls, name: str, data: Mapping[str, Any]) -> Server:
        if not isinstance(data, Mapping):
            raise RecordError(f"server {name!r} is not an object")
        pending = data.get("pending")
        options = data.get("user_options")
        return cls(
            name=name,
            ready=_ready(name, data, pending),
            pending=str(pending) if pending else None,
            started=parse_timestamp(data.get("started"), field=f"server {name!r} started"),
            last_activity=parse_timestamp(
                data.get("last_activity"), field=f"server {name!r} last_activity"
            ),
            # Absent: the hub does not report it (None); null or not an object: no options.
            user_options=None
            if "user_options" not in data
            else (options if isinstance(options, Mapping) else {}),
            url=data["url"] if isinstance(data.get("url"), str) else None,
        )


@dataclass(frozen=True)
class User:
    """A hub user as far as the token may see it.

    Fields the token's scopes hide are ``None`` (``admin``, ``created``, ``groups``,
    ``servers``), so
    a rule that needs one can tell "not allowed to read" from "empty".
    """

    name: str
    admin: bool | None
    created: datetime | None
    last_activity: datetime | None
    servers: tuple[Server, ...]
    groups: tuple[str, ...] | None = None
    hidden: frozenset[str] = frozenset()

    @classmethod
    def from_api(cls, data: object) -> User:
        if not isinstance(data, Mapping):
            raise RecordError(f"user record is not an object: {type(data).__name__}")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise RecordError(f"user record without a name: {_short(data)}")
        try:
            return cls(
                name=name,
                admin=_optional_bool(data, "admin"),
                created=parse_timestamp(data.get("created"), field="created"),
                last_activity=parse_timestamp(data.get("last_activity"), field="last_activity"),
                servers=_servers_from_api(data),
                groups=_groups_from_api(data),
                hidden=frozenset(key for key in SCOPED_FIELDS if key not in data),
            )
        except RecordError as error:
            raise RecordError(f"user {name!r}: {error}") from None


def _ready(name: str, data: Mapping[str, Any], pending: object) -> bool:
    """Whether the server is up, read strictly: only a JSON ``true`` is ready.

    Hubs before 0.9 had no ``ready`` field; like upstream, a server with a URL and
    nothing pending counts as up there. ``null`` means not ready (judged next pass); any
    other value is garbage: ``bool("false")`` would be true and stop a server that is
    still starting.
    """
    if "ready" not in data:
        return pending is None and bool(data.get("url") or data.get("server"))
    ready = data["ready"]
    if ready is None:
        return False
    if not isinstance(ready, bool):
        raise RecordError(f"server {name!r} ready is not true or false: {_short(ready)}")
    return ready


def _optional_bool(data: Mapping[str, Any], key: str) -> bool | None:
    """``None`` when absent or null (cannot tell); a JSON boolean; anything else is garbage."""
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise RecordError(f"{key} is not true or false: {_short(value)}")


def _groups_from_api(data: Mapping[str, Any]) -> tuple[str, ...] | None:
    groups = data.get("groups")
    if groups is None and "groups" in data:
        # A hub either leaves the field out (scope) or sends a list: null would silently
        # switch off --exclude-group and --group-timeout for this user.
        raise RecordError("groups is null: cannot tell which groups the user is in")
    if groups is None:
        return None
    if not isinstance(groups, list):
        raise RecordError(f"groups is not a list: {groups!r}")
    return tuple(str(group) for group in groups)


def _servers_from_api(data: Mapping[str, Any]) -> tuple[Server, ...]:
    servers = data.get("servers")
    if "servers" not in data and "server" in data:
        # Hubs before 0.9 had one server per user, described on the user itself.
        if not data.get("server") and not data.get("pending"):
            return ()
        return (Server.from_api("", data),)
    if servers is None and "servers" in data:
        # Read as "no servers", a user with running servers could be deleted.
        raise RecordError("servers is null: cannot tell whether the user has servers")
    if servers is None:
        return ()
    if not isinstance(servers, Mapping):
        raise RecordError(f"servers is not an object: {_short(servers)}")
    return tuple(Server.from_api(str(name), model) for name, model in servers.items())


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
