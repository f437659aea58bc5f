"""Values as a config file delivers them (TOML booleans, integers of any size): each
wrong one is a ``ConfigError`` naming the setting, never a traceback or a silent cast."""

from __future__ import annotations

import pytest

from idle_cull.command.values import duration_value, share_value
from idle_cull.errors import ConfigError


def test_true_is_not_a_duration() -> None:
    with pytest.raises(ConfigError) as caught:
        duration_value(True, what="timeout")
    assert str(caught.value) == "timeout takes a duration (600, 90m, 2h), not true/false"


def test_an_integer_too_large_for_a_float_is_refused_as_a_duration() -> None:
    huge = 10**400
    with pytest.raises(ConfigError) as caught:
        duration_value(huge, what="timeout")
    assert str(caught.value) == (
        f"timeout must be zero or a positive number of seconds, got {huge!r}"
    )


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_not_a_share(value: bool) -> None:
    text = str(value)
    with pytest.raises(ConfigError) as caught:
        share_value(value, what="max-cull-share")
    assert str(caught.value) == (
        f"max-cull-share: {text!r} is not a number: write a fraction from 0 to 1, e.g. 0.5"
    )
