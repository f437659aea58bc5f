"""The option table (``options.OPTIONS``) is the one source: click options, the boolean
spellings, ``Settings.from_options`` and the settings line all follow it."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import click
import pytest

from idle_cull.command.cli import cli
from idle_cull.command.config_file import CONFIG_FILE_FLAGS
from idle_cull.command.options import BOOLEAN_OPTIONS, OPTIONS, Option
from idle_cull.command.settings import ActivitySource, Settings
from idle_cull.rules.busy_kernels import ProbeLimits
from idle_cull.rules.policy import Caps, CullLimits

TOKEN = "options-test-token-0123456789"
# Settings fields that come from somewhere other than a single option.
NOT_FROM_AN_OPTION = {
    "token",
    "proxy_auth_token",
    "tls",
    "retry",
    "limits",
    "caps",
    "probe_limits",
    "activity",
}
# Options that are a usage error without another one: given together in these tests.
NEEDS = {
    "probe-kernels": ("--proxy-url=http://proxy.test",),
    "activity-source": ("--proxy-url=http://proxy.test",),
}


@pytest.fixture(autouse=True)
def _no_option_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in OPTIONS:
        if option.envvar:
            monkeypatch.delenv(option.envvar, raising=False)


def parse(*args: str) -> dict[str, Any]:
    """The option values click hands the command, after the upstream spellings."""
    with cli.make_context("idle-cull", list(args)) as ctx:
        return dict(ctx.params)


def landed(option: Option, args: tuple[str, ...]) -> object:
    """Where ``option``'s value ends up: its Settings field, or the parsed value app reads."""
    values = parse(*NEEDS.get(option.name, ()), *args)
    if option.setting is None:
        return values[option.dest]
    value: Any = Settings.from_options(values, token=TOKEN)
    for name in option.setting.split("."):
        value = getattr(value, name)
    return value


def spellings(option: Option) -> list[Any]:
    underscored = option.name.replace("-", "_")
    return [
        pytest.param((option.flag,), True, id=f"{option.name}-bare"),
        pytest.param((f"{option.flag}=true",), True, id=f"{option.name}-equals-true"),
        pytest.param((f"{option.flag}=false",), False, id=f"{option.name}-equals-false"),
        pytest.param((f"--no-{option.name}",), False, id=f"{option.name}-no-prefix"),
        pytest.param((f"--{underscored}",), True, id=f"{option.name}-upstream-underscores"),
        pytest.param((f"--no_{underscored}",), False, id=f"{option.name}-no-underscores"),
        pytest.param((f"--no-{option.name}", option.flag), True, id=f"{option.name}-last-wins"),
        pytest.param((option.flag, f"--no-{option.name}"), False, id=f"{option.name}-last-wins-no"),
    ]


@pytest.mark.parametrize(
    ("option", "args", "expected"),
    [
        pytest.param(option, *spelling.values, id=spelling.id)
        for option in BOOLEAN_OPTIONS
        for spelling in spellings(option)
    ],
)
def test_every_boolean_option_in_every_spelling(
    option: Option, args: tuple[str, ...], expected: bool
) -> None:
    assert landed(option, args) is expected


def test_no_report_kept_is_accepted() -> None:
    """It was advertised in --help, but a hand-kept list of booleans missed it."""
    assert parse("--report-kept", "--no-report-kept")["report_kept"] is False
    assert "Also --no-report-kept." in cli.get_help(click.Context(cli))


def test_the_table_declares_every_option_of_the_command() -> None:
    declared = {f"--{option.name}" for option in OPTIONS}
    on_command = {opt for param in cli.params for opt in param.opts if opt.startswith("--")}
    # --config and --generate-config say where settings come from (config_file.py).
    assert on_command - {"--help", "--version", *CONFIG_FILE_FLAGS} == declared


def test_every_setting_path_names_a_field() -> None:
    settings = Settings.from_options(parse(), token=TOKEN)
    for option in OPTIONS:
        if option.setting:
            target: Any = settings
            *parents, name = option.setting.split(".")
            for parent in parents:
                target = getattr(target, parent)
            assert name in {f.name for f in dataclasses.fields(target)}, option.name


def test_every_settings_field_is_filled_by_exactly_one_option() -> None:
    """A field without an option (or with two) means the table and Settings drifted."""
    paths = [option.setting for option in OPTIONS if option.setting]
    assert len(paths) == len(set(paths))
    fields = {f.name for f in dataclasses.fields(Settings)} - NOT_FROM_AN_OPTION
    fields |= {f"limits.{f.name}" for f in dataclasses.fields(CullLimits)}
    fields |= {f"caps.{f.name}" for f in dataclasses.fields(Caps)}
    fields |= {f"probe_limits.{f.name}" for f in dataclasses.fields(ProbeLimits)}
    fields |= {f"activity.{f.name}" for f in dataclasses.fields(ActivitySource)}
    assert set(paths) == fields


def test_option_defaults_are_the_settings_defaults() -> None:
    """With no options the pass runs with the dataclasses' own defaults: one story."""
    settings = Settings.from_options(parse(), token=TOKEN)
    assert settings == Settings(
        url="http://127.0.0.1:8081/hub/api", token=TOKEN, limits=CullLimits()
    )


def test_values_land_in_their_fields() -> None:
    settings = Settings.from_options(
        parse(
            "--url=http://hub.test:8081/hub/api/",
            "--timeout=90m",
            "--exclude-user=a*",
            "--exclude-user=bob",
            "--group-timeout=gpu=2h",
            "--max-culls=3",
            "--report=json",
        ),
        token=TOKEN,
    )
    assert settings.url == "http://hub.test:8081/hub/api"
    assert settings.limits.timeout == 5400
    assert settings.limits.exclude_users == ("a*", "bob")
    assert settings.limits.group_timeouts == (("gpu", 7200.0),)
    assert settings.caps.max_culls == 3
    assert settings.report == "json"


def test_settings_line_has_every_field_option_and_never_the_token() -> None:
    settings = Settings.from_options(
        parse("--exclude-user=a*", "--group-timeout=gpu=2h"), token=TOKEN
    )
    described = settings.describe()
    assert list(described) == [o.setting.rpartition(".")[2] for o in OPTIONS if o.setting] + ["ssl"]
    assert described["exclude_users"] == "a*"
    assert described["group_timeouts"] == "gpu=7200"
    assert described["api_page_size"] == 0  # the hub's default, as a value: key=value parses
    line = " ".join(f"{k}={v}" for k, v in described.items() if v is not None)
    pairs = [pair.partition("=") for pair in line.split(" ")]
    assert all(sep and key.isidentifier() for key, sep, _ in pairs), line
    assert described["ssl"] is False
    assert TOKEN not in str(described)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        pytest.param(
            "50%", "50% is a percentage: write 0.5 (a fraction from 0 to 1)", id="percent"
        ),
        pytest.param(
            "50", "50 is more than 1: for 50%, write 0.5 (a fraction from 0 to 1)", id="50"
        ),
        pytest.param("150", "150 is not a fraction from 0 to 1: write e.g. 0.5 for half", id="150"),
        pytest.param("-0.1", "-0.1 is not a fraction from 0 to 1", id="negative"),
        pytest.param("nan", "nan is not a fraction from 0 to 1", id="nan"),
        pytest.param("half", "'half' is not a number: write a fraction from 0 to 1", id="word"),
    ],
)
def test_max_cull_fraction_says_it_is_a_fraction_from_0_to_1(given: str, message: str) -> None:
    """Issue 23.7: ``50%`` was "not a valid float range", which does not say 0.5."""
    with pytest.raises(click.BadParameter, match=re.escape(message)):
        parse(f"--max-cull-fraction={given}")


@pytest.mark.parametrize(
    ("given", "fraction"), [("0", 0.0), ("0.5", 0.5), ("1", 1.0), (0.25, 0.25)]
)
def test_max_cull_fraction_takes_fractions_only(given: object, fraction: float) -> None:
    assert parse(f"--max-cull-fraction={given}")["max_cull_fraction"] == fraction
