"""idle-cull run as a subprocess against a real JupyterHub.

Servers cannot be made idle by posting an old activity (the hub only moves it forward),
so these tests use short timeouts and wait a little past them, touching the servers
that must look active just before the pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest

from tests.realhub import LOG_FILE, RealHub

IDLE = 3  # --timeout for these tests, in seconds
# The hub clock (Date header) is truncated to the second, so idleness reads up to 1 s
# short: wait well past the limit.
PAST_IDLE = IDLE + 1.5


def cull(hub: RealHub, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """One pass of the installed command, as cron or systemd would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_URL"] = hub.api_url
    env["JUPYTERHUB_API_TOKEN"] = token if token is not None else hub.culler_token
    result = subprocess.run(
        [sys.executable, "-m", "idle_cull", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for secret in (hub.culler_token, hub.admin_token, hub.servers_only_token, hub.noscope_token, hub.readonly_token):
        assert secret not in result.stdout + result.stderr
    return result


def servers_of(hub: RealHub, name: str) -> set[str]:
    model = hub.user(name)
    assert model is not None, f"user {name} is gone"
    return set(model["servers"])


def test_idle_default_server_culled_and_active_one_kept(hub: RealHub) -> None:
    hub.create_users(["idle-ida", "busy-bo"])
    hub.start_server("idle-ida")
    hub.start_server("busy-bo")
    time.sleep(PAST_IDLE)
    hub.touch("busy-bo")
    result = cull(hub, f"--timeout={IDLE}", "--log-level=debug")
    assert result.returncode == 0, result.stderr
    assert servers_of(hub, "idle-ida") == set()
    assert servers_of(hub, "busy-bo") == {""}
    assert re.search(r"stop server idle-ida: idle [\d.]+s >= 3s \(--timeout\)", result.stderr)
    assert re.search(r"keep server busy-bo: idle [\d.]+s < 3s", result.stderr)
    assert "stop server idle-ida: stopped" in result.stderr
    assert "server_stopped=1" in result.stderr
    # Users are never deleted without --cull-users.
    assert hub.user("idle-ida") is not None


def test_rerun_is_idempotent(hub: RealHub) -> None:
    hub.create_users(["again"])
    hub.start_server("again")
    time.sleep(PAST_IDLE)
    first = cull(hub, f"--timeout={IDLE}")
    second = cull(hub, f"--timeout={IDLE}")
    assert (first.returncode, second.returncode) == (0, 0)
    assert "server_stopped=1" in first.stderr
    assert "users_listed=0" in second.stderr
    assert servers_of(hub, "again") == set()


def test_named_server_culled_and_removed(hub: RealHub) -> None:
    hub.create_users(["nora"])
    hub.start_server("nora", "lab")
    hub.start_server("nora", "keep")
    time.sleep(PAST_IDLE)
    hub.touch("nora", "keep")
    result = cull(hub, f"--timeout={IDLE}", "--remove-named-servers")
    assert result.returncode == 0, result.stderr
    assert servers_of(hub, "nora") == {"keep"}
    # Removed, not just stopped: the hub no longer knows the server at all.
    response = hub.api("GET", "/users/nora?include_stopped_servers=1", expect=(200,))
    assert "lab" not in response.json()["servers"]


def test_named_server_only_stopped_without_remove(hub: RealHub) -> None:
    hub.create_users(["nils"])
    hub.start_server("nils", "lab")
    time.sleep(PAST_IDLE)
    result = cull(hub, f"--timeout={IDLE}")
    assert result.returncode == 0, result.stderr
    response = hub.api("GET", "/users/nils?include_stopped_servers=1", expect=(200,))
    assert response.json()["servers"]["lab"]["stopped"] is True


def test_kind_flags_protect_default_or_named(hub: RealHub) -> None:
    hub.create_users(["kim"])
    hub.start_server("kim")
    hub.start_server("kim", "lab")
    time.sleep(PAST_IDLE)
    result = cull(hub, f"--timeout={IDLE}", "--cull-default-servers=false")
    assert result.returncode == 0, result.stderr
    assert servers_of(hub, "kim") == {""}


def test_cull_users_deletes_idle_users_and_spares_admins(hub: RealHub) -> None:
    hub.create_users(["temp-1", "temp-2"])
    hub.create_users(["boss"], admin=True)
    hub.create_users(["fresh"])
    hub.start_server("temp-1")
    time.sleep(PAST_IDLE)
    hub.touch("fresh")
    result = cull(hub, f"--timeout={IDLE}", "--cull-users", "--cull-admin-users=false", "--log-level=debug")
    assert result.returncode == 0, result.stderr
    assert hub.user("temp-1") is None  # server stopped, then user deleted
    assert hub.user("temp-2") is None  # never had a server
    assert hub.user("boss") is not None
    assert hub.user("fresh") is not None
    assert "keep user boss: admin user (--cull-admin-users=false)" in result.stderr
    assert "user_deleted=2" in result.stderr


def test_admins_are_deleted_by_default_like_upstream(hub: RealHub) -> None:
    hub.create_users(["boss"], admin=True)
    time.sleep(PAST_IDLE)
    result = cull(hub, f"--timeout={IDLE}", "--cull-users")
    assert result.returncode == 0, result.stderr
    assert hub.user("boss") is None


def test_max_age_stops_active_but_old_servers(hub: RealHub) -> None:
    hub.create_users(["old", "young"])
    hub.start_server("old")
    time.sleep(3.2)
    hub.start_server("young")
    hub.touch("old")
    hub.touch("young")
    result = cull(hub, "--timeout=3600", "--max-age=2")
    assert result.returncode == 0, result.stderr
    assert servers_of(hub, "old") == set()
    assert servers_of(hub, "young") == {""}
    assert "(--max-age)" in result.stderr


def test_listing_across_many_pages(hub: RealHub) -> None:
    names = [f"pager-{i}" for i in range(9)]
    hub.create_users(names)
    for name in names:
        hub.start_server(name)
    time.sleep(PAST_IDLE)
    hub.touch("pager-4")
    result = cull(hub, f"--timeout={IDLE}", "--api-page-size=2", "--concurrency=3")
    assert result.returncode == 0, result.stderr
    assert {n for n in names if servers_of(hub, n)} == {"pager-4"}
    assert "users_listed=9" in result.stderr
    assert "server_stopped=8" in result.stderr


def test_slow_stop_keeps_user_until_a_later_pass(hub: RealHub) -> None:
    hub.create_users(["slowpoke"])
    hub.start_server("slowpoke")
    hub.set_stop_delay(2.5)  # longer than the hub's slow_stop_timeout of 1 s: 202
    time.sleep(PAST_IDLE)
    first = cull(hub, f"--timeout={IDLE}", "--cull-users")
    assert first.returncode == 0, first.stderr
    assert "stop server slowpoke: pending" in first.stderr
    assert "not deleting user slowpoke" in first.stderr
    assert hub.user("slowpoke") is not None
    # The stop finishes; the hub stamps the user's activity then, so wait out the timeout.
    deadline = time.monotonic() + 30
    while servers_of(hub, "slowpoke") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(PAST_IDLE)
    second = cull(hub, f"--timeout={IDLE}", "--cull-users")
    assert second.returncode == 0, second.stderr
    assert hub.user("slowpoke") is None


@pytest.mark.parametrize(
    ("token_name", "args", "message"),
    [
        pytest.param("bad", [], "does not accept the API token", id="bad-token"),
        pytest.param("noscope_token", [], "list:users (to list users)", id="token-without-list-scope"),
        pytest.param("servers_only_token", ["--cull-users"], "admin:users", id="cull-users-without-admin-users"),
    ],
)
def test_auth_problems_exit_3_and_cull_nothing(
    hub: RealHub, token_name: str, args: list[str], message: str
) -> None:
    hub.create_users(["victim"])
    hub.start_server("victim")
    time.sleep(PAST_IDLE)
    token = "0" * 32 if token_name == "bad" else getattr(hub, token_name)
    result = cull(hub, f"--timeout={IDLE}", *args, token=token)
    assert result.returncode == 3, result.stderr
    assert message in result.stderr
    assert "nothing was culled" in result.stderr
    assert servers_of(hub, "victim") == {""}


def test_unreachable_hub_exits_3(hub: RealHub) -> None:
    env_url = hub.api_url.replace(hub.api_url.split(":")[2].split("/")[0], "1")
    result = cull(hub, "--timeout=60", f"--url={env_url}", "--request-timeout=2")
    assert result.returncode == 3
    assert "cannot connect" in result.stderr


def test_configuration_error_exits_2(hub: RealHub) -> None:
    result = cull(hub, "--timeout=ten minutes")
    assert result.returncode == 2
    assert "not a duration" in result.stderr


def test_concurrency_runs_stops_in_parallel(hub: RealHub) -> None:
    """Proven from the hub's own request log (start = end - duration), not by timing."""
    names = [f"par-{i}" for i in range(6)]
    hub.create_users(names)
    for name in names:
        hub.start_server(name)
    hub.set_stop_delay(0.5)
    time.sleep(PAST_IDLE)
    log_start = (hub.workdir / LOG_FILE).stat().st_size
    result = cull(hub, f"--timeout={IDLE}", "--concurrency=3")
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"stop server par-\d: (?:stopped|pending)", result.stderr)) == 6, result.stderr
    with (hub.workdir / LOG_FILE).open("rb") as log:
        log.seek(log_start)
        text = log.read().decode(errors="replace")
    spans = [
        (end - timedelta(milliseconds=float(ms)), end)
        for end, ms in (
            (datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f"), ms)
            for stamp, ms in re.findall(
                r"\[I (\S+ \S+) JupyterHub \S+\] 20\d DELETE /hub/api/users/par-\d/server \(idle-cull@[^)]*\) ([\d.]+)ms",
                text,
            )
        )
    ]
    assert len(spans) == 6, text
    overlap = max(sum(1 for s, e in spans if s <= moment < e) for moment, _ in spans)
    assert overlap == 3  # three at a time: bounded by --concurrency, and really concurrent
