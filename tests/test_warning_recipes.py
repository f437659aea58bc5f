"""The mail and webhook recipes of docs/how-to/warning-users.md fail loudly: a failed pass is
never "no notice"."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "how-to" / "warning-users.md"


def _recipes() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", PAGE.read_text(), re.S)
    recipes = [b for b in blocks if "--warn-within=15m --report=json" in b]
    assert len(recipes) == 2, "the mail and webhook recipes"
    return recipes


def _fake_bin(directory: Path, status: int, report: dict[str, object]) -> Path:
    """``idle-cull`` that says why on stderr and exits ``status``; ``mail``/``curl`` that record."""
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    (directory / "report.json").write_text(json.dumps(report))
    scripts = {
        "idle-cull": f'cat "{directory}/report.json"\necho "ERROR the hub rejected the API token" >&2\nexit {status}\n',
        "mail": f'cat > "{directory}/sent"\n',
        "curl": f'echo "$@" > "{directory}/sent"\n',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    return bin_dir


def _run(
    recipe: str, directory: Path, status: int, upcoming: list[dict[str, object]]
) -> subprocess.CompletedProcess[str]:
    bin_dir = _fake_bin(directory, status, {"exit_status": status, "upcoming": upcoming})
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "WEBHOOK_URL": "http://chat.invalid/hook"}
    script = directory / "recipe.sh"
    script.write_text(recipe)
    return subprocess.run(
        ["sh", str(script)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


UPCOMING = [
    {"label": "ada", "user": "ada", "idle_seconds": 3000, "seconds_left": 600, "rule": "--timeout"}
]


@pytest.mark.skipif(shutil.which("jq") is None, reason="the recipes use jq")
@pytest.mark.parametrize("which", [0, 1], ids=["mail", "webhook"])
def test_recipe_fails_loudly_when_the_pass_fails(tmp_path: Path, which: int) -> None:
    result = _run(_recipes()[which], tmp_path, 3, UPCOMING)
    assert result.returncode == 3
    assert "the hub rejected the API token" in result.stderr
    assert not (tmp_path / "sent").exists()


@pytest.mark.skipif(shutil.which("jq") is None, reason="the recipes use jq")
@pytest.mark.parametrize("which", [0, 1], ids=["mail", "webhook"])
def test_recipe_sends_when_there_is_something_to_say(tmp_path: Path, which: int) -> None:
    result = _run(_recipes()[which], tmp_path, 0, UPCOMING)
    assert result.returncode == 0, result.stderr
    assert "ada" in (tmp_path / "sent").read_text()


@pytest.mark.skipif(shutil.which("jq") is None, reason="the recipes use jq")
@pytest.mark.parametrize("which", [0, 1], ids=["mail", "webhook"])
def test_recipe_is_quiet_when_nothing_is_upcoming(tmp_path: Path, which: int) -> None:
    result = _run(_recipes()[which], tmp_path, 0, [])
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "sent").exists()
