"""Upcoming-cull warnings, JSON logs and the progress line, seen from a whole pass."""

from __future__ import annotations

import json
import logging
import re

import pytest

from idle_cull.command.logs import JsonFormatter
from tests.support.cli import run
from tests.support.emulated_hub import EmulatedHub
from tests.support.emulated_hub import server_json as live_server
from tests.support.emulated_hub import user_json as live_user

H = 3600.0


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


def test_non_interactive_runs_have_no_progress(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [live_user("ann", servers=[live_server(idle=2 * H)])])
    emulated_hub.answer_stop("ann", status=204)
    result = run("--timeout=1h")
    assert result.exit_code == 0
    assert "\r" not in result.stderr
