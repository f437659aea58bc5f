"""Durations as operators write them (``90m``) and as logs show them (``idle_cull.durations``)."""

from __future__ import annotations

import pytest

from idle_cull.durations import format_duration, parse_duration
from idle_cull.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("600", 600),
        ("0", 0),
        ("1.5", 1.5),
        ("90m", 5400),
        ("2h", 7200),
        ("1h30m", 5400),
        ("30d", 2592000),
        ("45s", 45),
        ("1w", 604800),
        (" 2H ", 7200),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["-5", "ten", "", "5x", "1h-3m", "nan", "inf", "h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text, what="--timeout")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(45, "45s", id="seconds"),
        pytest.param(1.5, "1.5s", id="fraction-under-ten"),
        pytest.param(59.9, "59s", id="under-a-minute-rounds-down"),
        pytest.param(60, "1m", id="exact-minute"),
        pytest.param(3599, "59m59s", id="two-units"),
        pytest.param(-90, "-1m30s", id="negative"),
        pytest.param(7800, "2h10m", id="hours-minutes"),
        pytest.param(7200, "2h", id="exact-hours"),
        pytest.param(7226, "2h0m", id="zero-middle-minutes-kept"),
        pytest.param(7259, "2h0m", id="rounds-down-not-up"),
        pytest.param(86426, "1d0h", id="zero-middle-hours-kept"),
        pytest.param(86400, "1d", id="exact-day"),
        pytest.param(90061, "1d1h", id="days-hours"),
        pytest.param(3600 + 59, "1h0m", id="below-next-minute"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
