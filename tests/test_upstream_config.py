"""Upstream 2.0's idle_culler_config.py: read without running it, refused where it is code."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import responses
from click.testing import CliRunner

from idle_cull.cli import cli
from idle_cull.config_file import defaults_from, read_config_file
from idle_cull.errors import ConfigError
from idle_cull.upstream_config import UPSTREAM_SETTINGS, read_upstream_config
from tests.support.emulated_hub import TOKEN, URL, EmulatedHub, server_json, user_json

# Every configurable trait of jupyterhub-idle-culler 2.0.0's IdleCuller, read from the
# installed package's class (its own traits and the ones traitlets' Application adds).
UPSTREAM_2_0_TRAITS = {
    "api_page_size", "concurrency", "config_file", "cull_admin_users", "cull_arbiter_hook",
    "cull_default_servers", "cull_every", "cull_named_servers", "cull_users",
    "generate_config", "internal_certs_location", "max_age", "remove_named_servers",
    "ssl_enabled", "timeout", "url", "log_level", "log_format", "log_datefmt",
    "show_config", "show_config_json",
}  # fmt: skip

EVERY_SETTING = f'''\
"""Written as upstream's generated files are."""
c = get_config()  # noqa

# Configuration file for jupyterhub-idle-culler.
c.IdleCuller.api_page_size = 25
c.IdleCuller.concurrency = 3
c.IdleCuller.cull_admin_users = False
c.IdleCuller.cull_default_servers = False
c.IdleCuller.cull_every = 300
c.IdleCuller.cull_named_servers = False
c.IdleCuller.cull_users = True
c.IdleCuller.internal_certs_location = "/srv/internal-ssl"
c.IdleCuller.max_age = 86400
c.IdleCuller.remove_named_servers = True
c.IdleCuller.ssl_enabled = False
c.IdleCuller.timeout = 36000
c.IdleCuller.url = "{URL}"
c.IdleCuller.log_level = "DEBUG"
'''


def test_every_upstream_trait_is_mapped_or_refused() -> None:
    assert set(UPSTREAM_SETTINGS) == UPSTREAM_2_0_TRAITS


def test_every_upstream_setting_maps_to_its_option(tmp_path: Path) -> None:
    path = tmp_path / "idle_culler_config.py"
    path.write_text(EVERY_SETTING)
    kind, values = read_config_file(path)
    assert kind == "upstream"
    mapped = {s.option for s in UPSTREAM_SETTINGS.values() if s.option is not None}
    assert set(values) == mapped
    defaults = defaults_from(click.Context(cli), values, str(path))
    assert defaults == {
        "api_page_size": 25,
        "concurrency": 3,
        "cull_admin_users": False,
        "cull_default_servers": False,
        "cull_every": 300.0,
        "cull_named_servers": False,
        "cull_users": True,
        "internal_certs_location": Path("/srv/internal-ssl"),
        "max_age": 86400.0,
        "remove_named_servers": True,
        "ssl_enabled": False,
        "timeout": 36000.0,
        "url": URL,
        "log_level": "debug",
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param(
            "c.IdleCuller.cull_arbiter_hook = my_hook",
            r":3: c.IdleCuller.cull_arbiter_hook is not supported: .*--profile-timeout",
            id="hook",
        ),
        pytest.param(
            "def my_hook(inactive, limit, server):\n    return True",
            r":3: functions are not allowed.*--profile-timeout, --group-timeout, --server-timeout",
            id="function",
        ),
        pytest.param("import os", r":3: imports are not allowed", id="import"),
        pytest.param("from os import environ", r":3: imports are not allowed", id="from-import"),
        pytest.param(
            "c.IdleCuller.timeout = 600 * 60",
            r":3: c.IdleCuller.timeout must be a plain value",
            id="expression",
        ),
        pytest.param(
            "c.IdleCuller.timeout = int('600')",
            r":3: c.IdleCuller.timeout must be a plain value",
            id="call",
        ),
        pytest.param(
            "c.IdleCuller.timeout = True",
            r":3: c.IdleCuller.timeout must be a whole number",
            id="bool-for-int",
        ),
        pytest.param(
            "c.IdleCuller.cull_users = 'yes'",
            r":3: c.IdleCuller.cull_users must be True or False",
            id="string-for-bool",
        ),
        pytest.param(
            "c.IdleCuller.timout = 600",
            r":3: c.IdleCuller.timout is not an upstream setting; did you mean c.IdleCuller.timeout\?",
            id="typo",
        ),
        pytest.param(
            "c.JupyterHub.timeout = 600",
            r":3: c.JupyterHub.timeout is not an idle culler setting",
            id="other-class",
        ),
        pytest.param(
            "c.IdleCuller.timeout += 1",
            r":3: only c.IdleCuller.<name> = <value> lines",
            id="augmented",
        ),
        pytest.param(
            "if True:\n    c.IdleCuller.timeout = 1",
            r":3: only c.IdleCuller.<name> = <value> lines",
            id="if",
        ),
        pytest.param(
            "x = c.IdleCuller.timeout = 1",
            r":3: only c.IdleCuller.<name> = <value> lines",
            id="chained",
        ),
        pytest.param(
            "c.IdleCuller.config_file = 'other.py'", r":3: .*pass --config FILE", id="config-file"
        ),
        pytest.param(
            "c.IdleCuller.log_level = 'CRITICAL'",
            r":3: c.IdleCuller.log_level 'CRITICAL' is not one of",
            id="log-level",
        ),
        pytest.param("c.IdleCuller.timeout = (", r":3: not valid Python", id="syntax"),
    ],
)
def test_anything_but_literal_settings_is_refused(line: str, message: str) -> None:
    text = f"c = get_config()\nc.IdleCuller.timeout = 600\n{line}\n"
    with pytest.raises(ConfigError, match=r"^idle_culler_config\.py" + message):
        read_upstream_config(text, "idle_culler_config.py")


def test_log_levels_by_number_and_name() -> None:
    text = "c.IdleCuller.log_level = 30\n"
    assert read_upstream_config(text, "f.py") == {"log-level": "warning"}
    assert read_upstream_config("c.IdleCuller.log_level = 'warn'\n", "f.py") == {
        "log-level": "warning"
    }


def test_url_none_leaves_the_environment_in_charge() -> None:
    assert read_upstream_config("c.IdleCuller.url = None\n", "f.py") == {}


def test_later_assignment_wins_as_when_upstream_runs_the_file() -> None:
    text = "c.IdleCuller.timeout = 600\nc.IdleCuller.timeout = 3600\n"
    assert read_upstream_config(text, "f.py") == {"timeout": 3600}


def _idle_hub(emulated_hub: EmulatedHub) -> None:
    """One user idle for 2 hours: kept with timeout=36000, stopped with the default 600."""
    emulated_hub.serve_users("ready", [user_json("ada", servers=[server_json(idle=7200)])])


@pytest.fixture
def upstream_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding upstream's default file, as a migrated host has."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "idle_culler_config.py").write_text(
        "c = get_config()\nc.IdleCuller.timeout = 36000\n"
    )
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    env = {"JUPYTERHUB_API_URL": URL, "JUPYTERHUB_API_TOKEN": TOKEN}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stderr


@pytest.mark.usefixtures("upstream_workdir")
def test_implicit_default_file_is_read_and_logged(emulated_hub: EmulatedHub) -> None:
    _idle_hub(emulated_hub)
    status, stderr = _run("--dry-run")
    assert status == 0, stderr
    assert "timeout=36000" in stderr
    assert (
        "read 1 setting from idle_culler_config.py (upstream idle_culler_config.py, read because it is in the working directory"
        in stderr
    )
    assert "stop server ada" not in stderr


def test_explicit_config_replaces_the_implicit_file(
    emulated_hub: EmulatedHub, upstream_workdir: Path
) -> None:
    _idle_hub(emulated_hub)
    mine = upstream_workdir / "mine.toml"
    mine.write_text("timeout = 1200\n")
    status, stderr = _run("--dry-run", f"--config={mine}")
    assert status == 0, stderr
    assert "timeout=1200" in stderr
    assert "DRY RUN: stop server ada" in stderr


@pytest.mark.usefixtures("upstream_workdir")
def test_command_line_beats_the_upstream_file(emulated_hub: EmulatedHub) -> None:
    _idle_hub(emulated_hub)
    status, stderr = _run("--dry-run", "--timeout=60")
    assert status == 0, stderr
    assert "timeout=60.0" in stderr


def test_upstream_file_with_a_hook_exits_2_before_contacting_the_hub(tmp_path: Path) -> None:
    path = tmp_path / "idle_culler_config.py"
    path.write_text("c = get_config()\n\ndef arbiter(a, b, c):\n    return False\n")
    env = {"JUPYTERHUB_API_URL": URL, "JUPYTERHUB_API_TOKEN": TOKEN}
    with responses.RequestsMock() as nothing_registered:
        result = CliRunner().invoke(cli, ["--config", str(path)], env=env)
        assert not nothing_registered.calls
    assert result.exit_code == 2
    assert f"{path}:3: functions are not allowed" in result.stderr
    assert "Traceback" not in result.stderr
