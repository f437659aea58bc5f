"""The plan the runner builds while listing: what it holds, what it only counts.

A pass over a big hub must not hold every user: users with nothing to do are counted.
These tables pin down which users are held (anything to act on, skip or warn about),
how a user listed twice is counted once, and that the counts stay exact.
"""

from __future__ import annotations

from typing import Any

import pytest

from idle_cull.models import User
from idle_cull.rules.policy import CullLimits, Plan, judge
from tests.support.records import NOW, server_json, user_json

H = 3600.0
LIMITS = CullLimits(timeout=H, cull_users=True)
WINDOW = 15 * 60

BUSY = user_json("busy", idle=60, servers=[server_json(idle=60)])
IDLE = user_json("idle", idle=2 * H, servers=[server_json(idle=2 * H)])
SPAWNING = user_json("spawning", idle=60, servers=[server_json(pending="spawn", ready=False)])
SOON_IDLE = user_json("soon", idle=50 * 60, servers=[server_json(idle=50 * 60)])
NO_SERVER_ACTIVE = user_json("nosrv", idle=60, servers=[])
NO_SERVER_IDLE = user_json("gone", idle=2 * H, servers=[])
HALF_IDLE = user_json(
    "half", idle=60, servers=[server_json(idle=60), server_json("lab", idle=2 * H)]
)


def plan_of(
    records: list[dict[str, Any]], limits: CullLimits = LIMITS, *, list_kept: bool = False
) -> Plan:
    plan = Plan(list_kept=list_kept)
    for record in records:
        plan.add(judge(User.from_api(record), NOW, limits, WINDOW))
    return plan


def shape(plan: Plan) -> dict[str, Any]:
    return {
        "held": sorted({d.user for d in plan.servers} | {d.user for d in plan.users}),
        "counted": plan.counted_keeps,
        "stops": sorted(d.label for d in plan.stops),
        "deletions": sorted(d.user for d in plan.deletions),
        "running": plan.running,
        "judged": plan.users_judged,
    }


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        pytest.param(
            [BUSY],
            {
                "held": [],
                "counted": (1, 1),
                "stops": [],
                "deletions": [],
                "running": 1,
                "judged": 1,
            },
            id="busy-only-counted",
        ),
        pytest.param(
            [NO_SERVER_ACTIVE],
            {
                "held": [],
                "counted": (0, 1),
                "stops": [],
                "deletions": [],
                "running": 0,
                "judged": 1,
            },
            id="active-user-without-server-counted",
        ),
        pytest.param(
            [IDLE],
            {
                "held": ["idle"],
                "counted": (0, 0),
                "stops": ["idle"],
                "deletions": ["idle"],
                "running": 1,
                "judged": 1,
            },
            id="idle-held",
        ),
        pytest.param(
            [NO_SERVER_IDLE],
            {
                "held": ["gone"],
                "counted": (0, 0),
                "stops": [],
                "deletions": ["gone"],
                "running": 0,
                "judged": 1,
            },
            id="idle-user-without-server-held",
        ),
        pytest.param(
            [SPAWNING],
            {
                "held": ["spawning"],
                "counted": (0, 0),
                "stops": [],
                "deletions": [],
                "running": 0,
                "judged": 1,
            },
            id="skipped-server-held-for-the-report",
        ),
        pytest.param(
            [SOON_IDLE],
            {
                "held": ["soon"],
                "counted": (0, 0),
                "stops": [],
                "deletions": [],
                "running": 1,
                "judged": 1,
            },
            id="about-to-cross-held-for-the-warning",
        ),
        pytest.param(
            [HALF_IDLE],
            {
                "held": ["half"],
                "counted": (0, 0),
                "stops": ["half/lab"],
                "deletions": [],
                "running": 2,
                "judged": 1,
            },
            id="one-server-idle-whole-user-held",
        ),
        pytest.param(
            [BUSY, IDLE, NO_SERVER_ACTIVE, SPAWNING],
            {
                "held": ["idle", "spawning"],
                "counted": (1, 2),
                "stops": ["idle"],
                "deletions": ["idle"],
                "running": 2,
                "judged": 4,
            },
            id="mixed",
        ),
    ],
)
def test_what_the_plan_holds_and_counts(
    records: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    assert shape(plan_of(records)) == expected


def renamed(record: dict[str, Any], name: str) -> dict[str, Any]:
    return {**record, "name": name}


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        pytest.param(
            [BUSY, BUSY],
            {
                "held": [],
                "counted": (1, 1),
                "stops": [],
                "deletions": [],
                "running": 1,
                "judged": 1,
            },
            id="kept-twice-counted-once",
        ),
        pytest.param(
            [IDLE, IDLE],
            {
                "held": ["idle"],
                "counted": (0, 0),
                "stops": ["idle"],
                "deletions": ["idle"],
                "running": 1,
                "judged": 1,
            },
            id="idle-twice-acted-on-once",
        ),
        pytest.param(
            [renamed(BUSY, "x"), renamed(IDLE, "x")],
            {
                "held": ["x"],
                "counted": (0, 0),
                "stops": ["x"],
                "deletions": ["x"],
                "running": 1,
                "judged": 1,
            },
            id="later-idle-copy-replaces-kept",
        ),
        pytest.param(
            [renamed(IDLE, "x"), renamed(BUSY, "x")],
            {
                "held": [],
                "counted": (1, 1),
                "stops": [],
                "deletions": [],
                "running": 1,
                "judged": 1,
            },
            id="later-busy-copy-saves-the-user",
        ),
        pytest.param(
            [renamed(HALF_IDLE, "x"), renamed(NO_SERVER_ACTIVE, "x")],
            {
                "held": [],
                "counted": (0, 1),
                "stops": [],
                "deletions": [],
                "running": 0,
                "judged": 1,
            },
            id="servers-stopped-between-the-two-listings",
        ),
    ],
)
def test_a_user_listed_twice_counts_once_as_its_later_copy(
    records: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    assert shape(plan_of(records)) == expected


def test_add_says_when_it_replaced_a_user() -> None:
    plan = Plan()
    busy = judge(User.from_api(BUSY), NOW, LIMITS)
    idle = judge(User.from_api(renamed(IDLE, "busy")), NOW, LIMITS)
    assert plan.add(busy) is False
    assert plan.add(idle) is True
    assert plan.add(busy) is True


def test_only_users_to_delete_keep_their_listed_record() -> None:
    plan = plan_of([BUSY, IDLE, HALF_IDLE], list_kept=True)
    assert plan.listed_user("idle") is not None
    assert plan.listed_user("idle").name == "idle"  # type: ignore[union-attr]
    assert plan.listed_user("half") is None  # held (a stop) but not to be deleted
    assert plan.listed_user("busy") is None
    assert plan.listed_user("nobody") is None


def test_list_kept_holds_every_decision() -> None:
    plan = plan_of([BUSY, IDLE, NO_SERVER_ACTIVE], list_kept=True)
    assert plan.counted_keeps == (0, 0)
    assert sorted(d.label for d in plan.servers) == ["busy", "idle"]
    assert sorted(d.label for d in plan.users) == ["busy", "idle", "nosrv"]


def test_without_cull_users_a_kept_user_counts_no_user_decision() -> None:
    plan = plan_of([BUSY, NO_SERVER_ACTIVE], CullLimits(timeout=H))
    assert plan.counted_keeps == (1, 0)
    assert plan.users == ()


def test_upcoming_comes_soonest_first_from_held_users() -> None:
    later = user_json("later", idle=46 * 60, servers=[server_json(idle=46 * 60)])
    plan = plan_of([later, SOON_IDLE, BUSY])
    assert [(u.user, round(u.seconds_left)) for u in plan.upcoming] == [
        ("soon", 600),
        ("later", 840),
    ]
