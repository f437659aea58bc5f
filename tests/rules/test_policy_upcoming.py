"""Servers about to cross their idle limit (``policy.upcoming_for``, ``--warn-within``)."""

from __future__ import annotations

from typing import Any

import pytest

from idle_cull.models import User
from idle_cull.rules.policy import CullLimits
from tests.support.records import NOW, plan_of, server_json, user_json

H = 3600.0
LIMITS = CullLimits(timeout=1 * H, profile_timeouts=(("gpu", 2 * H),), exclude_users=("vip",))


def soon(
    records: list[dict[str, Any]], window: float, limits: CullLimits = LIMITS
) -> list[tuple[str, str, float, str]]:
    users = [User.from_api(r) for r in records]
    return [
        (u.user, u.server, round(u.seconds_left), u.rule)
        for u in plan_of(users, NOW, limits, warn_within=window, list_kept=False).upcoming
    ]


@pytest.mark.parametrize(
    ("records", "window", "expected"),
    [
        pytest.param(
            [user_json("a", servers=[server_json(idle=50 * 60)])],
            15 * 60,
            [("a", "", 600, "--timeout")],
            id="within-window",
        ),
        pytest.param(
            [user_json("a", servers=[server_json(idle=40 * 60)])], 15 * 60, [], id="outside-window"
        ),
        pytest.param(
            [user_json("a", servers=[server_json(idle=2 * H)])],
            15 * 60,
            [],
            id="already-being-culled",
        ),
        pytest.param(
            [user_json("a", servers=[server_json(idle=110 * 60, user_options={"profile": "gpu"})])],
            15 * 60,
            [("a", "", 600, "profile gpu")],
            id="rule-specific-limit",
        ),
        pytest.param(
            [user_json("vip", servers=[server_json(idle=55 * 60)])],
            15 * 60,
            [],
            id="excluded-never-warned",
        ),
        pytest.param(
            [user_json("p", servers=[server_json(idle=55 * 60, pending="stop")])],
            15 * 60,
            [],
            id="pending-not-warned",
        ),
        pytest.param(
            [
                user_json("b", servers=[server_json(idle=50 * 60)]),
                user_json("a", servers=[server_json("lab", idle=58 * 60)]),
            ],
            15 * 60,
            [("a", "lab", 120, "--timeout"), ("b", "", 600, "--timeout")],
            id="soonest-first",
        ),
    ],
)
def test_upcoming(
    records: list[dict[str, Any]], window: float, expected: list[tuple[str, str, float, str]]
) -> None:
    assert soon(records, window) == expected


def test_upcoming_respects_kind_flags() -> None:
    records = [user_json("a", servers=[server_json("lab", idle=55 * 60)])]
    assert soon(records, 15 * 60, CullLimits(timeout=1 * H, cull_named_servers=False)) == []
