"""The config file's edges: a TOML error with no line to point at is shown as TOML's own
message (exit 2, no hint); shell completion (click's resilient parsing) reads no file."""

from __future__ import annotations

from pathlib import Path

from idle_cull.command.cli import cli
from tests.support.cli import run


def test_a_toml_error_at_the_end_of_the_file_is_shown_without_a_hint(tmp_path: Path) -> None:
    config = tmp_path / "idle-cull.toml"
    config.write_text("timeout =")  # no newline: TOML says "at end of document", no line
    result = run(f"--config={config}")
    assert result.exit_code == 2
    error = next(line for line in result.stderr.splitlines() if line.startswith("Error:"))
    assert error.startswith(f"Error: {config}: not valid TOML")
    assert "end of document" in error
    assert "write timeout" not in error
    assert "Traceback" not in result.stderr


def test_shell_completion_reads_no_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with cli.make_context("idle-cull", [f"--config={missing}"], resilient_parsing=True) as ctx:
        assert ctx.params["config"] is None
