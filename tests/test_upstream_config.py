"""Upstream 2.0's idle_culler_config.py: read without running it, refused where it is code.

tests/test_upstream_generated_config.py reads upstream's whole generated file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import pytest
import responses
from click.testing import CliRunner

from idle_cull.command import upstream_config
from idle_cull.command.cli import cli
from idle_cull.command.config_file import defaults_from, read_config_file
from idle_cull.command.upstream_config import UPSTREAM_SETTINGS, UpstreamNote, read_upstream_config
from idle_cull.errors import ConfigError
from tests.support.emulated_hub import TOKEN, URL, EmulatedHub, server_json, user_json

# Every configurable trait of jupyterhub-idle-culler 2.0.0's IdleCuller, read from the
# installed package's class (its own traits and the ones traitlets' Application adds;
# traitlets 5.16 adds logging_config).
UPSTREAM_2_0_TRAITS = {
    "api_page_size", "concurrency", "config_file", "cull_admin_users", "cull_arbiter_hook",
    "cull_default_servers", "cull_every", "cull_named_servers", "cull_users",
    "generate_config", "internal_certs_location", "max_age", "remove_named_servers",
    "ssl_enabled", "timeout", "url", "log_level", "log_format", "log_datefmt",
    "logging_config", "show_config", "show_config_json",
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


def _read(text: str) -> dict[str, object]:
    return read_upstream_config(text, "f.py").values


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
            "c.IdleCuller.timeout = 600 * HOURS",
            r":3: c.IdleCuller.timeout must be written as a value \(idle-cull reads this file "
            r"without running it\): HOURS is a name, .*; write its value$",
            id="name-in-expression",
        ),
        pytest.param(
            "c.IdleCuller.timeout = int('600')",
            r":3: c.IdleCuller.timeout must be written as a value .*: a call needs code to run; "
            r"write its result \(e.g. write 7200, not int\('7200'\)\)$",
            id="call",
        ),
        pytest.param(
            "c.IdleCuller.timeout = '2' * 3",
            r":3: c.IdleCuller.timeout must be written as a value .*: arithmetic is computed on numbers only",
            id="string-arithmetic",
        ),
        pytest.param(
            "c.IdleCuller.timeout = 2 ** 100",
            r":3: c.IdleCuller.timeout must be written as a value .*: an exponent beyond ±64; write the value itself$",
            id="huge-exponent",
        ),
        pytest.param(
            "c.IdleCuller.timeout = 7200 // 0",
            r":3: .*: a division by zero; write the value itself$",
            id="division-by-zero",
        ),
        pytest.param(
            "c.IdleCuller.timeout = 2 * 3600.0",
            r":3: c.IdleCuller.timeout must be a whole number, got 7200.0: write 7200$",
            id="float-for-int",
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
            "c.IdleCuller.cull_users = true",
            r":3: c.IdleCuller.cull_users must be written as a value .*: true is not a Python value; write True$",
            id="lowercase-true",
        ),
        pytest.param(
            "c.IdleCuller.url = null",
            r":3: c.IdleCuller.url must be written as a value .*: null is not a Python value; write None$",
            id="null",
        ),
        pytest.param(
            "c.IdleCuller.timeout = {[]: 1}",
            r":3: c.IdleCuller.timeout must be written as a value .*: \[\] cannot be a dict key",
            id="unhashable-key",
        ),
        pytest.param(
            "c.IdleCuller.logging_config = {'handlers': open('/etc/passwd')}",
            r":3: c.IdleCuller.logging_config must be written as a value .*: a call needs code",
            id="call-in-ignored-setting",
        ),
        pytest.param(
            "c.IdleCuller.show_config = True",
            r":3: c.IdleCuller.show_config is not supported: upstream would print its settings instead of culling; remove the line",
            id="show-config-on",
        ),
        pytest.param(
            "c.IdleCuller.generate_config = True",
            r":3: c.IdleCuller.generate_config is not supported: .*; remove the line",
            id="generate-config-on",
        ),
        pytest.param(
            "c.IdleCuller.cull_arbiter_hook = lambda inactive, limit, server: False",
            r":3: c.IdleCuller.cull_arbiter_hook is not supported: .*--profile-timeout",
            id="lambda-hook",
        ),
        pytest.param(
            "c.IdleCuller.timout = 600",
            r":3: c.IdleCuller.timout is not an upstream setting; did you mean c.IdleCuller.timeout\?",
            id="typo",
        ),
        pytest.param(
            "c.JupyterHub.timeout = 600",
            r":3: c.JupyterHub.timeout is not an idle culler setting; write c.IdleCuller.timeout$",
            id="other-class",
        ),
        pytest.param(
            "c.JupyterHub.admin_users = {'ada'}",
            r":3: c.JupyterHub.admin_users is not an idle culler setting; only c.IdleCuller.<name>",
            id="other-class-other-name",
        ),
        pytest.param(
            "c.Application.timeout = 600",
            r":3: c.Application.timeout is not an idle culler setting; write c.IdleCuller.timeout$",
            id="idle-culler-trait-on-application",
        ),
        pytest.param(
            "c.Application.log_levl = 10",
            r":3: c.Application.log_levl is not an upstream setting; did you mean c.IdleCuller.log_level\?",
            id="application-typo",
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
            "c.IdleCuller.log_level = 'CRITICAL'",
            r":3: c.IdleCuller.log_level 'CRITICAL' is not one of .*: write 'ERROR', the least verbose level here$",
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
    assert _read("c.IdleCuller.log_level = 30\n") == {"log-level": "warning"}
    assert _read("c.IdleCuller.log_level = 'warn'\n") == {"log-level": "warning"}
    assert _read("c.Application.log_level = 'DEBUG'\n") == {"log-level": "debug"}


def test_url_none_leaves_the_environment_in_charge() -> None:
    read = read_upstream_config("c.IdleCuller.url = None\n", "f.py")
    assert read.values == {}
    assert [note.message for note in read.notes] == [
        "f.py:1: c.IdleCuller.url ignored: None is upstream's default: JUPYTERHUB_API_URL decides"
    ]


def test_later_assignment_wins_as_when_upstream_runs_the_file() -> None:
    text = "c.IdleCuller.timeout = 600\nc.IdleCuller.timeout = 3600\n"
    read = read_upstream_config(text, "f.py")
    assert read.values == {"timeout": 3600}
    assert [note.message for note in read.notes] == [
        "f.py:1: c.IdleCuller.timeout ignored: c.IdleCuller.timeout on line 2 sets it, "
        "as when upstream runs the file"
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "c.IdleCuller.log_level = 10\nc.Application.log_level = 40\n", id="subclass-first"
        ),
        pytest.param(
            "c.Application.log_level = 40\nc.IdleCuller.log_level = 10\n", id="subclass-last"
        ),
    ],
)
def test_idle_culler_beats_application_wherever_written(text: str) -> None:
    """As in traitlets: the subclass's section wins over its parent's, in any order."""
    read = read_upstream_config(text, "f.py")
    assert read.values == {"log-level": "debug"}
    (note,) = read.notes
    assert "c.Application.log_level ignored: c.IdleCuller.log_level on line" in note.message


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        pytest.param("2 * 60 * 60", 7200, id="hours"),
        pytest.param("(1 + 1) * 3600", 7200, id="parentheses"),
        pytest.param("7 * 24 * 3600 - 1", 604799, id="week-less-a-second"),
        pytest.param("2 ** 10", 1024, id="power"),
        pytest.param("14400 // 2", 7200, id="floor-division"),
        pytest.param("-(-7200)", 7200, id="unary"),
        pytest.param("7200 % 86400", 7200, id="modulo"),
    ],
)
def test_constant_arithmetic_is_computed(expression: str, value: int) -> None:
    assert _read(f"c.IdleCuller.timeout = {expression}\n") == {"timeout": value}


@pytest.mark.parametrize(
    ("line", "level", "reason"),
    [
        pytest.param(
            "c.IdleCuller.log_format = '[%(name)s]%(highlevel)s %(message)s'",
            logging.INFO,
            "idle-cull's log lines have one format of their own (--log-format text or json)",
            id="log-format-default",
        ),
        pytest.param(
            "c.Application.log_format = '%(message)s'",
            logging.WARNING,
            "idle-cull's log lines have one format of their own (--log-format text or json); its value is not used",
            id="log-format-changed",
        ),
        pytest.param(
            "c.IdleCuller.logging_config = {'handlers': {'file': {'class': 'logging.FileHandler'}}}",
            logging.WARNING,
            "idle-cull logs to stderr only, where its scheduler (systemd, cron, Kubernetes) keeps the log; its value is not used",
            id="logging-config-changed",
        ),
        pytest.param(
            "c.IdleCuller.config_file = 'other.py'",
            logging.WARNING,
            "naming a config file inside one changes nothing (in upstream neither); pass --config FILE to choose the file; its value is not used",
            id="config-file",
        ),
        pytest.param(
            "c.IdleCuller.cull_arbiter_hook = <function default_cull_arbiter at 0x7f92f8080400>",
            logging.INFO,
            "upstream's default arbiter: the idle limits decide, as they do here",
            id="default-hook-as-generated",
        ),
    ],
)
def test_settings_without_a_meaning_here_are_ignored_with_one_line(
    line: str, level: int, reason: str
) -> None:
    read = read_upstream_config(f"c = get_config()\n{line}\n", "f.py")
    assert read.values == {}
    written = line.split(" = ", maxsplit=1)[0]
    assert read.notes == (UpstreamNote(level, f"f.py:2: {written} ignored: {reason}", 2),)


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


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x = " + "-" * 30_000 + "1\n", id="deep-unary-minus"),
        pytest.param("x = " + "+".join(["1"] * 20_000) + "\n", id="long-sum"),
        pytest.param("x = 1\0\n", id="nul-byte"),
    ],
)
def test_what_the_parser_raises_is_caught_where_the_file_is_parsed(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """Behind the token bound, ast.parse's MemoryError/RecursionError is still one line."""
    monkeypatch.setattr(upstream_config, "MAX_STATEMENT_TOKENS", 10**9)
    with pytest.raises(
        ConfigError, match=r"^f\.py(:1)?: (cannot be read as a config file|not valid Python)"
    ):
        read_upstream_config(text, "f.py")


def test_the_migration_page_says_what_becomes_of_every_setting() -> None:
    page = Path(__file__).parents[1] / "docs" / "how-to" / "migrating-from-upstream.md"
    first_cells = [
        line.split(" | ")[0]
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith("| `")
    ]
    for name in UPSTREAM_SETTINGS:
        assert any(f"`{name}`" in cell for cell in first_cells), name
