"""idle-cull run as a subprocess against a real JupyterHub.

Servers cannot be made idle by posting an old activity (the hub only moves it forward),
so these tests use short timeouts and wait a little past them, touching the servers
that must look active just before the pass.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import pytest

from tests.support.cli import IDLE, PAST_IDLE, cull, servers_of
from tests.support.realhub import LOG_FILE, RealHub

# Also run on every older release of tests/support/hub_releases.txt (scripts/test-hub).
pytestmark = pytest.mark.matrix


def test_idle_default_server_culled_and_active_one_kept(real_hub: RealHub) -> None:
    real_hub.create_users(["idle-ida", "busy-bo"])
    real_hub.start_server("idle-ida")
    real_hub.start_server("busy-bo")
    time.sleep(PAST_IDLE)
    real_hub.touch("busy-bo")
    result = cull(real_hub, f"--timeout={IDLE}", "--log-level=debug")
    assert result.returncode == 0, result.stderr
    assert servers_of(real_hub, "idle-ida") == set()
    assert servers_of(real_hub, "busy-bo") == {""}
    assert re.search(r"stop server idle-ida: idle [\d.]+s >= 3s \(--timeout\)", result.stderr)
    assert re.search(r"keep server busy-bo: idle [\d.]+s < 3s", result.stderr)
    assert "stop server idle-ida: stopped" in result.stderr
    assert "server_stopped=1" in result.stderr
    # Users are never deleted without --cull-users.
    assert real_hub.user("idle-ida") is not None


def test_rerun_is_idempotent(real_hub: RealHub) -> None:
    real_hub.create_users(["again"])
    real_hub.start_server("again")
    time.sleep(PAST_IDLE)
    first = cull(real_hub, f"--timeout={IDLE}")
    second = cull(real_hub, f"--timeout={IDLE}")
    assert (first.returncode, second.returncode) == (0, 0)
    assert "server_stopped=1" in first.stderr
    assert "users_listed=0" in second.stderr
    assert servers_of(real_hub, "again") == set()


def test_named_server_culled_and_removed(real_hub: RealHub) -> None:
    real_hub.create_users(["nora"])
    real_hub.start_server("nora", "lab")
    real_hub.start_server("nora", "keep")
    time.sleep(PAST_IDLE)
    real_hub.touch("nora", "keep")
    result = cull(real_hub, f"--timeout={IDLE}", "--remove-named-servers")
    assert result.returncode == 0, result.stderr
    assert servers_of(real_hub, "nora") == {"keep"}
    # Removed, not just stopped: the hub no longer knows the server at all.
    assert not real_hub.has_named_server("nora", "lab")


def test_named_server_only_stopped_without_remove(real_hub: RealHub) -> None:
    real_hub.create_users(["nils"])
    real_hub.start_server("nils", "lab")
    time.sleep(PAST_IDLE)
    result = cull(real_hub, f"--timeout={IDLE}")
    assert result.returncode == 0, result.stderr
    assert servers_of(real_hub, "nils") == set()
    assert real_hub.has_named_server("nils", "lab")  # stopped, not removed


def test_kind_flags_protect_default_or_named(real_hub: RealHub) -> None:
    real_hub.create_users(["kim"])
    real_hub.start_server("kim")
    real_hub.start_server("kim", "lab")
    time.sleep(PAST_IDLE)
    result = cull(real_hub, f"--timeout={IDLE}", "--cull-default-servers=false")
    assert result.returncode == 0, result.stderr
    assert servers_of(real_hub, "kim") == {""}


def test_cull_users_deletes_idle_users_and_spares_admins(real_hub: RealHub) -> None:
    real_hub.create_users(["temp-1", "temp-2"])
    real_hub.create_users(["boss"], admin=True)
    real_hub.create_users(["fresh"])
    real_hub.start_server("temp-1")
    time.sleep(PAST_IDLE)
    real_hub.touch("fresh")
    result = cull(
        real_hub,
        f"--timeout={IDLE}",
        "--cull-users",
        "--cull-admin-users=false",
        "--log-level=debug",
    )
    assert result.returncode == 0, result.stderr
    assert real_hub.user("temp-1") is None  # server stopped, then user deleted
    assert real_hub.user("temp-2") is None  # never had a server
    assert real_hub.user("boss") is not None
    assert real_hub.user("fresh") is not None
    assert "keep user boss: admin user (--cull-admin-users=false)" in result.stderr
    assert "user_deleted=2" in result.stderr


def test_admins_are_deleted_by_default_like_upstream(real_hub: RealHub) -> None:
    real_hub.create_users(["boss"], admin=True)
    time.sleep(PAST_IDLE)
    result = cull(real_hub, f"--timeout={IDLE}", "--cull-users")
    assert result.returncode == 0, result.stderr
    assert real_hub.user("boss") is None


def test_max_age_stops_active_but_old_servers(real_hub: RealHub) -> None:
    real_hub.create_users(["old", "young"])
    real_hub.start_server("old")
    time.sleep(3.2)
    real_hub.start_server("young")
    real_hub.touch("old")
    real_hub.touch("young")
    result = cull(real_hub, "--timeout=3600", "--max-age=2")
    assert result.returncode == 0, result.stderr
    assert servers_of(real_hub, "old") == set()
    assert servers_of(real_hub, "young") == {""}
    assert "(--max-age)" in result.stderr


def test_listing_across_many_pages(real_hub: RealHub) -> None:
    names = [f"pager-{i}" for i in range(9)]
    real_hub.create_users(names)
    for name in names:
        real_hub.start_server(name)
    time.sleep(PAST_IDLE)
    real_hub.touch("pager-4")
    result = cull(real_hub, f"--timeout={IDLE}", "--api-page-size=2", "--concurrency=3")
    assert result.returncode == 0, result.stderr
    assert {n for n in names if servers_of(real_hub, n)} == {"pager-4"}
    assert "users_listed=9" in result.stderr
    assert "server_stopped=8" in result.stderr


def test_a_hub_where_nearly_everyone_runs_is_listed_unfiltered(real_hub: RealHub) -> None:
    """Past 20 ready pages with most users running, the pass lists everyone, same outcome."""
    running = [f"runner-{i:02d}" for i in range(41)]  # 41 >= 20 pages of 2
    real_hub.create_users([*running, "no-server-1", "no-server-2"])
    for name in running:
        real_hub.start_server(name)
    time.sleep(PAST_IDLE)
    real_hub.touch("runner-07")
    result = cull(real_hub, f"--timeout={IDLE}", "--api-page-size=2")
    assert result.returncode == 0, result.stderr
    assert "listing all 43 users instead of state=ready: 41 of them have a server" in result.stderr
    assert {n for n in running if servers_of(real_hub, n)} == {"runner-07"}
    assert "users_listed=41" in result.stderr  # the users without a server are not judged
    assert "server_stopped=40" in result.stderr


def test_slow_stop_keeps_user_until_a_later_pass(real_hub: RealHub) -> None:
    real_hub.create_users(["slowpoke"])
    real_hub.start_server("slowpoke")
    real_hub.set_stop_delay(2.5)  # longer than the hub's slow_stop_timeout of 1 s: 202
    time.sleep(PAST_IDLE)
    first = cull(real_hub, f"--timeout={IDLE}", "--cull-users")
    assert first.returncode == 0, first.stderr
    assert "stop server slowpoke: pending" in first.stderr
    assert "not deleting user slowpoke" in first.stderr
    assert real_hub.user("slowpoke") is not None
    # The stop finishes; the hub stamps the user's activity then, so wait out the timeout.
    deadline = time.monotonic() + 30
    while servers_of(real_hub, "slowpoke") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(PAST_IDLE)
    second = cull(real_hub, f"--timeout={IDLE}", "--cull-users")
    assert second.returncode == 0, second.stderr
    assert real_hub.user("slowpoke") is None


@pytest.mark.parametrize(
    ("token_name", "args", "message"),
    [
        pytest.param("bad", [], "does not accept the API token", id="bad-token"),
        pytest.param(
            "noscope_token", [], "list:users (to list users)", id="token-without-list-scope"
        ),
        pytest.param(
            "servers_only_token",
            ["--cull-users"],
            "admin:users",
            id="cull-users-without-admin-users",
        ),
    ],
)
def test_auth_problems_exit_3_and_cull_nothing(
    real_hub: RealHub, token_name: str, args: list[str], message: str
) -> None:
    real_hub.create_users(["victim"])
    real_hub.start_server("victim")
    time.sleep(PAST_IDLE)
    token = "0" * 32 if token_name == "bad" else getattr(real_hub, token_name)
    result = cull(real_hub, f"--timeout={IDLE}", *args, token=token)
    assert result.returncode == 3, result.stderr
    assert message in result.stderr
    assert "nothing was culled" in result.stderr
    assert servers_of(real_hub, "victim") == {""}


def test_unreachable_hub_exits_3(real_hub: RealHub) -> None:
    env_url = real_hub.api_url.replace(real_hub.api_url.split(":")[2].split("/")[0], "1")
    result = cull(real_hub, "--timeout=60", f"--url={env_url}", "--request-timeout=2")
    assert result.returncode == 3
    assert "cannot connect" in result.stderr


def test_configuration_error_exits_2(real_hub: RealHub) -> None:
    result = cull(real_hub, "--timeout=ten minutes")
    assert result.returncode == 2
    assert "not a duration" in result.stderr


def test_concurrency_runs_stops_in_parallel(real_hub: RealHub) -> None:
    """Proven from the hub's own request log (start = end - duration), not by timing."""
    names = [f"par-{i}" for i in range(6)]
    real_hub.create_users(names)
    for name in names:
        real_hub.start_server(name)
    real_hub.set_stop_delay(0.5)
    time.sleep(PAST_IDLE)
    log_start = (real_hub.workdir / LOG_FILE).stat().st_size
    result = cull(real_hub, f"--timeout={IDLE}", "--concurrency=3")
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"stop server par-\d: (?:stopped|pending)", result.stderr)) == 6, (
        result.stderr
    )
    with (real_hub.workdir / LOG_FILE).open("rb") as log:
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
    # Really concurrent, and never more than --concurrency. How close to the ceiling a
    # pass this short gets is the limiter's call: it starts at one in flight and adds one
    # per quick probe of the hub (tests/hub/test_limiter.py), so a slow machine may stop at two.
    assert 2 <= overlap <= 3, spans
