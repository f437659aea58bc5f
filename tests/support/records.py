"""Small builders of hub-shaped records for unit tests (plain data, no mocks)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idle_cull.rules.policy import Plan, judge

if TYPE_CHECKING:
    from collections.abc import Iterable

    from idle_cull.models import User
    from idle_cull.rules.policy import CullLimits

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)


def ago(seconds: float | None, now: datetime = NOW) -> str | None:
    """An ISO timestamp ``seconds`` before ``now`` as the hub writes it (``...Z``)."""
    if seconds is None:
        return None
    return (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def server_json(
    name: str = "",
    *,
    idle: float | None = 0,
    age: float | None = 0,
    ready: bool = True,
    pending: str | None = None,
    user_options: dict[str, Any] | None = None,
    now: datetime = NOW,
) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "pending": pending,
        "started": ago(age, now),
        "last_activity": ago(idle, now),
        "url": f"/user/x/{name}",
        "user_options": user_options or {},
        "stopped": False,
    }


def user_json(
    name: str = "alice",
    *,
    servers: list[dict[str, Any]] | None = None,
    idle: float | None = 0,
    created_ago: float | None = 86400,
    admin: bool = False,
    groups: list[str] | None = None,
    now: datetime = NOW,
) -> dict[str, Any]:
    return {
        "kind": "user",
        "name": name,
        "admin": admin,
        "groups": groups or [],
        "created": ago(created_ago, now),
        "last_activity": ago(idle, now),
        "servers": {s["name"]: s for s in servers or []},
    }


def plan_of(
    users: Iterable[User],
    now: datetime,
    limits: CullLimits,
    *,
    warn_within: float | None = None,
    list_kept: bool = True,
) -> Plan:
    """The plan of a whole listing, built the way the runner builds it page by page."""
    plan = Plan(list_kept=list_kept)
    for user in users:
        plan.add(judge(user, now, limits, warn_within))
    return plan


def unusable_token_files(directory: Path, token: str, other_token: str) -> dict[str, Path]:
    """Token files that cannot be used, by case name, made under ``directory``.

    Tests run as root, for whom chmod 000 changes nothing, so "unreadable" is made of a
    directory, a path through a regular file (ENOTDIR), bytes that are not UTF-8 and a
    dangling symlink; plus an empty file and a file with two tokens.
    """
    folder = directory / "token-dir"
    folder.mkdir()
    plain = directory / "plain"
    plain.write_text("x")
    binary = directory / "binary"
    binary.write_bytes(b"\xff\xfe" + token.encode() + b"\x80")
    dangling = directory / "dangling"
    dangling.symlink_to(directory / "missing")
    empty = directory / "empty"
    empty.write_text(" \n")
    two = directory / "two-tokens"
    two.write_text(f"{token}\n{other_token}\n")
    return {
        "directory": folder,
        "through-a-file": plain / "token",
        "not-utf-8": binary,
        "dangling-symlink": dangling,
        "empty": empty,
        "two-tokens": two,
    }
