"""Counts in messages read as English: ``1 server``, never ``1 servers`` (issue 23.7)."""

from __future__ import annotations

import pytest

from idle_cull.wording import counted
from tests.support.cli import run
from tests.support.emulated_hub import EmulatedHub, server_json, user_json


@pytest.mark.parametrize(
    ("count", "noun", "plural", "said"),
    [
        pytest.param(0, "server", None, "0 servers", id="none"),
        pytest.param(1, "server", None, "1 server", id="one"),
        pytest.param(2, "user record", None, "2 user records", id="phrase"),
        pytest.param(1, "user record", None, "1 user record", id="phrase-one"),
        pytest.param(3, "body", "bodies", "3 bodies", id="own-plural"),
    ],
)
def test_counted(count: int, noun: str, plural: str | None, said: str) -> None:
    assert counted(count, noun, plural) == said


@pytest.mark.parametrize(
    ("servers", "said"),
    [
        pytest.param(1, ["listed 1 user record (", "; 1 server would be stopped, 0 users"], id="1"),
        pytest.param(
            2, ["listed 2 user records (", "; 2 servers would be stopped, 0 users"], id="2"
        ),
    ],
)
def test_the_log_counts_in_english(
    emulated_hub: EmulatedHub, servers: int, said: list[str]
) -> None:
    users = [user_json(f"u{i}", servers=[server_json(idle=7200)]) for i in range(servers)]
    emulated_hub.serve_users("ready", users)
    result = run("--timeout=1h", "--dry-run")
    assert result.exit_code == 0, result.stderr
    for phrase in said:
        assert phrase in result.stderr
