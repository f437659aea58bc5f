"""Each option's value is checked once, by its type (``command.values``, ``click.Choice``).

``Settings`` no longer repeats these checks (issue 22.6): every source (command line,
environment, TOML, upstream's file) reaches the option through its type, so the fact is
asserted here, at the one place that checks it. ``tests/command/test_settings_checks.py`` runs
the same refusals through every source.
"""

from __future__ import annotations

import click
import pytest

from idle_cull.command.options import OPTIONS

BY_NAME = {option.name: option for option in OPTIONS}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        # moved from tests/test_config.py (now tests/command/test_settings.py)::test_settings_validation
        pytest.param("concurrency", "0", "--concurrency", id="zero-concurrency"),
        pytest.param("api-page-size", "-1", "--api-page-size", id="negative-page-size"),
        pytest.param("request-timeout", "0", "--request-timeout", id="zero-request-timeout"),
        # moved from tests/command/test_settings_checks.py::test_concurrency_is_bounded_at_its_...
        pytest.param("concurrency", str(10**9), "--concurrency must be at most 100", id="huge"),
        # moved from tests/test_busy_policy.py (now tests/rules/test_busy_kernels.py)::test_an_unknown_probe_failure_setting_is_...
        pytest.param("probe-failure", "maybe", "'maybe' is not one of 'keep', 'cull'", id="choice"),
    ],
)
def test_a_value_is_refused_by_its_options_type(name: str, value: str, message: str) -> None:
    option = BY_NAME[name]
    assert option.type is not None
    with pytest.raises(click.BadParameter, match=message):
        option.type.convert(value, click.Option([option.flag]), None)
