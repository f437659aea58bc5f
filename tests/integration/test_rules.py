"""Per-group, per-profile and per-server limits and exclusions against a real JupyterHub."""

from __future__ import annotations

import time

import pytest

from tests.support.cli import cull, servers_of
from tests.support.realhub import RealHub

# Also run on every older release of tests/support/hub_releases.txt (scripts/test-hub).
pytestmark = pytest.mark.matrix


def test_rules_pick_the_limit_per_server(real_hub: RealHub) -> None:
    real_hub.create_users(["gpu-gus", "stu", "prof", "svc-bot", "nan"])
    real_hub.add_to_group("students", ["stu", "gpu-gus"])
    real_hub.add_to_group("instructors", ["prof"])
    real_hub.start_server(
        "gpu-gus", user_options={"profile": "gpu"}
    )  # profile: 2 s beats group 60 s
    real_hub.start_server("stu")  # group students: 60 s, not idle enough
    real_hub.start_server("prof")  # excluded group
    real_hub.start_server("svc-bot")  # excluded user glob
    real_hub.start_server("nan", "scratch")  # named-server glob: 2 s
    real_hub.start_server("nan", "keep")  # no rule matches: --timeout 60 s
    time.sleep(3.5)
    result = cull(
        real_hub,
        "--timeout=60",
        "--profile-timeout=gpu=2",
        "--group-timeout=students=60",
        "--server-timeout=scr*=2",
        "--exclude-group=instructors",
        "--exclude-user=svc-*",
        "--cull-users",
        "--user-timeout=1d",
        "--log-level=debug",
    )
    assert result.returncode == 0, result.stderr
    assert servers_of(real_hub, "gpu-gus") == set()
    assert servers_of(real_hub, "stu") == {""}
    assert servers_of(real_hub, "prof") == {""}
    assert servers_of(real_hub, "svc-bot") == {""}
    assert servers_of(real_hub, "nan") == {"keep"}
    assert ">= 2s (profile gpu)" in result.stderr
    assert "< 1m (group students)" in result.stderr
    assert ">= 2s (server scr*)" in result.stderr
    assert "keep server prof: excluded by --exclude-group instructors" in result.stderr
    assert "keep server svc-bot: excluded by --exclude-user svc-*" in result.stderr
    # --user-timeout=1d keeps gpu-gus as a user although its server was culled.
    assert real_hub.user("gpu-gus") is not None
    assert "(--user-timeout)" in result.stderr


def test_group_rules_fail_without_the_groups_scope(real_hub: RealHub) -> None:
    real_hub.create_users(["solo"])
    real_hub.start_server("solo")
    time.sleep(3.5)
    result = cull(
        real_hub, "--timeout=2", "--exclude-group=instructors", token=real_hub.servers_only_token
    )
    assert result.returncode == 3, result.stderr
    assert "read:users:groups" in result.stderr
    assert servers_of(real_hub, "solo") == {""}
