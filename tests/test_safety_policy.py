"""Pure parts of the safety rails: blast-radius caps and the re-check of users."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from idle_cull.models import User
from idle_cull.rules.policy import Caps, CullLimits, cap_exceeded, user_changed_since_listing
from tests.support.records import NOW, plan_of, server_json, user_json

HOUR = 3600.0


def hub_with(idle: int, busy: int, pending: int = 0, idle_users: int = 0) -> list[User]:
    records = [
        user_json(f"idle{i}", idle=9 * HOUR, servers=[server_json(idle=9 * HOUR)])
        for i in range(idle)
    ]
    records += [user_json(f"busy{i}", servers=[server_json(idle=60)]) for i in range(busy)]
    records += [
        user_json(f"pend{i}", servers=[server_json(pending="spawn", ready=False)])
        for i in range(pending)
    ]
    records += [user_json(f"gone{i}", idle=9 * HOUR) for i in range(idle_users)]
    return [User.from_api(r) for r in records]


@pytest.mark.parametrize(
    ("users", "limits", "caps", "refused_because"),
    [
        pytest.param(hub_with(3, 7), CullLimits(timeout=HOUR), Caps(), None, id="no-caps"),
        pytest.param(
            hub_with(3, 7), CullLimits(timeout=HOUR), Caps(max_culls=3), None, id="at-max-culls"
        ),
        pytest.param(
            hub_with(4, 6),
            CullLimits(timeout=HOUR),
            Caps(max_culls=3),
            "4 culls planned, more than --max-culls=3",
            id="over-max-culls",
        ),
        pytest.param(
            hub_with(2, 0, idle_users=2),
            CullLimits(timeout=HOUR, cull_users=True),
            Caps(max_culls=3),
            "6 culls planned",
            id="deletions-count-as-culls",
        ),
        pytest.param(
            hub_with(0, 5),
            CullLimits(timeout=HOUR),
            Caps(max_culls=0),
            None,
            id="zero-cap-nothing-planned",
        ),
        pytest.param(
            hub_with(5, 5),
            CullLimits(timeout=HOUR),
            Caps(max_cull_fraction=0.5),
            None,
            id="at-fraction",
        ),
        pytest.param(
            hub_with(6, 4),
            CullLimits(timeout=HOUR),
            Caps(max_cull_fraction=0.5),
            "6 of 10 running servers planned to stop (60%)",
            id="over-fraction",
        ),
        pytest.param(
            hub_with(5, 5, pending=10),
            CullLimits(timeout=HOUR),
            Caps(max_cull_fraction=0.5),
            None,
            id="pending-servers-not-counted-as-running",
        ),
        pytest.param(
            hub_with(0, 0, idle_users=3),
            CullLimits(timeout=HOUR, cull_users=True),
            Caps(max_cull_fraction=0.1),
            None,
            id="fraction-on-empty-hub",
        ),
        pytest.param(
            hub_with(1, 0),
            CullLimits(timeout=HOUR),
            Caps(max_cull_fraction=0.99),
            "1 of 1 running server planned to stop (100%)",
            id="everything-idle-tripped",
        ),
        pytest.param(
            hub_with(1, 3),
            CullLimits(timeout=HOUR),
            Caps(max_culls=0),
            "1 cull planned, more than --max-culls=0",
            id="one-cull-over-a-zero-cap",
        ),
    ],
)
def test_cap_exceeded(
    users: list[User], limits: CullLimits, caps: Caps, refused_because: str | None
) -> None:
    reason = cap_exceeded(plan_of(users, NOW, limits), caps)
    if refused_because is None:
        assert reason is None
    else:
        assert reason is not None
        assert refused_because in reason


def stamp(seconds_after_listing: float | None) -> str | None:
    if seconds_after_listing is None:
        return None
    return (NOW - timedelta(hours=2) + timedelta(seconds=seconds_after_listing)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


LISTED = User.from_api(user_json("u", idle=2 * HOUR))  # last_activity = NOW - 2h
LIMITS = CullLimits(timeout=HOUR, cull_users=True)
PROTECT_ADMINS = CullLimits(timeout=HOUR, cull_users=True, cull_admin_users=False)


def fresh(
    activity_offset: float | None = 0,
    *,
    servers: list[dict[str, Any]] | None = None,
    admin: bool = False,
) -> User:
    record = user_json("u", servers=servers, admin=admin)
    record["last_activity"] = stamp(activity_offset)
    return User.from_api(record)


@pytest.mark.parametrize(
    ("fresh_user", "our_first_stop", "limits", "objection"),
    [
        pytest.param(fresh(0), None, LIMITS, None, id="unchanged"),
        pytest.param(fresh(None), None, LIMITS, None, id="activity-now-null"),
        pytest.param(
            fresh(30), None, LIMITS, "active since listing", id="activity-without-our-stop"
        ),
        pytest.param(
            fresh(30),
            NOW - timedelta(hours=2) + timedelta(seconds=20),
            LIMITS,
            None,
            id="stamp-from-our-own-stop",
        ),
        pytest.param(
            fresh(10),
            NOW - timedelta(hours=2) + timedelta(seconds=20),
            LIMITS,
            "active since listing",
            id="activity-before-our-stop",
        ),
        pytest.param(
            fresh(0, servers=[server_json(idle=0)]),
            None,
            LIMITS,
            "has an active server again ('default')",
            id="got-a-server",
        ),
        pytest.param(
            fresh(0, servers=[server_json("lab", pending="spawn", ready=False)]),
            None,
            LIMITS,
            "('lab')",
            id="got-a-pending-server",
        ),
        pytest.param(
            fresh(0, admin=True), None, PROTECT_ADMINS, "became an admin", id="became-admin"
        ),
        pytest.param(fresh(0, admin=True), None, LIMITS, None, id="admin-but-admins-culled"),
    ],
)
def test_user_changed_since_listing(
    fresh_user: User, our_first_stop: datetime | None, limits: CullLimits, objection: str | None
) -> None:
    result = user_changed_since_listing(LISTED, fresh_user, our_first_stop, limits)
    if objection is None:
        assert result is None
    else:
        assert result is not None
        assert objection in result
