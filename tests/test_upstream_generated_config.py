"""Upstream 2.0.0's own ``--generate-config`` output, every setting uncommented, is read.

Issue 23.3: an operator migrating from jupyterhub-idle-culler starts from the file
upstream generates. Every setting in it must give a line (mapped to an option, or
ignored with the reason), nothing may be refused, and a dry run must exit 0. The file
is checked twice: as committed in tests/fixtures/ (its header says how it was made), and
as generated live by the installed upstream package (``jupyterhub-idle-culler==2.0.0``
is in the test extra), so a new upstream or traitlets release cannot drift unnoticed.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from idle_cull.command.upstream_config import UPSTREAM_SETTINGS
from tests.support.cli import run
from tests.support.emulated_hub import EmulatedHub, server_json, user_json

FIXTURE = Path(__file__).parent / "fixtures" / "upstream-2.0.0-generated-config.py.txt"
_SETTING = re.compile(r"^c\.(\w+)\.(\w+) = ", re.M)


def _uncommented(generated: str) -> str:
    """Every setting line of upstream's generated file, uncommented (sed 's/^# c\\./c./')."""
    return re.sub(r"^# (c\.)", r"\1", generated, flags=re.M)


def _settings(text: str) -> list[tuple[int, str, str]]:
    """``(line, section, name)`` of every setting the file assigns."""
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2))
        for match in _SETTING.finditer(text)
    ]


def _check_read_in_full(emulated_hub: EmulatedHub, path: Path, *args: str) -> None:
    """A dry run with the file exits 0, with a line for each setting and no refusal."""
    emulated_hub.serve_users(
        "ready",
        [
            user_json("ada", servers=[server_json(idle=7200)]),  # past upstream's 600 s
            user_json("bob", servers=[server_json(idle=60)]),
        ],
    )
    result = run("--dry-run", "--log-level=info", *args)
    assert result.exit_code == 0, result.stderr
    assert "Error" not in result.stderr
    read_line = next(line for line in result.stderr.splitlines() if f" from {path} " in line)
    mapped = read_line.split("): ", 1)[1].split(", ")
    settings = _settings(path.read_text())
    assert len(settings) >= 28  # 6 Application traits, 22 IdleCuller traits (traitlets 5.16)
    for line, section, name in settings:
        ignored = f"{path}:{line}: c.{section}.{name} ignored: "
        assert UPSTREAM_SETTINGS[name].option in mapped or ignored in result.stderr, line
    # one line each: a setting is used (named in the "read" line) or ignored, not both
    assert len(mapped) + result.stderr.count(" ignored: ") == len(settings)
    # the file's values are the ones used: upstream's defaults (600 s), as upstream would
    assert " timeout=600.0 " in result.stderr
    assert "DRY RUN: stop server ada" in result.stderr
    assert "stop server bob" not in result.stderr


def test_the_committed_generated_file_is_read_in_full(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    path = tmp_path / "idle_culler_config.py"
    path.write_text(FIXTURE.read_text())
    _check_read_in_full(emulated_hub, path, f"--config={path}")


def test_the_installed_upstream_s_own_output_is_read_in_full(
    emulated_hub: EmulatedHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generated now by the installed jupyterhub-idle-culler, and read implicitly from the
    working directory, as upstream reads it."""
    assert importlib.util.find_spec("jupyterhub_idle_culler") is not None, (
        "jupyterhub-idle-culler 2.0.0 is not installed: pip install -e '.[test]'"
    )
    generated = subprocess.run(
        [sys.executable, "-m", "jupyterhub_idle_culler", "--generate-config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    path = Path("idle_culler_config.py")
    (tmp_path / path).write_text(_uncommented(generated))
    monkeypatch.chdir(tmp_path)
    committed = [(section, name) for _, section, name in _settings(FIXTURE.read_text())]
    live = [(section, name) for _, section, name in _settings(path.read_text())]
    assert live == committed, (
        "upstream's output changed: regenerate the fixture (its header says how)"
    )
    _check_read_in_full(emulated_hub, path)
