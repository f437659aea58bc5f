"""The safety rails end to end in-process: CliRunner against a `responses` hub."""

from __future__ import annotations

import fcntl
import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner

from idle_cull.command.cli import cli
from idle_cull.runner import PassControl
from tests.support.cli import run
from tests.support.emulated_hub import URL, EmulatedHub, server_json, user_json


def idle_users(count: int, prefix: str = "idle") -> list[dict[str, Any]]:
    return [
        user_json(f"{prefix}{i}", idle=7200, servers=[server_json(idle=7200)]) for i in range(count)
    ]


def test_dry_run_sends_nothing_that_changes_the_hub(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users(
        "ready", [*idle_users(2), user_json("busy", servers=[server_json(idle=5)])]
    )
    emulated_hub.serve_users("inactive", [user_json("old", idle=7200)])
    result = run("--timeout=1h", "--cull-users", "--dry-run", "--log-level=debug")
    assert result.exit_code == 0, result.stderr
    assert [c.request.method for c in emulated_hub.calls if c.request.method != "GET"] == []
    assert "DRY RUN: stop server idle0: idle 2h >= 1h (--timeout)" in result.stderr
    assert "DRY RUN: keep server busy" in result.stderr
    assert "DRY RUN: delete user old" in result.stderr
    assert "summary: DRY RUN, nothing was changed:" in result.stderr
    assert "server_dry_run=2 user_dry_run=3" in result.stderr


@pytest.mark.parametrize(
    ("args", "idle", "busy", "refused"),
    [
        pytest.param(["--max-culls=2"], 2, 0, False, id="at-max-culls"),
        pytest.param(["--max-culls=2"], 3, 0, True, id="over-max-culls"),
        pytest.param(["--max-cull-fraction=0.5"], 2, 2, False, id="at-fraction"),
        pytest.param(["--max-cull-fraction=0.5"], 3, 2, True, id="over-fraction"),
        pytest.param(
            ["--max-culls=10", "--max-cull-fraction=0.1"], 1, 1, True, id="either-cap-refuses"
        ),
    ],
)
def test_blast_radius_caps(
    emulated_hub: EmulatedHub, args: list[str], idle: int, busy: int, refused: bool
) -> None:
    busy_users = [user_json(f"busy{i}", servers=[server_json(idle=5)]) for i in range(busy)]
    emulated_hub.serve_users("ready", [*idle_users(idle), *busy_users])
    for i in range(idle):
        emulated_hub.answer_stop(f"idle{i}", status=204)
    result = run("--timeout=1h", *args)
    if refused:
        assert result.exit_code == 4, result.stderr
        assert emulated_hub.deleted_urls() == []
        assert "refusing to act" in result.stderr
        assert result.stderr.count("  would stop server idle") == idle
        assert f"server_not_attempted={idle}" in result.stderr
    else:
        assert result.exit_code == 0, result.stderr
        assert len(emulated_hub.deleted_urls()) == idle


def serve_with_date(
    emulated_hub: EmulatedHub, users: list[dict[str, Any]], hub_now: datetime
) -> None:
    """A hub whose clock (Date header) reads ``hub_now``."""
    emulated_hub.set_clock(hub_now)
    emulated_hub.serve_users("ready", users)


def test_idleness_is_measured_on_the_hubs_clock(emulated_hub: EmulatedHub) -> None:
    # Stamped two hours ago by this machine's clock; the hub's clock runs 2h behind ours,
    # so on the hub's own clock the server was active moments ago. --allow-clock-skew is
    # given: without it, a skew this large refuses the pass (tests/test_hardening.py).
    serve_with_date(emulated_hub, idle_users(1), datetime.now(timezone.utc) - timedelta(hours=2))
    result = run("--timeout=1h", "--allow-clock-skew")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == []
    assert "this machine's clock is 2h ahead of the hub's" in result.stderr


def test_local_clock_on_request(emulated_hub: EmulatedHub) -> None:
    serve_with_date(emulated_hub, idle_users(1), datetime.now(timezone.utc) - timedelta(hours=2))
    emulated_hub.answer_stop("idle0", status=204)
    result = run("--timeout=1h", "--clock=local")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == [f"{URL}/users/idle0/server"]
    assert "clock is" not in result.stderr


def test_missing_date_header_falls_back_to_local_with_a_warning(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [])
    result = run("--timeout=1h")
    assert result.exit_code == 0
    assert (
        "the hub sent no Date header; measuring idleness on this machine's clock" in result.stderr
    )


def test_recheck_skips_a_server_that_woke_up(emulated_hub: EmulatedHub) -> None:
    listed = idle_users(1)
    emulated_hub.serve_users("ready", listed)
    emulated_hub.replace(
        responses.GET, f"{URL}/users/idle0", json=user_json("idle0", servers=[server_json(idle=3)])
    )
    result = run("--timeout=1h", "--recheck-after=0")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == []
    assert re.search(
        r"stop server idle0: skipped \(re-check: idle 3[.\d]*s < 1h \(--timeout\)\)", result.stderr
    )


@pytest.mark.parametrize(
    ("fresh_status", "fresh_body", "outcome"),
    [
        pytest.param(
            404,
            {"status": 404, "message": "Not Found"},
            "already gone (the user was gone",
            id="user-gone",
        ),
        pytest.param(200, None, "already gone (the server had stopped", id="server-gone"),
        pytest.param(200, "pending", "skipped (re-check: pending stop)", id="server-stopping"),
    ],
)
def test_recheck_does_not_stop_what_changed(
    emulated_hub: EmulatedHub, fresh_status: int, fresh_body: object, outcome: str
) -> None:
    emulated_hub.serve_users("ready", idle_users(1))
    if fresh_body is None:
        fresh_body = user_json("idle0")
    elif fresh_body == "pending":
        fresh_body = user_json("idle0", servers=[server_json(idle=7200, pending="stop")])
    emulated_hub.replace(responses.GET, f"{URL}/users/idle0", json=fresh_body, status=fresh_status)
    result = run("--timeout=1h", "--recheck-after=0")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == []
    assert f"stop server idle0: {outcome}" in result.stderr


def test_recheck_keeps_a_user_who_started_a_server(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [])
    emulated_hub.serve_users("inactive", [user_json("comeback", idle=7200)])
    emulated_hub.replace(
        responses.GET,
        f"{URL}/users/comeback",
        json=user_json("comeback", servers=[server_json(idle=1)]),
    )
    result = run("--timeout=1h", "--cull-users", "--recheck-after=0")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == []
    assert "re-check: has an active server again ('default')" in result.stderr


def test_a_listing_younger_than_recheck_after_is_acted_on_without_a_re_check(
    emulated_hub: EmulatedHub,
) -> None:
    """The default: a pass that acts within 30 s of listing sends no re-check GET."""
    emulated_hub.serve_users("ready", idle_users(1))
    emulated_hub.replace(
        responses.GET, f"{URL}/users/idle0", json=user_json("idle0", servers=[server_json(idle=3)])
    )
    emulated_hub.answer_stop("idle0", status=204)
    result = run("--timeout=1h")
    assert result.exit_code == 0, result.stderr
    assert [
        c.request.url for c in emulated_hub.calls if (c.request.url or "").endswith("/users/idle0")
    ] == []
    assert emulated_hub.deleted_urls() == [f"{URL}/users/idle0/server"]


def test_negative_recheck_after_is_a_usage_error(emulated_hub: EmulatedHub) -> None:
    result = run("--timeout=1h", "--recheck-after=-5")
    assert result.exit_code == 2
    assert "recheck-after" in result.stderr
    assert len(emulated_hub.calls) == 0


def test_no_recheck_acts_on_the_listing(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", idle_users(1))
    emulated_hub.answer_stop("idle0", status=204)
    result = run("--timeout=1h", "--no-recheck")
    assert result.exit_code == 0
    assert [
        c.request.url for c in emulated_hub.calls if (c.request.url or "").endswith("/users/idle0")
    ] == []
    assert emulated_hub.deleted_urls() == [f"{URL}/users/idle0/server"]


def test_lock_held_elsewhere_exits_75_without_contacting_the_hub(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    lock = tmp_path / "idle-cull.lock"
    with lock.open("w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run("--timeout=1h", f"--lock-file={lock}")
    assert result.exit_code == 75
    assert "another idle-cull pass holds" in result.stderr
    assert len(emulated_hub.calls) == 0


def test_lock_is_released_after_the_pass(emulated_hub: EmulatedHub, tmp_path: Path) -> None:
    emulated_hub.serve_users("ready", [])
    lock = tmp_path / "idle-cull.lock"
    assert run("--timeout=1h", f"--lock-file={lock}").exit_code == 0
    assert run("--timeout=1h", f"--lock-file={lock}").exit_code == 0
    with lock.open("w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if still held


def test_unusable_lock_file_is_a_configuration_error(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    result = run("--timeout=1h", f"--lock-file={tmp_path}/missing-dir/lock")
    assert result.exit_code == 2
    assert "cannot open --lock-file" in result.stderr


def test_deadline_stops_starting_new_actions(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", idle_users(4))

    def slow_stop(_request: object) -> tuple[int, dict[str, str], str]:
        time.sleep(0.4)
        return (204, {}, "")

    for i in range(4):
        emulated_hub.add_callback(
            responses.DELETE, f"{URL}/users/idle{i}/server", callback=slow_stop
        )
    result = run("--timeout=1h", "--concurrency=1", "--deadline=0.6")
    assert result.exit_code == 1, result.stderr
    stopped = len(emulated_hub.deleted_urls())
    assert 1 <= stopped < 4
    assert "--deadline of 0.6s passed" in result.stderr
    assert f"server_not_attempted={4 - stopped}" in result.stderr


def test_pass_control_deadline_and_cancel() -> None:
    control = PassControl(deadline=0.05)
    assert not control.stopped()
    time.sleep(0.06)
    assert control.stopped()
    assert "deadline" in control.reason
    cancelled = PassControl()
    cancelled.cancel("SIGTERM received")
    cancelled.cancel("SIGINT received")
    assert cancelled.stopped()
    assert cancelled.reason == "SIGTERM received"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--max-cull-fraction=1.5"], "--max-cull-fraction", id="fraction-over-1"),
        pytest.param(["--max-culls=-1"], "--max-culls", id="negative-max-culls"),
        pytest.param(["--deadline=0"], "--deadline", id="zero-deadline"),
        pytest.param(["--clock=ntp"], "--clock", id="unknown-clock"),
    ],
)
def test_rail_options_are_validated(
    emulated_hub: EmulatedHub, args: list[str], message: str
) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(emulated_hub.calls) == 0


def test_help_lists_every_exit_status() -> None:
    text = CliRunner().invoke(cli, ["--help"]).output
    for status in ("0", "1", "2", "3", "4", "75"):
        assert f"\n    {status} " in text, status
    assert json.dumps("--dry-run")[1:-1] in text
