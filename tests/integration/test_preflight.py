"""Preflight against a real JupyterHub: the token's scopes and the named groups are
checked before anything is listed or acted on, dry runs included."""

from __future__ import annotations

import sys
import time

import pytest

from tests.support.cli import IDLE, PAST_IDLE, cull
from tests.support.realhub import LOG_FILE, RealHub, wait_for
from tests.support.releases import HubRelease

# Also run on every older release of tests/support/hub_releases.txt (scripts/test-hub):
# GET /user's scopes and GET /groups/{name} on each.
pytestmark = pytest.mark.matrix


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_token_without_delete_servers_exits_3_before_listing(
    real_hub: RealHub, dry_run: bool
) -> None:
    real_hub.create_users(["victim"])
    real_hub.start_server("victim")
    time.sleep(PAST_IDLE)
    args = [f"--timeout={IDLE}", "--log-level=debug", *(["--dry-run"] if dry_run else [])]
    result = cull(real_hub, *args, token=real_hub.readonly_token)
    assert result.returncode == 3, result.stderr
    assert (
        "the token lacks what this configuration needs: delete:servers (to stop servers)"
        in result.stderr
    )
    assert '"services": ["idle-cull-readonly"]' in result.stderr
    assert "listed 0 user records" not in result.stderr  # refused before listing
    assert "users_listed=0" in result.stderr
    assert "exit=3" in result.stderr
    assert real_hub.user("victim")["servers"].keys() == {""}  # type: ignore[index]


def test_the_documented_role_passes_preflight(real_hub: RealHub) -> None:
    result = cull(
        real_hub, f"--timeout={IDLE}", "--dry-run", "--cull-users", token=real_hub.culler_token
    )
    assert result.returncode == 0, result.stderr
    assert "the token has the scopes this pass needs" in result.stderr


def test_a_group_the_hub_does_not_have_exits_2(real_hub: RealHub) -> None:
    real_hub.create_users(["teacher", "student"])
    real_hub.add_to_group("instructors", ["teacher"])
    real_hub.start_server("teacher")
    time.sleep(PAST_IDLE)
    result = cull(
        real_hub, f"--timeout={IDLE}", "--exclude-group=instructor", token=real_hub.culler_token
    )
    assert result.returncode == 2, result.stderr
    assert "the hub has no such group: --exclude-group 'instructor'" in result.stderr
    assert real_hub.user("teacher")["servers"].keys() == {""}  # type: ignore[index]
    # Spelt right, the group exists and protects its member.
    result = cull(
        real_hub, f"--timeout={IDLE}", "--exclude-group=instructors", token=real_hub.culler_token
    )
    assert result.returncode == 0, result.stderr
    assert real_hub.user("teacher")["servers"].keys() == {""}  # type: ignore[index]


def test_group_rules_without_read_users_groups_exit_3(real_hub: RealHub) -> None:
    result = cull(
        real_hub,
        f"--timeout={IDLE}",
        "--dry-run",
        "--exclude-group=instructors",
        token=real_hub.servers_only_token,
    )
    # servers-only cannot read users' groups: that scope is missing, named, exit 3.
    assert result.returncode == 3, result.stderr
    assert "read:users:groups (to read users' groups" in result.stderr


def test_a_group_rule_the_token_cannot_check_exits_3_unless_allowed(real_hub: RealHub) -> None:
    """Issue 23.1: with read:users:groups but not read:groups:name, ``instructor`` (a
    typo of ``instructors``) cannot be checked; the pass must not go on unless told to."""
    real_hub.create_users(["carol"])
    real_hub.add_to_group("instructors", ["carol"])
    real_hub.start_server("carol")
    time.sleep(PAST_IDLE)
    token = real_hub.groups_unchecked_token
    rule = [f"--timeout={IDLE}", "--exclude-group=instructor", "--report=text"]
    result = cull(real_hub, *rule, token=token)
    assert result.returncode == 3, result.stderr
    assert "the token lacks what this configuration needs: read:groups:name (" in result.stderr
    assert (
        '{"name": "idle-cull-groups-unchecked", "scopes": ["list:users", "read:users:activity", '
        '"read:servers", "delete:servers", "read:users:groups", "read:groups:name"], '
        '"services": ["idle-cull-groups-unchecked"]}'
    ) in result.stderr
    assert "stop server" not in result.stderr
    assert real_hub.user("carol")["servers"].keys() == {""}  # type: ignore[index]

    result = cull(real_hub, *rule, "--dry-run", "--allow-unchecked-groups", token=token)
    assert result.returncode == 0, result.stderr
    assert (
        "WARNING cannot check that the group(s) 'instructor' exist: the token may not read "
        "groups; going on as --allow-unchecked-groups asks"
    ) in result.stderr
    assert "would stop  carol" in result.stdout  # the risk the operator accepted
    assert real_hub.user("carol")["servers"].keys() == {""}  # type: ignore[index]


def test_run_as_a_hub_managed_service_it_refuses_and_says_why(hub_release: HubRelease) -> None:
    """Upstream's setup: the culler in c.JupyterHub.services with a command. The hub starts
    it with the environment it gives its services; idle-cull refuses, pointing to a
    scheduler, before sending anything."""
    command = [sys.executable, "-m", "idle_cull", "--dry-run"]
    with RealHub.start(managed_service=command, release=hub_release.name) as hub:
        refusal = "idle-cull was started by JupyterHub as the managed service 'idle-cull-managed'"
        wait_for(
            lambda: refusal in (hub.workdir / LOG_FILE).read_text(errors="replace"),
            "the refusal in the hub's log",
        )
        log = (hub.workdir / LOG_FILE).read_text(errors="replace")
    assert "systemd timer, cron or a Kubernetes CronJob" in log
    assert "summary: DRY RUN, nothing was changed: users_listed=0" in log
    assert "exit=2" in log
