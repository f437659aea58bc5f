"""How far the hub's clock and this machine's may disagree (``idle_cull.rules.clocks``).

The refusal itself, end to end, is in ``tests/test_hardening.py`` (class 1).
"""

from __future__ import annotations

import pytest

from idle_cull.rules.clocks import skew_limit
from idle_cull.rules.policy import CullLimits


@pytest.mark.parametrize(
    ("limits", "tolerated"),
    [
        pytest.param(CullLimits(timeout=3600), 300, id="an-hour-allows-5m"),
        pytest.param(CullLimits(timeout=600), 150, id="default-10m-allows-a-quarter"),
        pytest.param(
            CullLimits(timeout=3600, group_timeouts=(("quick", 120),)),
            30,
            id="smallest-rule-counts",
        ),
        pytest.param(CullLimits(timeout=3600, max_age=400), 100, id="max-age-counts"),
        pytest.param(CullLimits(timeout=3), 5, id="floor-for-the-header-resolution"),
        pytest.param(CullLimits(timeout=0, max_age=0), 300, id="no-limit-in-use"),
    ],
)
def test_skew_limit(limits: CullLimits, tolerated: float) -> None:
    assert skew_limit(limits) == tolerated
