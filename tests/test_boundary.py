"""The one exit boundary (``command.boundary``): every ending logs the summary line.

Issue 22 item 4: on old main a click usage error, a config-file error and an
``IDLE_CULL_*`` typo exited 2 through click without the summary line that every other
ending has; each test here fails there.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from idle_cull.command.boundary import STATUS_OF_ERROR, exit_status_for
from idle_cull.command.cli import cli
from idle_cull.exits import ExitStatus


def last_line(text: str) -> str:
    return text.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        pytest.param(["--timeout", "soon"], {}, "is not a duration", id="bad-value"),
        pytest.param(["--no-such-option"], {}, "No such option", id="unknown-option"),
        pytest.param([], {"IDLE_CULL_TIMEOUTT": "1h"}, "IDLE_CULL_TIMEOUTT", id="unknown-variable"),
    ],
)  # fmt: skip
def test_a_usage_error_ends_with_the_summary_line(
    args: list[str], env: dict[str, str], error: str
) -> None:
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == ExitStatus.USAGE
    assert error in result.stderr
    assert " INFO summary: " in last_line(result.stderr)
    assert last_line(result.stderr).endswith(" exit=2")


def test_a_config_file_error_ends_with_the_summary_line(tmp_path: Path) -> None:
    config = tmp_path / "idle-cull.toml"
    config.write_text("# idle-cull\ntimeoutt = 3600\n")
    result = CliRunner().invoke(cli, [f"--config={config}"])
    assert result.exit_code == ExitStatus.USAGE
    assert "timeoutt" in result.stderr
    assert last_line(result.stderr).endswith(" exit=2")


def test_help_and_version_end_without_a_summary() -> None:
    for args in (["--help"], ["--version"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0
        assert "summary:" not in result.output


def test_click_errors_are_in_the_one_table() -> None:
    assert (click.ClickException, ExitStatus.USAGE) in STATUS_OF_ERROR
    assert exit_status_for(click.UsageError("x")) is ExitStatus.USAGE
