"""Small builders of hub-shaped records for unit tests (plain data, no mocks)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

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
