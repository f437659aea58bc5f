"""Table-driven tests of the pure culling decisions."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from idle_cull.models import User
from idle_cull.rules.policy import Action, CullLimits, ServerDecision, decide_server, decide_user
from tests.support.records import NOW, plan_of, server_json, user_json

HOUR = 3600.0
LIMITS = CullLimits(timeout=HOUR)


def decide_one(
    server: dict[str, Any], limits: CullLimits = LIMITS, **user_fields: Any
) -> ServerDecision:
    user = User.from_api(user_json(servers=[server], **user_fields))
    return decide_server(user, user.servers[0], NOW, limits)


@pytest.mark.parametrize(
    ("server", "limits", "action", "reason_part"),
    [
        pytest.param(
            server_json(idle=HOUR - 1),
            LIMITS,
            Action.KEEP,
            "idle 59m59s < 1h",
            id="idle-below-limit",
        ),
        pytest.param(
            server_json(idle=HOUR),
            LIMITS,
            Action.STOP,
            "idle 1h >= 1h (--timeout)",
            id="idle-exactly-at-limit",
        ),
        pytest.param(
            server_json(idle=5 * HOUR), LIMITS, Action.STOP, "idle 5h", id="idle-well-past-limit"
        ),
        pytest.param(
            server_json(idle=None, age=2 * HOUR),
            LIMITS,
            Action.STOP,
            "idle 2h",
            id="null-activity-falls-back-to-started",
        ),
        pytest.param(
            server_json(idle=None, age=60),
            LIMITS,
            Action.KEEP,
            "idle 1m",
            id="null-activity-recent-start",
        ),
        pytest.param(
            server_json(idle=None, age=None),
            LIMITS,
            Action.KEEP,
            "cannot tell how idle",
            id="both-timestamps-null",
        ),
        pytest.param(
            server_json(idle=-600),
            LIMITS,
            Action.KEEP,
            "in the future",
            id="activity-in-the-future",
        ),
        pytest.param(
            server_json(idle=9 * HOUR, pending="spawn", ready=False),
            LIMITS,
            Action.SKIP,
            "pending spawn",
            id="pending-spawn",
        ),
        pytest.param(
            server_json(idle=9 * HOUR, pending="stop"),
            LIMITS,
            Action.SKIP,
            "pending stop",
            id="pending-stop",
        ),
        pytest.param(
            server_json(idle=9 * HOUR, pending="check"),
            LIMITS,
            Action.SKIP,
            "pending check",
            id="pending-check",
        ),
        pytest.param(
            server_json(idle=9 * HOUR, ready=False),
            LIMITS,
            Action.SKIP,
            "not ready",
            id="not-ready",
        ),
        pytest.param(
            server_json(idle=60, age=10 * HOUR),
            CullLimits(timeout=HOUR, max_age=8 * HOUR),
            Action.STOP,
            "age 10h >= 8h (--max-age)",
            id="max-age-exceeded",
        ),
        pytest.param(
            server_json(idle=60, age=8 * HOUR),
            CullLimits(timeout=HOUR, max_age=8 * HOUR),
            Action.STOP,
            "age 8h",
            id="max-age-exactly",
        ),
        pytest.param(
            server_json(idle=60, age=7 * HOUR),
            CullLimits(timeout=HOUR, max_age=8 * HOUR),
            Action.KEEP,
            "idle 1m < 1h",
            id="max-age-not-reached",
        ),
        pytest.param(
            server_json(idle=60, age=99 * HOUR),
            LIMITS,
            Action.KEEP,
            "idle 1m",
            id="max-age-off-by-default",
        ),
        pytest.param(
            server_json(idle=9 * HOUR),
            CullLimits(timeout=HOUR, cull_default_servers=False),
            Action.KEEP,
            "--cull-default-servers=false",
            id="default-kind-not-culled",
        ),
        pytest.param(
            server_json(idle=60, age=99 * HOUR),
            CullLimits(timeout=HOUR, max_age=HOUR, cull_default_servers=False),
            Action.KEEP,
            "--cull-default-servers=false",
            id="default-kind-not-culled-even-for-max-age",
        ),
        pytest.param(
            server_json("gpu", idle=9 * HOUR),
            CullLimits(timeout=HOUR, cull_named_servers=False),
            Action.KEEP,
            "--cull-named-servers=false",
            id="named-kind-not-culled",
        ),
        pytest.param(
            server_json("gpu", idle=60, age=99 * HOUR),
            CullLimits(timeout=HOUR, max_age=HOUR, cull_named_servers=False),
            Action.KEEP,
            "--cull-named-servers=false",
            id="named-kind-not-culled-even-for-max-age",
        ),
        pytest.param(
            server_json("gpu", idle=9 * HOUR),
            CullLimits(timeout=HOUR, cull_default_servers=False),
            Action.STOP,
            "idle 9h",
            id="named-culled-when-only-default-excluded",
        ),
        pytest.param(
            server_json(idle=0),
            CullLimits(timeout=0),
            Action.STOP,
            "idle 0s >= 0s",
            id="zero-timeout-culls-everything-like-upstream",
        ),
    ],
)
def test_server_decision(
    server: dict[str, Any], limits: CullLimits, action: Action, reason_part: str
) -> None:
    decision = decide_one(server, limits)
    assert decision.action is action
    assert reason_part in decision.reason


@pytest.mark.parametrize(
    ("server", "remove_flag", "remove"),
    [
        pytest.param(server_json("gpu", idle=9 * HOUR), True, True, id="named-removed"),
        pytest.param(server_json("gpu", idle=9 * HOUR), False, False, id="named-kept-by-default"),
        pytest.param(server_json("", idle=9 * HOUR), True, False, id="default-never-removed"),
        pytest.param(server_json("gpu", idle=60), True, False, id="not-removed-when-kept"),
    ],
)
def test_remove_named_servers(server: dict[str, Any], remove_flag: bool, remove: bool) -> None:
    decision = decide_one(server, CullLimits(timeout=HOUR, remove_named_servers=remove_flag))
    assert decision.remove is remove


def test_decision_carries_idle_and_age_for_the_report() -> None:
    decision = decide_one(server_json(idle=90, age=7200))
    assert decision.idle_seconds == pytest.approx(90)
    assert decision.age_seconds == pytest.approx(7200)
    assert decision.label == "alice"
    assert decide_one(server_json("gpu")).label == "alice/gpu"


USERS = CullLimits(timeout=HOUR, cull_users=True)


@pytest.mark.parametrize(
    ("user", "limits", "action", "reason_part"),
    [
        pytest.param(
            user_json(idle=2 * HOUR),
            USERS,
            Action.DELETE,
            "user idle 2h >= 1h",
            id="idle-user-without-servers",
        ),
        pytest.param(
            user_json(idle=HOUR), USERS, Action.DELETE, "user idle 1h", id="user-exactly-at-limit"
        ),
        pytest.param(
            user_json(idle=60), USERS, Action.KEEP, "user idle 1m < 1h", id="recently-active-user"
        ),
        pytest.param(
            user_json(idle=None, created_ago=2 * HOUR),
            USERS,
            Action.DELETE,
            "user idle 2h",
            id="null-activity-falls-back-to-created",
        ),
        pytest.param(
            user_json(idle=None, created_ago=None),
            USERS,
            Action.KEEP,
            "cannot tell how idle",
            id="no-timestamps-kept",
        ),
        pytest.param(
            user_json(idle=2 * HOUR, servers=[server_json(idle=2 * HOUR)]),
            USERS,
            Action.DELETE,
            "user idle 2h",
            id="all-servers-stopping",
        ),
        pytest.param(
            user_json(
                idle=2 * HOUR, servers=[server_json(idle=2 * HOUR), server_json("b", idle=60)]
            ),
            USERS,
            Action.KEEP,
            "server 'b' stays",
            id="one-server-stays",
        ),
        pytest.param(
            user_json(
                idle=2 * HOUR, servers=[server_json(idle=9 * HOUR, pending="spawn", ready=False)]
            ),
            USERS,
            Action.KEEP,
            "pending spawn",
            id="pending-server-protects-user",
        ),
        pytest.param(
            user_json(idle=2 * HOUR, servers=[server_json(idle=2 * HOUR)]),
            CullLimits(timeout=HOUR, cull_users=True, cull_default_servers=False),
            Action.KEEP,
            "server 'default' stays",
            id="uncullable-kind-protects-user",
        ),
        pytest.param(
            user_json(idle=2 * HOUR, admin=True),
            USERS,
            Action.DELETE,
            "user idle 2h",
            id="admin-deleted-by-default",
        ),
        pytest.param(
            user_json(idle=2 * HOUR, admin=True),
            CullLimits(timeout=HOUR, cull_users=True, cull_admin_users=False),
            Action.KEEP,
            "admin user",
            id="admin-protected",
        ),
        pytest.param(
            user_json(idle=60, created_ago=40 * HOUR, admin=True),
            CullLimits(timeout=HOUR, max_age=30 * HOUR, cull_users=True, cull_admin_users=False),
            Action.KEEP,
            "admin user",
            id="admin-protected-from-max-age",
        ),
        pytest.param(
            user_json(idle=60, created_ago=40 * HOUR),
            CullLimits(timeout=HOUR, max_age=30 * HOUR, cull_users=True),
            Action.DELETE,
            "user age 1d16h >= 1d6h (--max-age)",
            id="user-older-than-max-age",
        ),
    ],
)
def test_user_decision(
    user: dict[str, Any], limits: CullLimits, action: Action, reason_part: str
) -> None:
    record = User.from_api(user)
    servers = [decide_server(record, s, NOW, limits) for s in record.servers]
    decision = decide_user(record, servers, NOW, limits)
    assert decision.action is action
    assert reason_part in decision.reason


def test_user_decision_lists_the_servers_that_must_stop_first() -> None:
    record = User.from_api(
        user_json(
            idle=2 * HOUR, servers=[server_json(idle=2 * HOUR), server_json("x", idle=2 * HOUR)]
        )
    )
    plan = plan_of([record], NOW, USERS)
    assert [d.action for d in plan.servers] == [Action.STOP, Action.STOP]
    assert plan.deletions[0].servers_to_stop_first == ("", "x")


def test_admin_of_unknown_status_is_never_deleted_when_admins_are_protected() -> None:
    data = user_json(idle=9 * HOUR)
    del data["admin"]
    record = User.from_api(data)
    limits = CullLimits(timeout=HOUR, cull_users=True, cull_admin_users=False)
    assert decide_user(record, [], NOW, limits).action is Action.KEEP


def test_plan_without_cull_users_has_no_user_decisions() -> None:
    users = [
        User.from_api(user_json(f"u{i}", idle=9 * HOUR, servers=[server_json(idle=9 * HOUR)]))
        for i in range(3)
    ]
    plan = plan_of(users, NOW, LIMITS)
    assert len(plan.stops) == 3
    assert plan.users == ()
    assert plan.deletions == ()


def test_policy_module_does_no_io() -> None:
    """The policy must stay pure: no HTTP, CLI, retry or threading imports."""
    source = Path(__file__).parent.parent / "idle_cull" / "rules" / "policy.py"
    tree = ast.parse(source.read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    forbidden = {"requests", "click", "tenacity", "concurrent.futures", "socket", "time", "os"}
    assert imported, "the import scan found nothing: the check itself is broken"
    assert not {name.split(".")[0] for name in imported} & {f.split(".")[0] for f in forbidden}


@pytest.mark.parametrize(
    ("idle", "reason"),
    [
        pytest.param(-0.9, "idle 0s < 1h (--timeout)", id="within-date-header-resolution"),
        pytest.param(-2.0, "idle 0s < 1h (--timeout)", id="at-the-resolution"),
        pytest.param(-30, "in the future (clock skew?)", id="real-skew"),
    ],
)
def test_activity_slightly_ahead_of_now_is_resolution_not_skew(idle: float, reason: str) -> None:
    decision = decide_one(server_json(idle=idle))
    assert decision.action is Action.KEEP
    assert reason in decision.reason
