"""idle-cull's TOML config file, IDLE_CULL_* variables, precedence and --generate-config."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from idle_cull.command.cli import cli
from idle_cull.command.config_file import defaults_from, file_options, read_config_file
from idle_cull.command.options import OPTIONS
from tests.support.cli import run
from tests.support.emulated_hub import URL, EmulatedHub, server_json, user_json


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "idle-cull.toml"


def _settings_line(stderr: str) -> str:
    line = next(line for line in stderr.splitlines() if "starting one pass:" in line)
    return line.split("starting one pass:", 1)[1]


@pytest.mark.parametrize(
    ("sources", "effective"),
    [
        pytest.param({}, "600.0", id="default"),
        pytest.param({"file": "1200"}, "1200.0", id="file-beats-default"),
        pytest.param({"file": "1200", "env": "30m"}, "1800.0", id="environment-beats-file"),
        pytest.param(
            {"file": "1200", "env": "30m", "cli": "40m"}, "2400.0", id="command-line-beats-all"
        ),
        pytest.param({"file": "1200", "cli": "40m"}, "2400.0", id="command-line-beats-file"),
        pytest.param({"env": "30m"}, "1800.0", id="environment-beats-default"),
    ],
)
def test_precedence(
    emulated_hub: EmulatedHub, config: Path, sources: dict[str, str], effective: str
) -> None:
    emulated_hub.serve_users("ready", [])
    config.write_text(f"timeout = {sources['file']}\n" if "file" in sources else "")
    args = ["--dry-run", f"--config={config}"]
    if "cli" in sources:
        args.append(f"--timeout={sources['cli']}")
    result = run(*args, env={"IDLE_CULL_TIMEOUT": sources["env"]} if "env" in sources else None)
    assert result.exit_code == 0, result.stderr
    assert f" timeout={effective} " in _settings_line(result.stderr)


def test_jupyterhub_variables_beat_the_file_too(emulated_hub: EmulatedHub, config: Path) -> None:
    emulated_hub.serve_users("ready", [])
    config.write_text('url = "http://elsewhere.test:8081/hub/api"\nrequest-timeout = 5\n')
    result = run("--dry-run", f"--config={config}", env={"JUPYTERHUB_REQUEST_TIMEOUT": "7"})
    assert result.exit_code == 0, result.stderr
    line = _settings_line(result.stderr)
    assert f"url={URL} " in line
    assert "request_timeout=7.0" in line


def test_rules_as_lists_and_tables(emulated_hub: EmulatedHub, config: Path) -> None:
    emulated_hub.serve_users(
        "ready",
        [
            user_json("alice", servers=[server_json(idle=7200)]),
            user_json("bob", groups=["instructors"], servers=[server_json(idle=7200)]),
            user_json("carol", servers=[server_json(idle=7200)]),
        ],
    )
    config.write_text(
        'timeout = "1h"\n'
        'exclude-user = ["alice"]\n'
        'profile-timeout = ["gpu=2h"]\n'
        "[group-timeout]\n"
        'instructors = "6h"\n'
    )
    result = run("--dry-run", f"--config={config}")
    assert result.exit_code == 0, result.stderr
    line = _settings_line(result.stderr)
    assert "exclude_users=alice " in line
    assert "group_timeouts=instructors=21600 " in line
    assert "profile_timeouts=gpu=7200 " in line
    stops = re.findall(r"DRY RUN: stop server (\w+)", result.stderr)
    assert stops == ["carol"]


def test_environment_sets_repeatable_options(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [])
    emulated_hub.serve_users("inactive", [])
    result = run(
        "--dry-run", env={"IDLE_CULL_EXCLUDE_USER": "alice bob", "IDLE_CULL_CULL_USERS": "true"}
    )
    assert result.exit_code == 0, result.stderr
    assert "exclude_users=alice,bob " in _settings_line(result.stderr)
    assert "cull_users=True " in _settings_line(result.stderr)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "exclude_user = ['alice']\n",
            "unknown setting 'exclude_user'; did you mean 'exclude-user'?",
            id="underscore",
        ),
        pytest.param(
            "exclude-users = ['alice']\n",
            "unknown setting 'exclude-users'; did you mean 'exclude-user'?",
            id="plural",
        ),
        pytest.param(
            "timout = 60\n", "unknown setting 'timout'; did you mean 'timeout'?", id="typo"
        ),
        pytest.param("token = 'abc'\n", "unknown setting 'token'", id="no-token-key"),
        pytest.param(
            "timeout = 'ten'\n",
            "timeout = \"ten\": --timeout 'ten' is not a duration",
            id="bad-duration",
        ),
        pytest.param(
            "concurrency = 0\n",
            "concurrency = 0: --concurrency must be at least 1, got 0",
            id="out-of-range",
        ),
        pytest.param(
            "concurrency = 2.5\n",
            "concurrency = 2.5: --concurrency must be a whole number",
            id="fraction-for-int",
        ),
        pytest.param(
            "timeout = true\n", "timeout = true: not a true/false setting", id="bool-for-duration"
        ),
        pytest.param(
            "cull-users = 'maybe'\n",
            "cull-users = \"maybe\": 'maybe' is not a valid boolean",
            id="bad-bool",
        ),
        pytest.param("report = 'xml'\n", "report = \"xml\": 'xml' is not one of", id="bad-choice"),
        pytest.param("exclude-user = 'alice'\n", "exclude-user takes a list", id="scalar-for-list"),
        pytest.param(
            "group-timeout = { staff = 'soon' }\n",
            'group-timeout = {"staff": "soon"}: --group-timeout staff \'soon\' is not a duration',
            id="bad-pair",
        ),
        pytest.param(
            "timeout = [600]\n", "timeout = [600]: expected a single value", id="list-for-scalar"
        ),
        pytest.param("timeout = \n", "not valid TOML", id="syntax"),
    ],
)
def test_file_values_are_validated_as_their_options(config: Path, text: str, message: str) -> None:
    config.write_text(text)
    result = run(f"--config={config}")
    assert result.exit_code == 2
    assert f"Error: {config}: {message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run(f"--config={tmp_path / 'nope.toml'}")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        pytest.param("timeout = 60\n", "toml", id="toml-by-content"),
        pytest.param("c.IdleCuller.timeout = 60\n", "upstream", id="upstream-by-content"),
    ],
)
def test_format_by_content_for_other_names(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "culler.conf"
    path.write_text(text)
    assert read_config_file(path) == (kind, {"timeout": 60})


def test_generate_config_lists_every_option_with_its_default(tmp_path: Path) -> None:
    result = run("--generate-config")
    assert result.exit_code == 0, result.stderr
    text = result.output
    for option in OPTIONS:
        assert f"\n# {option.name}: " in text, option.name
        assert f"\n# {option.name} =" in text, option.name
        assert f"# environment: {', '.join(option.envvars)}\n" in text
    # Uncommented, every line that shows a default loads back to exactly the defaults.
    uncommented = [
        line[2:].split("  #")[0] for line in text.splitlines() if re.match(r"# [a-z-]+ = \S", line)
    ]
    path = tmp_path / "all.toml"
    path.write_text("\n".join(uncommented) + "\n")
    kind, values = read_config_file(path)
    assert kind == "toml"
    defaults = defaults_from(click.Context(cli), values, str(path))
    unset = {o.dest for o in OPTIONS if o.default is None and not o.multiple}
    assert set(defaults) == {o.dest for o in OPTIONS} - unset
    params = file_options(cli)
    for option in OPTIONS:
        if option.dest in defaults:
            expected = params[option.name].type_cast_value(click.Context(cli), option.default)
            assert defaults[option.dest] == expected, option.name


def test_generated_config_runs_unchanged(emulated_hub: EmulatedHub, tmp_path: Path) -> None:
    emulated_hub.serve_users("ready", [])
    path = tmp_path / "idle-cull.toml"
    path.write_text(run("--generate-config").output)
    result = run("--dry-run", f"--config={path}")
    assert result.exit_code == 0, result.stderr
    assert f"read 0 settings from {path} (idle-cull TOML)" in result.stderr


def test_config_path_must_be_a_small_regular_utf8_file(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * 200_000)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"exclude-user = ['j\xe9r\xf4me']\n")
    for path, message in (
        (Path("/dev/null"), "is not a regular file"),
        (big, "is larger than"),
        (latin, "cannot read config file"),
    ):
        result = run(f"--config={path}")
        assert result.exit_code == 2, path
        assert message in result.stderr


def test_a_whole_float_is_an_integer(emulated_hub: EmulatedHub, config: Path) -> None:
    emulated_hub.serve_users("ready", [])
    config.write_text("concurrency = 4.0\n")
    result = run("--dry-run", f"--config={config}")
    assert result.exit_code == 0, result.stderr
    assert " concurrency=4 " in _settings_line(result.stderr)


_DEEP = 30_000  # past CPython's parser limits (~5,000 levels), under the 64 KiB upstream cap


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        pytest.param(
            "idle_culler_config.py",
            "c.IdleCuller.timeout = " + "-" * 200_000 + "1\n",
            " is larger than 65536 bytes, too large for an upstream idle_culler_config.py",
            id="200k-unary-minus-over-the-cap",
        ),
        pytest.param(
            "idle_culler_config.py",
            "c.IdleCuller.timeout = " + "-" * _DEEP + "1\n",
            ":1: a statement of more than 1000 tokens is not a setting",
            id="deep-unary-minus-memoryerror",
        ),
        pytest.param(
            "idle_culler_config.py",
            "c.IdleCuller.timeout = " + "+".join(["1"] * 100_000) + "\n",
            " is larger than 65536 bytes",
            id="long-sum-over-the-cap",
        ),
        pytest.param(
            "idle_culler_config.py",
            "c = get_config()\nc.IdleCuller.timeout = (\n"
            + "+\n".join(["1"] * (_DEEP // 2))
            + ")\n",
            ":2: a statement of more than 1000 tokens is not a setting",
            id="long-sum-recursionerror",
        ),
        pytest.param(
            "idle_culler_config.py",
            "c.IdleCuller.timeout = {[]: 1}\n",
            ":1: c.IdleCuller.timeout must be written as a value (idle-cull reads this file "
            "without running it): [] cannot be a dict key or a set item",
            id="unhashable-key-typeerror",
        ),
        pytest.param(
            "idle-cull.toml",
            "timeout = " + "[" * 5_000 + "]" * 5_000 + "\n",
            ": not a config file: values nested too deeply to read",
            id="toml-nested-5000-deep",
        ),
    ],
)
def test_hostile_files_give_one_line_and_exit_2(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    """Issue 21.8: each of these was a traceback (MemoryError, RecursionError, TypeError)."""
    path = tmp_path / name
    path.write_text(text)
    result = run(f"--config={path}")
    assert result.exit_code == 2
    # Issue 22.4: one error line, then the summary line that ends every run
    line, summary = result.stderr.splitlines()
    assert line.startswith("Error: ")
    assert f"{path}{message}" in line
    assert summary.endswith(" exit=2")


@pytest.mark.parametrize(
    ("line", "fix"),
    [
        pytest.param(
            "timeout = 10m", 'write timeout = "10m" (durations are strings in TOML)', id="duration"
        ),
        pytest.param(
            "max-age = 1.5d  # a day and a half",
            'write max-age = "1.5d" (durations are strings in TOML)',
            id="duration-with-comment",
        ),
        pytest.param(
            "cull-users = True",
            "write cull-users = true (TOML's true and false are lowercase)",
            id="python-true",
        ),
        pytest.param(
            "report = text", 'write report = "text" (text is quoted in TOML)', id="bare-word"
        ),
    ],
)
def test_an_unquoted_toml_value_says_how_to_write_it(config: Path, line: str, fix: str) -> None:
    """Issue 23.7: `timeout = 10m` was a bare parser error with no hint to quote it."""
    config.write_text(f"# idle-cull\n{line}\n")
    result = run(f"--config={config}")
    assert result.exit_code == 2
    # Issue 22.4: the error, then the summary line that ends every run (the intended change)
    error, summary = result.stderr.splitlines()
    assert error == f"Error: {config}:2: {fix}"
    assert summary.endswith(" exit=2")
