"""The clock line: skew is logged only when the Date header can show it, with a sign that reads right."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import responses

from tests.support.cli import run
from tests.support.emulated_hub import URL, EmulatedHub


def serve_hub_clock(emulated_hub: EmulatedHub, offset: float) -> None:
    """An empty hub whose Date header runs ``offset`` seconds ahead of this machine."""
    date = {
        "Date": format_datetime(datetime.now(timezone.utc) + timedelta(seconds=offset), usegmt=True)
    }
    emulated_hub.replace(responses.GET, f"{URL}/", json={"version": "6.1.1"}, headers=date)
    page = {"items": [], "_pagination": {"offset": 0, "limit": 50, "total": 0, "next": None}}
    emulated_hub.get(f"{URL}/users", json=page, headers=date)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        pytest.param(0, None, id="same-clock-says-nothing"),
        pytest.param(0.6, None, id="under-the-header-resolution"),
        pytest.param(-0.6, None, id="under-the-header-resolution-negative"),
        pytest.param(
            10, r"INFO this machine's clock is \d+(\.\d)?s behind the hub's", id="we-are-behind"
        ),
        pytest.param(
            -10, r"INFO this machine's clock is \d+(\.\d)?s ahead of the hub's", id="we-are-ahead"
        ),
        pytest.param(
            -7200, r"WARNING this machine's clock is 2h ahead of the hub's", id="large-skew-warns"
        ),
        pytest.param(
            7200,
            r"WARNING this machine's clock is (1h59m|2h) behind the hub's",
            id="large-skew-behind-warns",
        ),
    ],
)
def test_clock_line(emulated_hub: EmulatedHub, offset: float, expected: str | None) -> None:
    serve_hub_clock(emulated_hub, offset)
    # Two hours apart, the hub's clock refuses the pass (exit 6, tests/test_hardening.py);
    # with --allow-clock-skew, the hub's clock is used and the skew only logged.
    result = run("--dry-run", *(["--allow-clock-skew"] if abs(offset) > 300 else []))
    assert result.exit_code == 0, result.stderr
    assert "differs by" not in result.stderr
    if expected is None:
        assert "measuring idleness on the hub's clock\n" in result.stderr
        assert "clock is" not in result.stderr
    else:
        assert re.search(expected, result.stderr), result.stderr
