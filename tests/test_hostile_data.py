"""Hostile records from the hub: odd names, odd timestamps, missing or null fields, huge
and repeated pages. Each record is either handled correctly or rejected with a reason that
names it, and the rest of the pass goes on.

In-process: the CLI through click's CliRunner against a small stateful hub on `responses`
(``tests.support.emulated_hub.StatefulUsers``). It routes paths the way JupyterHub does (tornado matches the raw,
percent-encoded path, then unquotes each segment), so a name quoted wrongly addresses some
other resource and shows up as a wrong call, and unregistered URLs are refused.
The real-hub side of the same story (names the hub accepts, records rewritten on the wire
by the fault proxy) is in tests/integration/test_faults.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.emulated_hub import TOKEN, URL, EmulatedHub, StatefulUsers
from tests.support.pagination import users_page
from tests.support.records import unusable_token_files

HOUR = 3600


def now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(seconds_ago: float | None) -> str | None:
    """A hub-style timestamp (``...Z``) ``seconds_ago`` before now (negative: the future)."""
    if seconds_ago is None:
        return None
    return (now() - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def server(
    name: str = "",
    *,
    last_activity: object = "idle",
    started: object = "idle",
    ready: object = True,
    pending: str | None = None,
) -> dict[str, Any]:
    """A server model; ``"idle"`` stamps 2 h ago, ``"fresh"`` 10 s ago, anything else as is."""
    return {
        "name": name,
        "ready": ready,
        "pending": pending,
        "started": _when(started),
        "last_activity": _when(last_activity),
        "url": f"/user/x/{name}",
        "user_options": {},
        "stopped": False,
    }


def user(
    name: str,
    *servers: dict[str, Any],
    last_activity: object = "idle",
    created: object = "idle",
    admin: object = False,
    groups: object = (),
) -> dict[str, Any]:
    return {
        "kind": "user",
        "name": name,
        "admin": admin,
        "groups": list(groups) if isinstance(groups, tuple) else groups,
        "created": _when(created),
        "last_activity": _when(last_activity),
        "servers": {s["name"]: s for s in servers},
    }


def _when(value: object) -> object:
    if value == "idle":
        return stamp(2 * HOUR)
    if value == "fresh":
        return stamp(10)
    return value


@pytest.fixture
def users(emulated_hub: EmulatedHub) -> StatefulUsers:
    return StatefulUsers(emulated_hub)


def rejected(stderr: str) -> set[str]:
    """Users named in ``ignoring a user record: user '<name>': ...`` lines."""
    return set(re.findall(r"ignoring a user record: user '([^']*)'", stderr))


# --- names --------------------------------------------------------------------------------

# Each would address another resource if sent unquoted: "what?" -> user "what" with a query,
# "pct%61x" -> "pctax" once the hub unquotes it, "a/b" -> user "a"'s subresource "b".
HOSTILE_USER_NAMES = [
    "a/b",
    "a/../b",
    "pct%61x",
    "100%2F",
    "what?",
    "what?x=1",
    "#tag",
    "first last",
    "ünïcødé",
    "日本語",
    "a+b",
    "..x",
    "x..",
    "semi;colon=1",
]
HOSTILE_SERVER_NAMES = ["x/y", "../server", "%2E%2E", "q?remove=1", "#frag", "sp ace", "ünï", ".x"]


def test_hostile_user_names_are_addressed_exactly(users: StatefulUsers) -> None:
    neighbours = ["a", "b", "pctax", "what", "tag", "first"]
    users.listing(
        "ready",
        [user(n, server()) for n in HOSTILE_USER_NAMES]
        + [user(n, server(last_activity="fresh"), last_activity="fresh") for n in neighbours],
    )
    users.listing("inactive", [])
    result = run("--timeout=1h", "--cull-users")
    assert result.exit_code == 0, result.stderr
    assert users.unrouted == []
    assert users.stopped() == {(n, "") for n in HOSTILE_USER_NAMES}
    assert users.deleted() == set(HOSTILE_USER_NAMES)
    assert set(users.records) == set(neighbours)  # the active look-alikes are untouched
    for name in HOSTILE_USER_NAMES:
        assert f"stop server {name}: idle 2h" in result.stderr


def test_hostile_server_names_are_addressed_exactly(users: StatefulUsers) -> None:
    named = [server(n) for n in HOSTILE_SERVER_NAMES]
    users.listing(
        "ready", [user("alice", server(last_activity="fresh"), *named, last_activity="fresh")]
    )
    result = run("--timeout=1h", "--remove-named-servers")
    assert result.exit_code == 0, result.stderr
    assert users.unrouted == []
    assert users.stopped() == {("alice", n) for n in HOSTILE_SERVER_NAMES}
    assert "" in users.records["alice"]["servers"]  # the active default server stays


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_segment_names_fail_alone_with_a_reason(users: StatefulUsers, name: str) -> None:
    """``/users/../server`` would be normalized to ``/users/server``: never sent."""
    users.listing("ready", [user(name, server()), user("plain", server())])
    result = run("--timeout=1h")
    assert result.exit_code == 1
    assert users.stopped() == {("plain", "")}
    assert "relative path segment" in result.stderr
    assert "server_failed=1" in result.stderr


def test_control_characters_in_names_cannot_forge_log_lines(users: StatefulUsers) -> None:
    """JupyterHub 6.1.1 accepts such names (POST /users with "line\\nbreak" answers 201)."""
    forged = "2026-01-01 00:00:00,000 INFO summary: users_listed=0 exit=0"
    name = f"mallory\n{forged}"
    users.listing("ready", [user(name, server()), user("plain", server())])
    result = run("--timeout=1h")
    assert users.stopped() == {(name, ""), ("plain", "")}  # still addressed by its real name
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert not any(line.startswith(forged) for line in lines)
    summaries = [line for line in lines if re.match(r"[\d-]+ [\d:,]+ INFO summary: ", line)]
    assert len(summaries) == 1, result.stderr


# --- timestamps ---------------------------------------------------------------------------


def _shifted(seconds_ago: float, offset_hours: float, *, naive: bool = False) -> str:
    """The same instant written in another zone (or naive UTC), as older hubs or proxies do."""
    moment = now() - timedelta(seconds=seconds_ago)
    if naive:
        return moment.replace(tzinfo=None).isoformat()
    return moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


# (user, server last_activity, expected): "stop", "keep" or "reject"
TIMESTAMP_CASES: list[tuple[str, Callable[[], object], str]] = [
    ("naive-idle", lambda: _shifted(2 * HOUR, 0, naive=True), "stop"),
    ("naive-fresh", lambda: _shifted(10, 0, naive=True), "keep"),
    # read without its offset, -08:00 would look 8 h old and +05:30 5.5 h in the future
    ("west-offset-fresh", lambda: _shifted(10, -8), "keep"),
    ("east-offset-idle", lambda: _shifted(2 * HOUR, 5.5), "stop"),
    ("zulu-idle", lambda: stamp(2 * HOUR), "stop"),
    ("date-only-long-ago", lambda: "2020-01-01", "stop"),
    ("future", lambda: stamp(-86400), "keep"),
    ("far-future", lambda: "9999-12-31T23:59:59Z", "keep"),
    ("garbage-word", lambda: "yesterday", "reject"),
    ("garbage-empty", lambda: "", "reject"),
    ("garbage-number", lambda: 1700000000, "reject"),
    ("garbage-list", lambda: ["2026-01-01"], "reject"),
    ("bad-offset", lambda: "2026-01-01T00:00:00+25:00", "reject"),
    ("out-of-range-high", lambda: "9999-12-31T23:30:00-01:00", "reject"),
    ("out-of-range-low", lambda: "0001-01-01T00:30:00+01:00", "reject"),
]


def test_timestamps_of_every_shape(users: StatefulUsers) -> None:
    records = [
        user(name, server(last_activity=make(), started=make()), last_activity=make())
        for name, make, _ in TIMESTAMP_CASES
    ]
    users.listing("ready", records)
    result = run("--timeout=1h", "--log-level=debug")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    expected = {name: outcome for name, _, outcome in TIMESTAMP_CASES}
    assert users.stopped() == {(n, "") for n, o in expected.items() if o == "stop"}
    assert rejected(result.stderr) == {n for n, o in expected.items() if o == "reject"}
    assert f"rejected_records={sum(o == 'reject' for o in expected.values())}" in result.stderr
    assert "keep server future: last activity is in the future" in result.stderr
    assert "is out of range in UTC" in result.stderr


USER_TIMESTAMP_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("u-naive-idle", {"last_activity": _shifted(2 * HOUR, 0, naive=True)}, "delete"),
    ("u-west-offset-fresh", {"last_activity": _shifted(10, -8)}, "keep"),
    ("u-future", {"last_activity": stamp(-86400)}, "keep"),
    ("u-created-only-old", {"last_activity": None, "created": stamp(2 * HOUR)}, "delete"),
    ("u-no-timestamps", {"last_activity": None, "created": None}, "keep"),
    ("u-garbage-created", {"created": "not a date"}, "reject"),
    ("u-garbage-activity", {"last_activity": {"when": "now"}}, "reject"),
]


def test_user_timestamps_of_every_shape(users: StatefulUsers) -> None:
    records = [{**user(name), **fields} for name, fields, _ in USER_TIMESTAMP_CASES]
    users.listing("ready", [])
    users.listing("inactive", records)
    result = run("--timeout=1h", "--cull-users", "--log-level=debug")
    assert result.exit_code == 0, result.stderr
    expected = {name: outcome for name, _, outcome in USER_TIMESTAMP_CASES}
    assert users.deleted() == {n for n, o in expected.items() if o == "delete"}
    assert rejected(result.stderr) == {n for n, o in expected.items() if o == "reject"}
    assert "keep user u-no-timestamps: no last_activity and no creation time" in result.stderr


# --- missing and null fields --------------------------------------------------------------


def _without(record: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in keys}


def _server_without(*keys: str, **fields: Any) -> dict[str, Any]:
    return _without(server(**fields), *keys)


# (listing, record, expected) with --cull-users --cull-admin-users=false --timeout=1h:
# "stop" (its server), "delete" (the user), "keep" (nothing happens) or "reject".
FIELD_CASES: list[tuple[str, Any, str]] = [
    ("ready", user("srv-ready-null", server(ready=None)), "keep"),
    ("ready", user("srv-ready-string", server(ready="false")), "reject"),
    ("ready", user("srv-ready-number", server(ready=1)), "reject"),
    ("ready", user("srv-no-ready-no-url", _server_without("ready", "url")), "keep"),
    (
        "ready",
        user("srv-no-ready-with-url", _server_without("ready"), last_activity="fresh"),
        "stop",
    ),
    ("ready", user("srv-pending-spawn", server(ready=False, pending="spawn")), "keep"),
    ("ready", user("srv-pending-stop", server(pending="stop")), "keep"),
    (
        "ready",
        user("srv-activity-null-old-start", server(last_activity=None), last_activity="fresh"),
        "stop",
    ),
    ("ready", user("srv-no-timestamps", server(last_activity=None, started=None)), "keep"),
    ("ready", {**user("srv-entry-null"), "servers": {"": None}}, "reject"),
    ("ready", {**user("srv-servers-list"), "servers": [server()]}, "reject"),
    ("inactive", {**user("u-servers-null"), "servers": None}, "reject"),
    ("inactive", user("u-admin-null", admin=None), "keep"),
    ("inactive", user("u-admin-string", admin="false"), "reject"),
    ("inactive", user("u-admin-true", admin=True), "keep"),
    ("inactive", user("u-groups-null", groups=None), "reject"),
    ("inactive", user("u-groups-string", groups="staff"), "reject"),
    ("inactive", user("u-plain-idle"), "delete"),
    ("inactive", {**user("x"), "name": None}, "reject-nameless"),
    ("inactive", {**user("x"), "name": 42}, "reject-nameless"),
    ("inactive", _without(user("x"), "name"), "reject-nameless"),
    ("inactive", None, "reject-nameless"),
    ("inactive", "alice", "reject-nameless"),
    ("inactive", ["alice"], "reject-nameless"),
]


def test_missing_and_null_fields(users: StatefulUsers) -> None:
    for state in ("ready", "inactive"):
        users.listing(state, [record for listed, record, _ in FIELD_CASES if listed == state])
    result = run("--timeout=1h", "--cull-users", "--cull-admin-users=false", "--log-level=debug")
    assert result.exit_code == 0, result.stderr
    named = {
        r["name"]: outcome
        for _, r, outcome in FIELD_CASES
        if isinstance(r, dict) and isinstance(r.get("name"), str)
    }
    assert users.stopped() == {(n, "") for n, o in named.items() if o == "stop"}
    assert users.deleted() == {n for n, o in named.items() if o == "delete"}
    assert rejected(result.stderr) == {n for n, o in named.items() if o == "reject"}
    nameless = sum(o == "reject-nameless" for _, _, o in FIELD_CASES)
    assert result.stderr.count("ignoring a user record: user record") == nameless
    assert (
        f"rejected_records={sum(o.startswith('reject') for _, _, o in FIELD_CASES)}"
        in result.stderr
    )
    # the reasons say what is wrong with the record
    assert "ready is not true or false: 'false'" in result.stderr
    assert "servers is null" in result.stderr
    assert "admin is not true or false" in result.stderr
    assert "keep user u-admin-null: cannot tell whether admin" in result.stderr


def test_null_groups_cannot_switch_off_an_exclusion(users: StatefulUsers) -> None:
    users.listing("ready", [user("staffer", server(), groups=None), user("other", server())])
    result = run("--timeout=1h", "--exclude-group=staff")
    assert result.exit_code == 0, result.stderr
    assert users.stopped() == {("other", "")}
    assert rejected(result.stderr) == {"staffer"}


def test_one_record_hiding_last_activity_stops_the_whole_pass(users: StatefulUsers) -> None:
    """A field a rule needs and the token cannot read is a scope problem: exit 3, not a guess."""
    users.listing(
        "ready", [user("fine", server()), _without(user("hidden", server()), "last_activity")]
    )
    result = run("--timeout=1h")
    assert result.exit_code == 3
    assert "read:users:activity" in result.stderr
    assert users.actions == []


# --- repeated and huge pages --------------------------------------------------------------


def test_identical_duplicate_across_pages_is_acted_on_once(users: StatefulUsers) -> None:
    twice = user("twice", server())
    users.listing("ready", [twice, user("a", server()), user("b", server()), twice], page_size=2)
    result = run("--timeout=1h", "--api-page-size=2")
    assert result.exit_code == 0, result.stderr
    assert users.actions.count(("DELETE", "twice", "")) == 1
    assert users.stopped() == {("twice", ""), ("a", ""), ("b", "")}
    assert "user 'twice' listed twice" in result.stderr


@pytest.mark.parametrize("recheck", ["true", "false"])
def test_conflicting_duplicate_never_stops_a_server_in_use(
    users: StatefulUsers, recheck: str
) -> None:
    """The hub's list shifted while paging: page 1 saw the server idle, page 2 sees it in use.
    The later copy decides, so even without the re-check the server in use stays."""
    stale = user("shifty", server())
    current = user("shifty", server(last_activity="fresh"), last_activity="fresh")
    users.listing("ready", [stale, user("a", server()), user("b", server()), current], page_size=2)
    users.records["shifty"] = current  # what the hub says now
    result = run("--timeout=1h", "--api-page-size=2", f"--recheck={recheck}")
    assert result.exit_code == 0, result.stderr
    assert ("shifty", "") not in users.stopped()


def test_a_huge_page_is_handled(users: StatefulUsers) -> None:
    count = 10_000  # 50 times the hub's largest page (api_page_max_limit 200)
    active = [
        user(f"u{i:05d}", server(last_activity="fresh"), last_activity="fresh")
        for i in range(count)
    ]
    idle = [user(f"idle-{i}", server()) for i in range(5)]
    users.listing("ready", active[:5_000] + idle + active[5_000:], page_size=count + 5)
    started = time.monotonic()
    result = run("--timeout=1h")
    seconds = time.monotonic() - started
    assert result.exit_code == 0, result.stderr
    assert f"users_listed={count + 5}" in result.stderr
    assert users.stopped() == {(u["name"], "") for u in idle}
    assert seconds < 60, f"a pass over {count} users took {seconds:.0f}s"


def test_json_with_a_text_content_type_keeps_non_ascii_names(
    emulated_hub: EmulatedHub, users: StatefulUsers
) -> None:
    """JSON is UTF-8 whatever the Content-Type says (RFC 8259); a proxy that relabels the
    hub's answers as text/html must not turn user "ünï" into "Ã¼nÃ¯"."""
    listed = [user("ünï", server()), user("日本", server())]
    body = users_page(listed, offset=0, limit=50, url=URL)
    users.records.update({r["name"]: r for r in listed})
    emulated_hub.get(
        f"{URL}/users",
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type="text/html",
    )
    result = run("--timeout=1h")
    assert result.exit_code == 0, result.stderr
    assert users.stopped() == {("ünï", ""), ("日本", "")}


# --- bad input from the operator ----------------------------------------------------------
# What tests/command/test_cli.py does not cover already. Each: exit 2, one error line, not a single
# request (``responses`` records even refused ones), and the token in no output.


@pytest.fixture
def token_files(tmp_path: Path) -> dict[str, Path]:
    """Token files that cannot be used (see ``tests.support.records.unusable_token_files``)."""
    return unusable_token_files(tmp_path, TOKEN, f"{TOKEN}-second")


OPERATOR_ERRORS = [
    # (id, arguments, environment, message)
    ("wrong-scheme", ["--url=ftp://hub.test:8081/hub/api"], {}, "is not an http(s) URL"),
    ("url-ends-in-hub", ["--url=http://hub.test:8081/hub"], {}, "does not end in /hub/api"),
    ("url-typo", ["--url=http://hub.test:8081/hub/apii"], {}, "does not end in /hub/api"),
    ("blank-token", [], {"JUPYTERHUB_API_TOKEN": "   "}, "no API token"),
    ("token-with-space", [], {"JUPYTERHUB_API_TOKEN": "abc def"}, "contains spaces"),
    ("token-non-ascii", [], {"JUPYTERHUB_API_TOKEN": "t\u00f6ken"}, "non-ASCII"),
    ("negative-max-age", ["--max-age=-1h"], {}, "--max-age"),
    ("max-age-word", ["--max-age=forever"], {}, "not a duration"),
    ("timeout-nan", ["--timeout=nan"], {}, "--timeout"),
    ("timeout-infinite", ["--timeout=inf"], {}, "--timeout"),
    ("request-timeout-word", [], {"JUPYTERHUB_REQUEST_TIMEOUT": "abc"}, "not a duration"),
    ("request-timeout-negative", [], {"JUPYTERHUB_REQUEST_TIMEOUT": "-2"}, "--request-timeout"),
    ("concurrency-word", ["--concurrency=many"], {}, "--concurrency"),
    ("concurrency-negative", ["--concurrency=-1"], {}, "--concurrency"),
    ("page-size-negative", ["--api-page-size=-3"], {}, "--api-page-size"),
    ("deadline-zero", ["--deadline=0"], {}, "--deadline"),
    ("cull-fraction-above-one", ["--max-cull-fraction=2"], {}, "--max-cull-fraction"),
    (
        "same-group-twice",
        ["--group-timeout=gpu=1h", "--group-timeout=gpu=2h"],
        {},
        "more than once",
    ),
    (
        "ssl-without-certificates",
        [
            "--ssl-enabled",
            "--url=https://hub.test:8081/hub/api",
            "--internal-certs-location=/nonexistent",
        ],
        {},
        "missing",
    ),
    ("lock-file-in-missing-directory", ["--lock-file=/nonexistent/dir/lock"], {}, "--lock-file"),
    ("token-file-directory", ["--api-token-file=@directory"], {}, "directory"),
    ("token-file-through-a-file", ["--api-token-file=@through-a-file"], {}, "Not a directory"),
    ("token-file-not-utf-8", ["--api-token-file=@not-utf-8"], {}, "cannot read token file"),
    ("token-file-dangling-symlink", ["--api-token-file=@dangling-symlink"], {}, "does not exist"),
    ("token-file-blank", ["--api-token-file=@empty"], {}, "is empty"),
    ("token-file-two-tokens", ["--api-token-file=@two-tokens"], {}, "line breaks"),
]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [c[1:] for c in OPERATOR_ERRORS],
    ids=[c[0] for c in OPERATOR_ERRORS],
)
def test_operator_errors_exit_2_in_one_line_and_send_nothing(
    emulated_hub: EmulatedHub,
    token_files: dict[str, Path],
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    resolved = [
        f"{a.split('=@')[0]}={token_files[a.split('=@')[1]]}" if "=@" in a else a for a in args
    ]
    result = run(*resolved, env=env)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert len(emulated_hub.calls) == 0
    errors = [
        line
        for line in result.stderr.splitlines()
        if " ERROR " in line or line.startswith("Error:")
    ]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{TOKEN}-second" not in result.stderr
