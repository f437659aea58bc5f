"""Issue 21 items 3, 4, 6, 7 and 8 (URLs), issue 23 item 2: every value from every source
passes the same checks.

A value reaches an option from the command line, the environment, idle-cull's TOML file
or upstream's ``idle_culler_config.py``; each of them must be refused (exit 2, one line,
nothing sent) or accepted alike. The clock guard is turned off only by its own option,
never by a restated default; an ``IDLE_CULL_*`` typo is refused like a config-file typo.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idle_cull.command.cli import cli, known_variables
from idle_cull.command.options import (
    MAX_CONCURRENCY,
    NOT_OPTION_VARIABLES,
    OPTIONS,
    Option,
    unknown_variables,
)
from idle_cull.command.settings import Settings
from idle_cull.command.upstream_config import UPSTREAM_SETTINGS
from idle_cull.command.values import Count, Duration, Share
from idle_cull.durations import MAX_DURATION
from idle_cull.errors import ConfigError
from idle_cull.rules.policy import CullLimits
from tests.support.cli import run
from tests.support.emulated_hub import TOKEN, URL, EmulatedHub, server_json, user_json
from tests.support.hostile_peer import HostilePeer

REPO = Path(__file__).resolve().parents[1]
BY_NAME = {option.name: option for option in OPTIONS}
# upstream trait name by idle-cull option, for the options upstream's file can set
UPSTREAM_NAME = {s.option: name for name, s in UPSTREAM_SETTINGS.items() if s.option}


@pytest.fixture(autouse=True)
def in_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ./idle_culler_config.py of the checkout is read as upstream would."""
    monkeypatch.chdir(tmp_path)


def one_error_line(result: Result, *words: str) -> str:
    """The one line that says what is wrong; no traceback."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if all(word in line for word in words)]
    assert len(lines) == 1, output
    return lines[0]


# -- 21.4 and 21.6: numbers from every source go through the same check ------------------

NUMERIC = [o for o in OPTIONS if isinstance(o.type, (Duration, Count, Share))]


def in_source(
    source: str, option: Option, value: str, tmp_path: Path
) -> tuple[list[str], dict[str, str]]:
    """Arguments and environment that give ``option`` the number ``value`` from ``source``."""
    if source == "cli":
        return [f"{option.flag}={value}"], {}
    if source == "env":
        return [], {option.envvars[-1]: value}
    if source == "toml":
        path = tmp_path / "idle-cull.toml"
        path.write_text(f"{option.name} = {value}\n")  # a TOML number: -1, nan, inf, 1e300
        return [f"--config={path}"], {}
    path = tmp_path / "idle_culler_config.py"
    path.write_text(f"c.IdleCuller.{UPSTREAM_NAME[option.name]} = {value}\n")
    return [f"--config={path}"], {}


def refused_values(option: Option) -> list[str]:
    """Numbers the option must refuse: non-finite, negative, out of range."""
    if isinstance(option.type, Duration):
        values = ["-1", "nan", "inf", "-inf", "1e300", repr(MAX_DURATION * 2)]
        return [*values, "0"] if option.type.positive else values
    if isinstance(option.type, Share):
        return ["-0.1", "1.5", "nan", "inf"]
    assert isinstance(option.type, Count)
    values = [str(option.type.minimum - 1), "2.5", "nan", "inf"]
    if option.type.maximum is not None:
        values.append(str(option.type.maximum + 1))
    return values


def matrix() -> Iterator[Any]:
    for option in NUMERIC:
        for value in refused_values(option):
            sources = ["cli", "env", "toml"]
            whole = re.fullmatch(r"-?\d+", value) is not None
            if option.name in UPSTREAM_NAME and whole:
                sources.append("upstream")  # upstream's int traits take whole numbers only
            for source in sources:
                yield pytest.param(option, value, source, id=f"{option.name}-{value}-{source}")


@pytest.mark.parametrize(("option", "value", "source"), list(matrix()))
def test_a_bad_number_is_refused_alike_from_every_source(
    emulated_hub: EmulatedHub, tmp_path: Path, option: Option, value: str, source: str
) -> None:
    """``max-age = -1`` in a file stopped an active server; ``timeout = nan`` was a
    traceback; ``deadline = nan`` never fired; ``--concurrency=2e7`` took 40 s to obey
    SIGTERM: each is now exit 2 with one line, whatever the source, and nothing is sent."""
    args, env = in_source(source, option, value, tmp_path)
    result = run("--dry-run", *args, env=env)
    assert result.exit_code == 2, result.stderr
    one_error_line(result, "Error:", option.flag)
    assert len(emulated_hub.calls) == 0


def test_a_file_max_age_of_minus_one_no_longer_stops_an_active_server(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    """The issue's reproduction: exit 0 and the server stopped before."""
    emulated_hub.serve_users("ready", [user_json("ann", servers=[server_json(idle=30)])])
    emulated_hub.answer_stop("ann")
    for name, text in (
        ("idle-cull.toml", "max-age = -1\n"),
        ("u.py", "c.IdleCuller.max_age = -1\n"),
    ):
        (tmp_path / name).write_text(text)
        result = run(f"--config={tmp_path / name}")
        assert result.exit_code == 2, result.stderr
        assert "--max-age must be zero or a positive number of seconds, got -1" in result.stderr
    assert emulated_hub.deleted_urls() == []


def parsed(args: list[str], env: dict[str, str]) -> object:
    """The value click parses for the options, or the refusal's class: what a source gives."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        try:
            with cli.make_context("idle-cull", list(args)) as ctx:
                return dict(ctx.params)
        except click.ClickException:
            return "refused"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    option=st.sampled_from(NUMERIC),
    number=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.sampled_from([-1, 0, 1, MAX_CONCURRENCY, MAX_CONCURRENCY + 1, MAX_DURATION]),
    ),
)
def test_every_source_gives_the_same_value_or_the_same_refusal(
    tmp_path: Path, option: Option, number: float
) -> None:
    """Property: the command line, the environment and a TOML file agree on any number."""
    text = repr(number) if isinstance(number, float) else str(number)
    outcomes = {
        source: parsed(*in_source(source, option, text, tmp_path))
        for source in ("cli", "env", "toml")
    }
    values = {
        source: outcome if outcome == "refused" else outcome[option.dest]  # type: ignore[index]
        for source, outcome in outcomes.items()
    }
    assert len({repr(v) for v in values.values()}) == 1, values
    accepted = values["cli"]
    if accepted != "refused":
        assert isinstance(accepted, (int, float))
        assert math.isfinite(accepted)
        assert accepted >= 0


def test_concurrency_is_bounded_at_its_documented_maximum(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [])
    assert run("--dry-run", f"--concurrency={MAX_CONCURRENCY}").exit_code == 0
    result = run("--dry-run", f"--concurrency={MAX_CONCURRENCY + 1}")
    assert result.exit_code == 2
    line = one_error_line(result, "Error:", "--concurrency")
    assert f"must be at most {MAX_CONCURRENCY} (" in line  # with the reason
    with pytest.raises(ConfigError, match="--concurrency must be 1 to 100"):
        Settings(url=URL, token=TOKEN, limits=CullLimits(), concurrency=10**9)


# -- 21.3: only --allow-clock-skew turns the clock guard off -----------------------------


def generated_config_uncommented(tmp_path: Path) -> Path:
    """``--generate-config`` with every setting that has a default uncommented."""
    generated = run("--generate-config").stdout
    lines = []
    for line in generated.splitlines():
        match = re.fullmatch(r"# ([a-z][a-z-]*) = (\S.*)", line)
        lines.append(line[2:] if match and match.group(1) in BY_NAME else line)
    path = tmp_path / "generated.toml"
    path.write_text("\n".join(lines) + "\n")
    assert 'clock = "hub"' in path.read_text()
    return path


def restated_default(source: str, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    if source == "cli":
        return ["--clock=hub"], {}
    if source == "env":
        return [], {"IDLE_CULL_CLOCK": "hub"}
    if source == "toml":
        (tmp_path / "c.toml").write_text('clock = "hub"\n')
        return [f"--config={tmp_path / 'c.toml'}"], {}
    return [f"--config={generated_config_uncommented(tmp_path)}"], {}


@pytest.mark.parametrize("source", ["cli", "env", "toml", "generated-config"])
def test_restating_the_default_clock_keeps_the_guard(
    emulated_hub: EmulatedHub, tmp_path: Path, source: str
) -> None:
    """A front proxy's Date 3 h ahead: with ``clock = "hub"`` in the TOML (the line
    --generate-config prints) or IDLE_CULL_CLOCK=hub, an active server was stopped, exit 0."""
    emulated_hub.set_clock(datetime.now(timezone.utc) + timedelta(hours=3))
    emulated_hub.serve_users("ready", [user_json("ann", servers=[server_json(idle=300)])])
    emulated_hub.answer_stop("ann")
    args, env = restated_default(source, tmp_path)
    result = run("--timeout=1h", *args, env=env)
    assert result.exit_code == 6, result.stderr
    assert emulated_hub.deleted_urls() == []
    one_error_line(result, "differ by", "--allow-clock-skew")


def test_the_generated_config_round_trip_changes_no_setting(tmp_path: Path) -> None:
    from_file = parsed([f"--config={generated_config_uncommented(tmp_path)}"], {})
    defaults = parsed([], {})
    assert isinstance(from_file, dict)
    assert isinstance(defaults, dict)
    del from_file["config"], defaults["config"]
    assert from_file == defaults


@pytest.mark.parametrize("source", ["cli", "env", "toml"])
def test_allow_clock_skew_is_the_one_override(
    emulated_hub: EmulatedHub, tmp_path: Path, source: str
) -> None:
    emulated_hub.set_clock(datetime.now(timezone.utc) + timedelta(hours=3))
    emulated_hub.serve_users("ready", [user_json("ann", servers=[server_json(idle=300)])])
    emulated_hub.answer_stop("ann")
    args, env = {
        "cli": (["--allow-clock-skew"], {}),
        "env": ([], {"IDLE_CULL_ALLOW_CLOCK_SKEW": "true"}),
        "toml": ([f"--config={tmp_path / 'c.toml'}"], {}),
    }[source]
    (tmp_path / "c.toml").write_text("allow-clock-skew = true\n")
    result = run("--timeout=1h", *args, env=env)
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == [f"{URL}/users/ann/server"]


# -- 21.7 and 21.8: a URL that cannot be requested is exit 2 before anything is sent ------

BAD_URLS = [
    pytest.param("http://[::1", "unbalanced [", id="unbalanced-bracket"),
    pytest.param("http://host:99999", "invalid port", id="port-99999"),
    pytest.param("http://host:0", "invalid port", id="port-0"),
    pytest.param("http://host ", "contains spaces", id="trailing-space"),
    pytest.param("http://ho st", "contains spaces", id="inner-space"),
    pytest.param("http://user:pw@[::1", "unbalanced [", id="unbalanced-with-credentials"),
]


def url_args(option: str, url: str) -> tuple[list[str], dict[str, str]]:
    if option == "--url":
        return [f"--url={url}/hub/api"], {}
    if option == "--proxy-url":
        return ["--probe-kernels", f"--proxy-url={url}"], {}
    return [f"--pushgateway={url}"], {}


@pytest.mark.parametrize("option", ["--url", "--proxy-url", "--pushgateway"])
@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_a_url_that_cannot_be_requested_is_exit_2_before_anything_is_sent(
    emulated_hub: EmulatedHub, option: str, url: str, message: str
) -> None:
    """An unbalanced [ was a traceback; port 99999 or a trailing space in --proxy-url
    passed, and every probe then failed, every pass."""
    args, env = url_args(option, url)
    result = run(*args, env=env)
    assert result.exit_code == 2, result.stderr
    line = one_error_line(result, "ERROR", option, message)
    assert "pw@" not in line
    assert len(emulated_hub.calls) == 0


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_a_bad_hub_url_from_the_environment_or_a_file_is_refused_alike(
    emulated_hub: EmulatedHub, tmp_path: Path, url: str, message: str
) -> None:
    (tmp_path / "c.toml").write_text(f"url = {url + '/hub/api'!r}\n".replace("'", '"'))
    for args, env in (
        ([], {"JUPYTERHUB_API_URL": f"{url}/hub/api"}),
        ([f"--config={tmp_path / 'c.toml'}"], {"JUPYTERHUB_API_URL": ""}),
    ):
        result = run(*args, env=env)
        assert result.exit_code == 2, result.stderr
        one_error_line(result, "ERROR", "--url", message)
    assert len(emulated_hub.calls) == 0


# -- 23.2: an unknown IDLE_CULL_* variable is refused, naming the nearest real one ----------


def test_environment_typos_are_refused_naming_the_nearest_variable(
    emulated_hub: EmulatedHub,
) -> None:
    """The issue's reproduction ran with timeout=600 and no exclusion, and said nothing."""
    result = run("--dry-run", env={"IDLE_CULL_TIMOUT": "1h", "IDLE_CULL_EXCLUDE_USERS": "alice"})
    assert result.exit_code == 2
    line = one_error_line(result, "Error:", "IDLE_CULL_TIMOUT")
    assert "IDLE_CULL_TIMOUT (did you mean IDLE_CULL_TIMEOUT?)" in line
    assert "IDLE_CULL_EXCLUDE_USERS (did you mean IDLE_CULL_EXCLUDE_USER?)" in line
    assert len(emulated_hub.calls) == 0


def test_the_documented_variables_that_are_not_options_are_accepted(
    emulated_hub: EmulatedHub,
) -> None:
    emulated_hub.serve_users("ready", [])
    env = dict.fromkeys(NOT_OPTION_VARIABLES, "x") | {"IDLE_CULL_CONFIG": ""}
    result = run("--dry-run", env=env)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("environ", "refused"),
    [
        pytest.param({"IDLE_CULL_TIMEOUT": "1h"}, None, id="an-option"),
        pytest.param({"JUPYTERHUB_API_URL": "x", "PATH": "/bin"}, None, id="other-prefixes"),
        pytest.param({"IDLE_CULL_ARGS": "--dry-run"}, None, id="systemd-extra-flags"),
        pytest.param({"IDLE_CULL_CONFIG": "f.toml"}, None, id="the-config-option"),
        pytest.param({"idle_cull_timout": "1h"}, None, id="lower-case-is-not-read"),
        pytest.param({"IDLE_CULL_DRYRUN": "1"}, "IDLE_CULL_DRY_RUN", id="missing-underscore"),
        pytest.param({"IDLE_CULL_": "1"}, "IDLE_CULL_", id="bare-prefix"),
    ],
)
def test_unknown_variables(environ: dict[str, str], refused: str | None) -> None:
    message = unknown_variables(environ, known_variables(cli))
    if refused is None:
        assert message is None
    else:
        assert message is not None
        assert refused in message
        assert "\n" not in message


def test_every_idle_cull_variable_the_project_mentions_is_known() -> None:
    """The allow-list stays complete: every IDLE_CULL_ name in the operator-facing files and
    scripts, and every one the harness reads from or exports to a developer's shell, is an
    option's variable or listed in NOT_OPTION_VARIABLES (and every listed one is used)."""
    files = [p for p in (REPO / n for n in ("README.md", "CONTRIBUTING.md")) if p.exists()]
    files.append(REPO / "Containerfile")
    for folder in ("idle_cull", "systemd", "cron", "config", "scripts", "docs"):
        files += [p for p in (REPO / folder).rglob("*") if p.is_file()]
    mentioned = set()
    for path in files:
        mentioned |= set(
            re.findall(r"IDLE_CULL_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8", "replace"))
        )
    for path in (REPO / "tests").rglob("*.py"):
        text = path.read_text("utf-8")
        for pattern in (r"export (IDLE_CULL_\w+)=", r'os\.environ\.get\("(IDLE_CULL_\w+)"\)'):
            if path.name not in ("hub_config.py", "singleuser_config.py"):  # run in the hub
                mentioned |= set(re.findall(pattern, text))
    known = known_variables(cli)
    assert sorted(mentioned - known) == []
    assert set(NOT_OPTION_VARIABLES) <= mentioned


def test_nothing_below_the_cli_reads_the_environment() -> None:
    """STYLE: the unknown-variable check reads ``os.environ`` in cli.py only."""
    for path in (REPO / "idle_cull").rglob("*.py"):
        if path.name not in ("cli.py", "boundary.py"):  # boundary.py: the token and managed service
            assert "os.environ" not in path.read_text("utf-8"), path.name


# -- 21.6: no accepted setting defeats a signal -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([f"--concurrency={MAX_CONCURRENCY}"], id="most-concurrency"),
        pytest.param(
            ["--deadline=36500d", "--request-timeout=36500d", "--recheck-after=36500d"],
            id="longest-durations",
        ),
    ],
)
def test_sigterm_ends_a_pass_promptly_at_the_largest_accepted_values(args: list[str]) -> None:
    """With --concurrency=2e7 SIGTERM took 40 s; the largest values now accepted keep it
    prompt (the hub trickles its version answer, so the pass is in a request)."""
    with HostilePeer("trickle", interval=0.2) as peer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
        env |= {"JUPYTERHUB_API_URL": f"http://127.0.0.1:{peer.port}/hub/api"}
        env |= {"JUPYTERHUB_API_TOKEN": TOKEN}
        process = subprocess.Popen(
            [sys.executable, "-m", "idle_cull", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        elapsed = time.monotonic() - started
    assert process.returncode == 1, stderr
    assert "SIGTERM received" in stderr
    assert elapsed < 8
