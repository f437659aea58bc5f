"""The command line end to end in-process: click's CliRunner against a `responses` hub."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner

from idle_cull.command.cli import cli
from idle_cull.command.options import normalize_argument
from tests.support.cli import run
from tests.support.emulated_hub import URL, EmulatedHub, server_json, user_json


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("--cull-users", "--cull-users"),
        ("--cull_users", "--cull-users"),
        ("--no-cull-users", "--cull-users=false"),
        ("--no_cull_users", "--cull-users=false"),
        ("--cull-users=false", "--cull-users=false"),
        ("--timeout=600", "--timeout=600"),
        ("--no-such-flag", "--no-such-flag"),
        ("600", "600"),
        ("--", "--"),
    ],
)
def test_normalize_argument(arg: str, expected: str) -> None:
    assert normalize_argument(arg) == expected


@pytest.mark.parametrize(
    ("args", "deleted"),
    [
        pytest.param([], False, id="default-off"),
        pytest.param(["--cull-users"], True, id="bare"),
        pytest.param(["--cull-users=true"], True, id="equals-true"),
        pytest.param(["--cull-users", "true"], True, id="space-true"),
        pytest.param(["--cull-users=false"], False, id="equals-false"),
        pytest.param(["--cull-users", "--no-cull-users"], False, id="no-prefix-last-wins"),
        pytest.param(["--cull_users=True"], True, id="tornado-underscore"),
    ],
)
def test_boolean_flag_spellings(emulated_hub: EmulatedHub, args: list[str], deleted: bool) -> None:
    emulated_hub.serve_users("ready", [])
    emulated_hub.serve_users("inactive", [user_json("idler", idle=7200)])
    emulated_hub.answer_user_deletion("idler", status=204)
    result = run("--timeout=3600", *args)
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == ([f"{URL}/users/idler"] if deleted else [])


def test_idle_server_stopped_and_active_kept(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users(
        "ready",
        [
            user_json("idle", idle=7200, servers=[server_json(idle=7200, age=9000)]),
            user_json("busy", idle=10, servers=[server_json(idle=10, age=9000)]),
        ],
    )
    emulated_hub.answer_stop("idle", status=204)
    result = run("--timeout=1h", "--log-level=debug")
    assert result.exit_code == 0
    assert emulated_hub.deleted_urls() == [f"{URL}/users/idle/server"]
    assert "stop server idle: idle 2h >= 1h (--timeout)" in result.stderr
    assert re.search(r"keep server busy: idle 1\ds < 1h", result.stderr)
    assert "server_stopped=1" in result.stderr
    assert "server_kept=1" in result.stderr
    assert result.stdout == ""


def test_kept_servers_are_logged_at_debug_and_counted_at_info(emulated_hub: EmulatedHub) -> None:
    """A big hub keeps nearly everyone: a line each at info would be 100k lines a pass."""
    emulated_hub.serve_users(
        "ready",
        [
            user_json("idle", idle=7200, servers=[server_json(idle=7200)]),
            user_json("busy", idle=10, servers=[server_json(idle=10)]),
            user_json("spawning", idle=10, servers=[server_json(pending="spawn", ready=False)]),
        ],
    )
    emulated_hub.answer_stop("idle", status=204)
    result = run("--timeout=1h")
    assert result.exit_code == 0, result.stderr
    assert "stop server idle: idle 2h >= 1h (--timeout)" in result.stderr
    assert "skip server spawning: pending spawn" in result.stderr
    assert "server busy" not in result.stderr  # no "keep server busy: ..." line
    assert "server_kept=1" in result.stderr


def test_failed_stop_exits_1_and_others_still_run(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users(
        "ready",
        [user_json(n, idle=7200, servers=[server_json(idle=7200)]) for n in ("a", "b", "c")],
    )
    emulated_hub.answer_stop("a", status=204)
    emulated_hub.answer_stop("b", status=500, json={"status": 500, "message": "spawner blew up"})
    emulated_hub.answer_stop("c", status=202)
    result = run("--timeout=60")
    assert result.exit_code == 1
    assert len(emulated_hub.deleted_urls()) == 3
    assert "spawner blew up" in result.stderr
    assert (
        "server_stopped=1 server_pending=1 server_already_gone=0 server_failed=1" in result.stderr
    )


def test_pending_stop_keeps_the_user_this_pass(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users(
        "ready", [user_json("slow", idle=7200, servers=[server_json(idle=7200)])]
    )
    emulated_hub.serve_users("inactive", [])
    emulated_hub.answer_stop("slow", status=202)
    result = run("--timeout=60", "--cull-users")
    assert result.exit_code == 0
    assert emulated_hub.deleted_urls() == [f"{URL}/users/slow/server"]
    assert "not deleting user slow" in result.stderr
    assert "user_skipped=1" in result.stderr


def test_user_deleted_after_its_server_stopped(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users(
        "ready", [user_json("gone", idle=7200, servers=[server_json(idle=7200)])]
    )
    emulated_hub.serve_users("inactive", [])
    # The re-check before the delete sees the server gone and the activity stamp the
    # hub writes when a server stops: our own doing, not the user's. (The stop itself
    # goes by the fresh listing, unchecked: see --recheck-after.)
    emulated_hub.remove(responses.GET, f"{URL}/users/gone")
    emulated_hub.add_callback(
        responses.GET,
        f"{URL}/users/gone",
        callback=lambda _request: (200, {}, json.dumps(user_json("gone", idle=0))),
    )
    emulated_hub.answer_stop("gone", status=204)
    emulated_hub.answer_user_deletion("gone", status=204)
    result = run("--timeout=60", "--cull-users")
    assert result.exit_code == 0
    assert emulated_hub.deleted_urls() == [f"{URL}/users/gone/server", f"{URL}/users/gone"]


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        pytest.param(
            401, {"status": 401, "message": "Unauthorized"}, "rejected the API token", id="401"
        ),
        pytest.param(
            403,
            {"status": 403, "message": "requires list:users"},
            "lacks the scope 'list:users'",
            id="403",
        ),
        pytest.param(500, {"status": 500, "message": "db locked"}, "HTTP 500", id="500"),
        pytest.param(200, "<html>hello</html>", "is not JSON", id="garbage"),
    ],
)
def test_listing_failure_exits_3_and_culls_nothing(
    emulated_hub: EmulatedHub, status: int, body: object, message: str
) -> None:
    if isinstance(body, str):
        emulated_hub.get(f"{URL}/users", body=body, status=status, content_type="text/html")
    else:
        emulated_hub.get(f"{URL}/users", json=body, status=status)
    result = run("--timeout=60")
    assert result.exit_code == 3
    assert message in result.stderr
    assert "nothing was culled" in result.stderr
    assert emulated_hub.deleted_urls() == []


def test_hidden_last_activity_fails_before_acting(emulated_hub: EmulatedHub) -> None:
    record = user_json("x", servers=[server_json(idle=9000)])
    del record["last_activity"]
    emulated_hub.serve_users("ready", [record])
    result = run("--timeout=60")
    assert result.exit_code == 3
    assert "read:users:activity" in result.stderr
    assert emulated_hub.deleted_urls() == []


def test_cull_users_needs_admin_field(emulated_hub: EmulatedHub) -> None:
    record = user_json("x", idle=9000)
    del record["admin"]
    del record["created"]
    emulated_hub.serve_users("ready", [])
    emulated_hub.serve_users("inactive", [record])
    result = run("--timeout=60", "--cull-users")
    assert result.exit_code == 3
    assert "read:users" in result.stderr
    assert emulated_hub.deleted_urls() == []


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        pytest.param(["--timeout=-1"], {}, "--timeout", id="negative-timeout"),
        pytest.param(["--timeout=soon"], {}, "not a duration", id="word-timeout"),
        pytest.param(["--concurrency=0"], {}, "--concurrency", id="zero-concurrency"),
        pytest.param(
            ["--url=http://hub:8081/"], {}, "does not end in /hub/api", id="url-without-api"
        ),
        pytest.param(
            [],
            {"JUPYTERHUB_API_URL": "hub:8081/hub/api"},
            "not an http(s) URL",
            id="url-without-scheme",
        ),
        pytest.param([], {"JUPYTERHUB_API_TOKEN": ""}, "no API token", id="no-token"),
        pytest.param(
            [], {"JUPYTERHUB_API_TOKEN": "short"}, "is 5 characters long", id="short-token"
        ),
        pytest.param(
            [],
            {"JUPYTERHUB_REQUEST_TIMEOUT": "0"},
            "JUPYTERHUB_REQUEST_TIMEOUT",
            id="zero-request-timeout",
        ),
        pytest.param(
            ["--api-token-file=/nonexistent/token"], {}, "does not exist", id="missing-token-file"
        ),
        pytest.param(["--ssl-enabled"], {}, "needs an https://", id="ssl-with-http"),
        pytest.param(["--cull-users=perhaps"], {}, "not a valid boolean", id="bad-boolean"),
        pytest.param(["--api-token=abc"], {}, "No such option", id="token-never-on-argv"),
    ],
)
def test_configuration_errors_exit_2_without_contacting_the_hub(
    emulated_hub: EmulatedHub, args: list[str], env: dict[str, str], message: str
) -> None:
    result = run(*args, env=env)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(emulated_hub.calls) == 0


def test_token_file_and_env_url(tmp_path: Path, emulated_hub: EmulatedHub) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token-value\n")
    emulated_hub.serve_users("ready", [])
    result = run(env={"JUPYTERHUB_API_TOKEN": "", "JUPYTERHUB_API_TOKEN_FILE": str(token_file)})
    assert result.exit_code == 0
    assert emulated_hub.calls[-1].request.headers["Authorization"] == "token file-token-value"
    assert "file-token-value" not in result.stderr


def test_cull_every_is_accepted_and_explained(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [])
    result = run("--cull-every=600", "--timeout=3600")
    assert result.exit_code == 0
    assert result.stderr.count("--cull-every is ignored") == 1


def test_effective_settings_logged_without_token(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [])
    result = run("--timeout=90m", "--concurrency=3")
    assert "starting one pass: url=http://hub.test:8081/hub/api timeout=5400.0" in result.stderr
    assert "concurrency=3" in result.stderr


def test_every_option_is_documented() -> None:
    undocumented = [p.name for p in cli.params if not getattr(p, "help", None)]
    assert undocumented == []
    help_text = CliRunner().invoke(cli, ["--help"]).output
    for status in ("0 ", "1 ", "2 ", "3 "):
        assert f"\n    {status}" in help_text
    assert json.dumps("JUPYTERHUB_API_URL")[1:-1] in help_text
