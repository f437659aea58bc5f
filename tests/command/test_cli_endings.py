"""How the command ends outside a normal pass: Ctrl-C at a prompt is click's own
"Aborted!" and status 1; embedded with ``standalone_mode=False`` it raises instead of
exiting; and the console script's ``main`` runs the command as ``idle-cull``."""

from __future__ import annotations

import sys

import click
import pytest
from click.testing import CliRunner

from idle_cull.command.cli import IdleCullCommand, cli, main


def interrupted_at_a_prompt() -> None:
    raise click.Abort


def test_ctrl_c_at_a_prompt_says_aborted_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    command = IdleCullCommand("idle-cull", callback=interrupted_at_a_prompt)
    with pytest.raises(SystemExit) as ended:
        command.main([], prog_name="idle-cull")
    assert ended.value.code == 1
    assert capsys.readouterr().err == "Aborted!\n"


def test_embedded_without_standalone_mode_a_usage_error_is_raised_not_exited() -> None:
    result = CliRunner().invoke(cli, ["--no-such-option"], standalone_mode=False)
    assert isinstance(result.exception, click.NoSuchOption)
    assert "--no-such-option" in str(result.exception)


def test_main_runs_the_command_as_idle_cull(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["whatever", "--help"])
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 0
    assert capsys.readouterr().out.startswith("Usage: idle-cull ")
