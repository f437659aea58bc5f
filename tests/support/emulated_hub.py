"""A `responses` stand-in for the hub, shared by the in-process CLI tests.

Records are stamped relative to the real clock, which the CLI reads; every test gets a
mock that refuses unregistered URLs, so nothing can reach the network.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import responses

from tests.support import records as factories

URL = "http://hub.test:8081/hub/api"
TOKEN = "cli-test-token-0123456789abcdef"


def server_json(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """A server record stamped relative to the real clock, which the CLI reads."""
    return factories.server_json(*args, now=datetime.now(timezone.utc), **kwargs)


def user_json(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """A user record stamped relative to the real clock, which the CLI reads."""
    return factories.user_json(*args, now=datetime.now(timezone.utc), **kwargs)


def serve_users(hub: responses.RequestsMock, state: str, users: list[dict]) -> None:
    """Serve one page of users, and each user's record unchanged for the re-check."""
    for user in users:
        serve_fresh(hub, user)
    hub.get(
        f"{URL}/users",
        match=[responses.matchers.query_param_matcher({"offset": "0", "state": state})],
        json={"items": users, "_pagination": {"offset": 0, "limit": 50, "total": len(users), "next": None}},
    )


def serve_fresh(hub: responses.RequestsMock, user: dict) -> None:
    hub.get(f"{URL}/users/{user['name']}", json=user)


def deletes(hub: responses.RequestsMock) -> list[str]:
    return [c.request.url or "" for c in hub.calls if c.request.method == "DELETE"]
