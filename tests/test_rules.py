"""Per-group, per-profile and per-server limits, exclusions and user limits (table-driven).

Precedence, as documented in docs/how-to/rules.md: exclusions, then profile, then server name,
then group (the most generous of the user's groups), then --timeout.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idle_cull.models import Server, User
from idle_cull.rules.policy import (
    Action,
    CullLimits,
    decide_server,
    decide_user,
    excluded,
    idle_limit,
)
from tests.support.cli import run
from tests.support.emulated_hub import URL, EmulatedHub
from tests.support.emulated_hub import server_json as live_server
from tests.support.emulated_hub import user_json as live_user
from tests.support.records import NOW, plan_of, server_json, user_json

H = 3600.0
RULES = CullLimits(
    timeout=1 * H,
    exclude_users=("admin-*", "svc"),
    exclude_groups=("instructors",),
    group_timeouts=(("students", 3 * H), ("staff", 8 * H), ("guests", 0.5 * H)),
    profile_timeouts=(("gpu", 2 * H), ("cpu", 6 * H)),
    server_timeouts=(("gpu-*", 0.25 * H), ("long*", 12 * H)),
)


def one(
    name: str = "u",
    *,
    server: str = "",
    groups: list[str] | None = None,
    profile: str | None = None,
    idle: float = 0,
) -> tuple[User, Server]:
    options = {"profile": profile} if profile else {}
    user = User.from_api(
        user_json(
            name, groups=groups, servers=[server_json(server, idle=idle, user_options=options)]
        )
    )
    return user, user.servers[0]


@pytest.mark.parametrize(
    ("user_server", "limit", "rule"),
    [
        pytest.param(one(), 1 * H, "--timeout", id="default"),
        pytest.param(one(groups=["students"]), 3 * H, "group students", id="group"),
        pytest.param(
            one(groups=["students", "staff"]), 8 * H, "group staff", id="most-generous-group"
        ),
        pytest.param(
            one(groups=["guests", "students"]),
            3 * H,
            "group students",
            id="generous-even-if-listed-second",
        ),
        pytest.param(one(groups=["unknown"]), 1 * H, "--timeout", id="group-without-limit"),
        pytest.param(
            one(server="gpu-a", groups=["staff"]),
            0.25 * H,
            "server gpu-*",
            id="server-name-beats-group",
        ),
        pytest.param(one(server="longrun"), 12 * H, "server long*", id="server-glob"),
        pytest.param(
            one(server="other", groups=["students"]),
            3 * H,
            "group students",
            id="unmatched-server-falls-to-group",
        ),
        pytest.param(
            one(server="", groups=[]), 1 * H, "--timeout", id="server-rules-skip-default-server"
        ),
        pytest.param(
            one(profile="gpu", groups=["staff"]), 2 * H, "profile gpu", id="profile-beats-group"
        ),
        pytest.param(
            one(server="gpu-a", profile="cpu"), 6 * H, "profile cpu", id="profile-beats-server-name"
        ),
        pytest.param(
            one(profile="tpu", groups=["students"]),
            3 * H,
            "group students",
            id="unknown-profile-falls-through",
        ),
    ],
)
def test_idle_limit_precedence(user_server: tuple[User, Server], limit: float, rule: str) -> None:
    user, server = user_server
    assert idle_limit(user, server, RULES) == (limit, rule)


@pytest.mark.parametrize(
    ("name", "groups", "reason"),
    [
        pytest.param("admin-ann", [], "excluded by --exclude-user admin-*", id="user-glob"),
        pytest.param("svc", [], "excluded by --exclude-user svc", id="user-exact"),
        pytest.param("svc2", [], None, id="glob-is-anchored"),
        pytest.param("Admin-ann", [], None, id="case-sensitive"),
        pytest.param("bob", ["instructors"], "excluded by --exclude-group instructors", id="group"),
        pytest.param("bob", ["students"], None, id="other-group"),
    ],
)
def test_exclusions(name: str, groups: list[str], reason: str | None) -> None:
    user, _ = one(name, groups=groups)
    assert excluded(user, RULES) == reason


@pytest.mark.parametrize(
    ("user_server", "action", "reason"),
    [
        pytest.param(
            one("admin-x", idle=99 * H),
            Action.KEEP,
            "excluded by --exclude-user admin-*",
            id="excluded-never-stopped",
        ),
        pytest.param(
            one("t", groups=["instructors", "students"], idle=99 * H),
            Action.KEEP,
            "excluded by --exclude-group",
            id="exclusion-beats-every-limit",
        ),
        pytest.param(
            one(profile="gpu", idle=2.5 * H),
            Action.STOP,
            "idle 2h30m >= 2h (profile gpu)",
            id="profile-stop-reason",
        ),
        pytest.param(
            one(groups=["students"], idle=2.5 * H),
            Action.KEEP,
            "idle 2h30m < 3h (group students)",
            id="group-keep-reason",
        ),
        pytest.param(
            one(server="gpu-1", idle=20 * 60),
            Action.STOP,
            "idle 20m >= 15m (server gpu-*)",
            id="server-stop-reason",
        ),
        pytest.param(
            one(idle=1 * H), Action.STOP, "idle 1h >= 1h (--timeout)", id="default-reason"
        ),
    ],
)
def test_server_decisions_name_their_rule(
    user_server: tuple[User, Server], action: Action, reason: str
) -> None:
    user, server = user_server
    decision = decide_server(user, server, NOW, RULES)
    assert decision.action is action
    assert reason in decision.reason


USER_RULES = CullLimits(
    timeout=1 * H,
    max_age=2 * H,
    cull_users=True,
    user_timeout=30 * 24 * H,
    user_max_age=90 * 24 * H,
    exclude_groups=("keep",),
)


@pytest.mark.parametrize(
    ("record", "limits", "action", "reason"),
    [
        pytest.param(
            user_json(idle=2 * H),
            USER_RULES,
            Action.KEEP,
            "user idle 2h < 30d (--user-timeout)",
            id="server-limit-does-not-delete-users",
        ),
        pytest.param(
            user_json(idle=31 * 24 * H),
            USER_RULES,
            Action.DELETE,
            "user idle 31d >= 30d (--user-timeout)",
            id="user-timeout",
        ),
        pytest.param(
            user_json(idle=60, created_ago=91 * 24 * H),
            USER_RULES,
            Action.DELETE,
            "user age 91d >= 90d (--user-max-age)",
            id="user-max-age",
        ),
        pytest.param(
            user_json(idle=60, created_ago=10 * H),
            USER_RULES,
            Action.KEEP,
            "user idle 1m < 30d",
            id="server-max-age-does-not-apply-to-users",
        ),
        pytest.param(
            user_json(idle=2 * H),
            CullLimits(timeout=1 * H, cull_users=True),
            Action.DELETE,
            "user idle 2h >= 1h (--timeout)",
            id="defaults-to-timeout-like-upstream",
        ),
        pytest.param(
            user_json(idle=60, created_ago=3 * H),
            CullLimits(timeout=1 * H, max_age=2 * H, cull_users=True),
            Action.DELETE,
            "(--max-age)",
            id="defaults-to-max-age-like-upstream",
        ),
        pytest.param(
            user_json(idle=99 * 24 * H, groups=["keep"]),
            USER_RULES,
            Action.KEEP,
            "excluded by --exclude-group keep",
            id="excluded-user-never-deleted",
        ),
    ],
)
def test_user_limits(
    record: dict[str, Any], limits: CullLimits, action: Action, reason: str
) -> None:
    user = User.from_api(record)
    decision = decide_user(user, [], NOW, limits)
    assert decision.action is action
    assert reason in decision.reason


# -- the options, end to end in-process ---------------------------------------------------


def test_rule_options_reach_the_decisions(emulated_hub: EmulatedHub) -> None:
    users = [
        live_user(
            "gpu-user",
            groups=["students"],
            servers=[live_server(idle=3 * H, user_options={"profile": "gpu"})],
        ),
        live_user("student", groups=["students"], servers=[live_server(idle=2 * H)]),
        live_user("teacher", groups=["instructors"], servers=[live_server(idle=99 * H)]),
        live_user("svc-bot", servers=[live_server(idle=99 * H)]),
    ]
    emulated_hub.serve_users("ready", users)
    emulated_hub.answer_stop("gpu-user", status=204)
    result = run(
        "--timeout=1h",
        "--profile-timeout=gpu=2h",
        "--group-timeout",
        "students=4h",
        "--exclude-group=instructors",
        "--exclude-user=svc-*",
        "--log-level=debug",
    )
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == [f"{URL}/users/gpu-user/server"]
    assert "stop server gpu-user: idle 3h >= 2h (profile gpu)" in result.stderr
    assert "keep server student: idle 2h < 4h (group students)" in result.stderr
    assert "keep server teacher: excluded by --exclude-group instructors" in result.stderr
    assert "keep server svc-bot: excluded by --exclude-user svc-*" in result.stderr


def test_group_rules_need_the_groups_field(emulated_hub: EmulatedHub) -> None:
    record = live_user("x", servers=[live_server(idle=99 * H)])
    del record["groups"]
    emulated_hub.serve_users("ready", [record])
    result = run("--timeout=1h", "--exclude-group=instructors")
    assert result.exit_code == 3
    assert "read:users:groups" in result.stderr
    assert emulated_hub.deleted_urls() == []


def test_profile_rules_need_user_options(emulated_hub: EmulatedHub) -> None:
    record = live_user("x", servers=[live_server(idle=99 * H)])
    del record["servers"][""]["user_options"]
    emulated_hub.serve_users("ready", [record])
    result = run("--timeout=1h", "--profile-timeout=gpu=2h")
    assert result.exit_code == 3
    assert "user_options" in result.stderr
    assert emulated_hub.deleted_urls() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--group-timeout=students"], "is not NAME=DURATION", id="no-equals"),
        pytest.param(["--group-timeout==2h"], "is not NAME=DURATION", id="no-name"),
        pytest.param(["--profile-timeout=gpu=soon"], "not a duration", id="bad-duration"),
        pytest.param(["--server-timeout=gpu-*=-1h"], "not a duration", id="negative"),
        pytest.param(
            ["--group-timeout=a=1h", "--group-timeout=a=2h"],
            "given more than once for a",
            id="duplicate",
        ),
        pytest.param(["--user-timeout=x"], "not a duration", id="bad-user-timeout"),
    ],
)
def test_rule_option_errors(emulated_hub: EmulatedHub, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(emulated_hub.calls) == 0


# -- property: an excluded user is never touched ------------------------------------------

NAMES = st.sampled_from(["ann", "bob", "svc-1", "svc-2", "admin-x", "zoe"])
GROUPS = st.lists(st.sampled_from(["instructors", "students", "staff"]), unique=True, max_size=2)
SERVERS = st.lists(
    st.builds(
        server_json,
        st.sampled_from(["", "lab", "gpu-1"]),
        idle=st.floats(min_value=0, max_value=100 * H),
        age=st.floats(min_value=0, max_value=100 * H),
        user_options=st.sampled_from([{}, {"profile": "gpu"}]),
    ),
    max_size=3,
    unique_by=lambda s: s["name"],
)


@given(
    records=st.lists(
        st.builds(
            user_json,
            NAMES,
            servers=SERVERS,
            idle=st.floats(0, 100 * H),
            groups=GROUPS,
            admin=st.booleans(),
        ),
        max_size=8,
        unique_by=lambda u: u["name"],
    ),
    exclude_users=st.lists(st.sampled_from(["svc-*", "ann", "a*", "nobody"]), max_size=2),
    exclude_groups=st.lists(st.sampled_from(["instructors", "staff"]), max_size=2),
)
def test_excluded_users_are_never_touched(
    records: list[dict[str, Any]], exclude_users: list[str], exclude_groups: list[str]
) -> None:
    limits = CullLimits(
        timeout=1 * H,
        max_age=2 * H,
        cull_users=True,
        exclude_users=tuple(exclude_users),
        exclude_groups=tuple(exclude_groups),
        profile_timeouts=(("gpu", 0.1 * H),),
    )
    users = [User.from_api(r) for r in records]
    plan = plan_of(users, NOW, limits)
    protected = {u.name for u in users if excluded(u, limits)}
    touched = {d.user for d in plan.stops} | {d.user for d in plan.deletions}
    assert not protected & touched


# -- issue 22.3: what the preflight, the field check and the clock check take comes from RULES


def test_needs_are_derived_from_the_rules_in_force() -> None:
    from idle_cull.rules.catalogue import RULES, fields_needed, limits_in_force, scopes_needed  # noqa: PLC0415
    from idle_cull.rules.policy import CullLimits  # noqa: PLC0415

    limits = CullLimits(timeout=3600, cull_users=True, group_timeouts=(("gpu", 600),))
    assert fields_needed(limits) == {"last_activity", "servers", "admin", "created", "groups"}
    assert [n.scope for n in scopes_needed(limits)] == [
        "list:users", "read:users:activity", "read:servers", "delete:servers",
        "read:users", "delete:users", "read:users:groups",
    ]  # fmt: skip
    assert min(limits_in_force(limits)) == 600
    assert all(rule.name for rule in RULES)
