"""The shipped sample config files change nothing that the operator did not choose.

``config/zero-to-jupyterhub.toml`` must keep the chart's culler as it ran by default, and
``config/idle-cull.toml`` must keep idle-cull's own defaults. A sample that quietly
shortened the idle timeout (the chart waited 3600 s; idle-cull's default is 600 s) would
stop servers the operator meant to keep.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from idle_cull.command.cli import cli
from idle_cull.command.config_file import read_config_file
from idle_cull.command.options import OPTIONS
from idle_cull.command.settings import Settings

REPO = Path(__file__).resolve().parent.parent
GENERAL_SAMPLE = REPO / "config" / "idle-cull.toml"
Z2JH_SAMPLE = REPO / "config" / "zero-to-jupyterhub.toml"
KUBERNETES_DOC = REPO / "docs" / "how-to" / "kubernetes.md"
TOKEN = "sample-config-test-token-0123456789"

# zero-to-jupyterhub's `cull:` block in jupyterhub/values.yaml, as the chart ships it
# (chart 2.x to 4.x; adminUsers since 2.0). The chart turns it into upstream's flags in
# files/hub/jupyterhub_config.py: --timeout, --cull-every, --concurrency, --cull-users
# if users, --cull-admin-users=false unless adminUsers, --remove-named-servers if
# removeNamedServers, --max-age if maxAge.
CHART_CULL_DEFAULTS: dict[str, object] = {
    "enabled": True,
    "users": False,
    "adminUsers": True,
    "removeNamedServers": False,
    "timeout": 3600,
    "every": 600,
    "concurrency": 10,
    "maxAge": 0,
}
# Each cull.* value's idle-cull option; None where it is not a setting (enabled: the
# chart's culler itself; every: the CronJob's schedule).
CULL_TO_OPTION: dict[str, str | None] = {
    "enabled": None,
    "users": "cull-users",
    "adminUsers": "cull-admin-users",
    "removeNamedServers": "remove-named-servers",
    "timeout": "timeout",
    "every": None,
    "concurrency": "concurrency",
    "maxAge": "max-age",
}
# Settings of the z2jh sample that change nothing until another one turns them on.
INERT_UNTIL_ENABLED = {"proxy-url": "probe-kernels"}

BY_NAME = {option.name: option for option in OPTIONS}


@pytest.fixture(autouse=True)
def _no_option_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """IDLE_CULL_* or JUPYTERHUB_* variables would override the file under test."""
    for option in OPTIONS:
        for name in option.envvars:
            monkeypatch.delenv(name, raising=False)


def settings_from(*args: str) -> Settings:
    """The Settings a pass would run with, parsed by the command itself."""
    with cli.make_context("idle-cull", list(args)) as ctx:
        return Settings.from_options(dict(ctx.params), token=TOKEN)


def setting_of(settings: Settings, option_name: str) -> Any:
    """The value ``option_name`` landed on in ``settings`` (its declared Settings field)."""
    setting = BY_NAME[option_name].setting
    assert setting is not None, option_name
    value: Any = settings
    for name in setting.split("."):
        value = getattr(value, name)
    return value


def set_keys(path: Path) -> set[str]:
    """The settings a sample sets (uncommented top-level keys)."""
    kind, values = read_config_file(path)
    assert kind == "toml", path
    return set(values)


def test_the_mapping_names_real_options() -> None:
    assert set(CULL_TO_OPTION) == set(CHART_CULL_DEFAULTS)
    for option_name in filter(None, CULL_TO_OPTION.values()):
        assert BY_NAME[option_name].setting, option_name


@pytest.mark.parametrize(
    "cull_key", [k for k, v in CULL_TO_OPTION.items() if v is not None], ids=str
)
def test_zero_to_jupyterhub_sample_keeps_the_charts_default(cull_key: str) -> None:
    option_name = CULL_TO_OPTION[cull_key]
    assert option_name is not None
    settings = settings_from(f"--config={Z2JH_SAMPLE}")
    assert setting_of(settings, option_name) == CHART_CULL_DEFAULTS[cull_key], (
        f"config/zero-to-jupyterhub.toml: {option_name} differs from the chart's "
        f"cull.{cull_key}: {CHART_CULL_DEFAULTS[cull_key]!r}"
    )


def test_zero_to_jupyterhub_sample_sets_the_chart_timeout_not_idle_culls() -> None:
    """The finding of issue 23: the recipe's ConfigMap culled after 600 s, not 3600 s."""
    assert settings_from(f"--config={Z2JH_SAMPLE}").limits.timeout == 3600
    assert settings_from().limits.timeout == 600  # idle-cull's own default differs


def test_zero_to_jupyterhub_sample_sets_only_mapped_or_inert_settings() -> None:
    mapped = {name for name in CULL_TO_OPTION.values() if name}
    extra = set_keys(Z2JH_SAMPLE) - mapped
    assert extra <= set(INERT_UNTIL_ENABLED), f"settings the chart never had: {extra}"
    settings = settings_from(f"--config={Z2JH_SAMPLE}")
    for name, switch in INERT_UNTIL_ENABLED.items():
        if name in extra:
            assert setting_of(settings, switch) is False, f"{name} is used only with {switch}"


def test_general_sample_sets_nothing_but_idle_culls_own_defaults() -> None:
    """config/idle-cull.toml shows settings without changing them: a pass reading it
    runs exactly as one without --config."""
    assert set_keys(GENERAL_SAMPLE), "the sample sets nothing at all"
    with_file = settings_from(f"--config={GENERAL_SAMPLE}")
    without = settings_from()
    for key in set_keys(GENERAL_SAMPLE):
        assert setting_of(with_file, key) == setting_of(without, key), key


def test_general_sample_says_its_timeout_is_not_the_charts() -> None:
    """Its timeout's comment sends zero-to-jupyterhub operators to their own sample."""
    text = GENERAL_SAMPLE.read_text(encoding="utf-8")
    comment = text[: text.index("\ntimeout =")].rsplit("\n\n", 1)[-1]
    assert "3600" in comment
    assert "config/zero-to-jupyterhub.toml" in comment


def _doc_table() -> dict[str, tuple[str, str]]:
    """``cull.<key>`` -> (chart default, idle-cull setting cell) from the how-to's table."""
    rows: dict[str, tuple[str, str]] = {}
    for line in KUBERNETES_DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`cull\.(\w+)`\s*\|\s*`([^`]*)`\s*\|([^|]*)\|", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3).strip())
    return rows


def test_kubernetes_doc_maps_every_cull_value() -> None:
    rows = _doc_table()
    assert set(rows) == set(CHART_CULL_DEFAULTS), "the table must list every cull.* value"
    for key, (default, setting_cell) in rows.items():
        expected = CHART_CULL_DEFAULTS[key]
        shown = str(expected).lower() if isinstance(expected, bool) else str(expected)
        assert default == shown, f"cull.{key}: the chart's default is {shown}"
        option_name = CULL_TO_OPTION[key]
        if option_name is None:
            assert setting_cell.startswith("none"), f"cull.{key} is not a setting"
        else:
            assert setting_cell == f"`{option_name}`", f"cull.{key} maps to {option_name}"


def test_kubernetes_doc_says_samples_never_change_behaviour_silently() -> None:
    text = " ".join(KUBERNETES_DOC.read_text(encoding="utf-8").split())
    assert "Samples never change behaviour silently" in text
