"""Upcoming-cull warnings, JSON logs and the progress line."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from typing import Any

import pytest

from idle_cull.command.logs import JsonFormatter, ProgressAwareHandler, SecretFilter, TextFormatter
from idle_cull.command.progress import Progress
from idle_cull.models import User
from idle_cull.rules.policy import CullLimits
from tests.support.cli import run
from tests.support.emulated_hub import EmulatedHub
from tests.support.emulated_hub import server_json as live_server
from tests.support.emulated_hub import user_json as live_user
from tests.support.records import NOW, plan_of, server_json, user_json

H = 3600.0
LIMITS = CullLimits(timeout=1 * H, profile_timeouts=(("gpu", 2 * H),), exclude_users=("vip",))


def soon(
    records: list[dict[str, Any]], window: float, limits: CullLimits = LIMITS
) -> list[tuple[str, str, float, str]]:
    users = [User.from_api(r) for r in records]
    return [
        (u.user, u.server, round(u.seconds_left), u.rule)
        for u in plan_of(users, NOW, limits, warn_within=window, list_kept=False).upcoming
    ]


@pytest.mark.parametrize(
    ("records", "window", "expected"),
    [
        pytest.param(
            [user_json("a", servers=[server_json(idle=50 * 60)])],
            15 * 60,
            [("a", "", 600, "--timeout")],
            id="within-window",
        ),
        pytest.param(
            [user_json("a", servers=[server_json(idle=40 * 60)])], 15 * 60, [], id="outside-window"
        ),
        pytest.param(
            [user_json("a", servers=[server_json(idle=2 * H)])],
            15 * 60,
            [],
            id="already-being-culled",
        ),
        pytest.param(
            [user_json("a", servers=[server_json(idle=110 * 60, user_options={"profile": "gpu"})])],
            15 * 60,
            [("a", "", 600, "profile gpu")],
            id="rule-specific-limit",
        ),
        pytest.param(
            [user_json("vip", servers=[server_json(idle=55 * 60)])],
            15 * 60,
            [],
            id="excluded-never-warned",
        ),
        pytest.param(
            [user_json("p", servers=[server_json(idle=55 * 60, pending="stop")])],
            15 * 60,
            [],
            id="pending-not-warned",
        ),
        pytest.param(
            [
                user_json("b", servers=[server_json(idle=50 * 60)]),
                user_json("a", servers=[server_json("lab", idle=58 * 60)]),
            ],
            15 * 60,
            [("a", "lab", 120, "--timeout"), ("b", "", 600, "--timeout")],
            id="soonest-first",
        ),
    ],
)
def test_upcoming(
    records: list[dict[str, Any]], window: float, expected: list[tuple[str, str, float, str]]
) -> None:
    assert soon(records, window) == expected


def test_upcoming_respects_kind_flags() -> None:
    records = [user_json("a", servers=[server_json("lab", idle=55 * 60)])]
    assert soon(records, 15 * 60, CullLimits(timeout=1 * H, cull_named_servers=False)) == []


def test_warn_within_is_logged(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [live_user("ann", servers=[live_server(idle=50 * 60)])])
    result = run("--timeout=1h", "--warn-within=15m")
    assert result.exit_code == 0
    pattern = (
        r"upcoming: server ann will be culled in (10m|9m\d+s) \(idle 50m(\d+s)? of 1h, --timeout\)"
    )
    assert re.search(pattern, result.stderr)


def test_json_logs_are_one_object_per_line(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [live_user("ann", servers=[live_server(idle=60)])])
    result = run("--timeout=1h", "--log-format=json")
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    documents = [json.loads(line) for line in lines]
    assert {d["level"] for d in documents} >= {"info"}
    assert any(d["message"].startswith("summary: ") for d in documents)
    assert all(d["time"].endswith("+00:00") for d in documents)


# Characters that split a line for a reader that splits the Unicode way (str.splitlines),
# reorder what a terminal shows (bidi controls), or start a terminal escape (C1 CSI).
UNSAFE_IN_NAMES = {
    "U+202E right-to-left override": "\u202e",
    "U+2028 line separator": "\u2028",
    "U+2029 paragraph separator": "\u2029",
    "U+0085 next line (C1)": "\x85",
    "U+009B CSI (C1)": "\x9b",
    "U+0080 (C1, first)": "\x80",
    "U+009F (C1, last)": "\x9f",
    "U+200F right-to-left mark": "\u200f",
    "U+2067 right-to-left isolate": "\u2067",
    "U+061C arabic letter mark": "\u061c",
    "U+FEFF zero-width no-break space": "\ufeff",
    "U+E0001 language tag (beyond the BMP)": "\U000e0001",
    "U+001C file separator (C0)": "\x1c",
    "U+000B vertical tab (C0)": "\x0b",
}


@pytest.mark.parametrize("char", list(UNSAFE_IN_NAMES.values()), ids=list(UNSAFE_IN_NAMES))
def test_a_json_log_line_stays_one_line_whatever_a_name_holds(char: str) -> None:
    name = f"ann{char}x"
    record = logging.LogRecord(
        "idle_cull", logging.INFO, __file__, 1, "stop server %s: idle", (name,), None
    )
    line = JsonFormatter().format(record)
    assert line.splitlines() == [line]
    assert line.isprintable()  # escaped, as the text logs escape it
    assert json.loads(line)["message"] == f"stop server {name}: idle"


def test_json_logs_of_a_pass_split_into_exactly_their_lines(emulated_hub: EmulatedHub) -> None:
    """A user whose name holds every unsafe character is stopped; a reader that splits the
    output with ``str.splitlines`` gets one JSON document per record, the name intact."""
    name = "ann" + "".join(UNSAFE_IN_NAMES.values())
    emulated_hub.serve_users("ready", [live_user(name, servers=[live_server(idle=2 * H)])])
    emulated_hub.answer_stop(name)
    result = run("--timeout=1h", "--log-format=json")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == result.stderr.count("\n")  # no line split anywhere but at its end
    messages = [json.loads(line)["message"] for line in lines]
    assert f"stop server {name}: idle 2h >= 1h (--timeout)" in messages
    assert f"stop server {name}: stopped" in messages


def test_json_formatter_keeps_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "failed here"
    assert "ValueError: boom" in document["exception"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_only_on_a_terminal() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress.for_terminal(stream)
        progress.update("listing users: 50", force=True)
        progress.update("listing users: 100", force=True)
        progress.close()
    assert "\rlisting users: 100" in terminal.getvalue().replace("\x1b[K", "")
    assert terminal.getvalue().endswith("\r\x1b[K")  # the line is wiped at the end
    assert pipe.getvalue() == ""


def test_log_records_are_printed_above_the_progress_line() -> None:
    terminal = Terminal()
    progress = Progress(terminal, enabled=True)
    handler = ProgressAwareHandler(progress)
    handler.setStream(terminal)
    handler.setFormatter(logging.Formatter("%(message)s"))
    progress.update("stop server: 1/3", force=True)
    handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "stopped ann", None, None))
    text = terminal.getvalue()
    # wipe the progress line, write the record on its own line, then draw progress again
    assert text.endswith("\r\x1b[Kstopped ann\n\r\x1b[Kstop server: 1/3")


def test_non_interactive_runs_have_no_progress(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [live_user("ann", servers=[live_server(idle=2 * H)])])
    emulated_hub.answer_stop("ann", status=204)
    result = run("--timeout=1h")
    assert result.exit_code == 0
    assert "\r" not in result.stderr


def test_secret_filter_masks_the_token_in_any_record() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter("%(message)s"))
    handler.addFilter(SecretFilter("s3cret-token"))
    logger = logging.getLogger("test.secret")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("gateway said: invalid credentials 'token %s'", "s3cret-token")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "gateway said: invalid credentials 'token ***'\n"
