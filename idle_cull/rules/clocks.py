"""How far the hub's clock and this machine's may disagree before a pass refuses to act.

With ``--clock=hub`` (the default), "now" comes from the ``Date`` header of the hub's
answers, and whoever writes that header (a front proxy such as nginx writes its own)
decides how idle every server looks. When the two clocks disagree by much, one of them
is wrong and the culler cannot know which; measured on the wrong one, an active server
looks idle. So the hub's clock fails closed past ``skew_limit``, and only
``--allow-clock-skew`` turns that into a warning: writing ``--clock=hub`` (or
``clock = "hub"`` in a config file, as ``--generate-config`` prints it) restates the
default and keeps the check. Pure functions: no I/O, no clock reads.
"""

from __future__ import annotations

from datetime import datetime

from idle_cull.durations import format_duration
from idle_cull.rules.catalogue import limits_in_force
from idle_cull.rules.policy import CullLimits

__all__ = ["MAX_SKEW", "MIN_SKEW", "SKEW_SHARE", "clocks_disagree", "skew_limit"]

MAX_SKEW = 300.0  # seconds: never tolerate more than 5 minutes
MIN_SKEW = 5.0  # seconds: the Date header has one-second resolution, plus latency
SKEW_SHARE = 0.25  # of the smallest idle limit in use


def smallest_limit(limits: CullLimits) -> float | None:
    """The smallest idle or age limit that can cull something (0 and unset are off)."""
    positive = limits_in_force(limits)
    return min(positive) if positive else None


def skew_limit(limits: CullLimits) -> float:
    """The largest disagreement tolerated: a quarter of the smallest limit in use, at
    most 5 minutes and at least 5 seconds.

    A quarter keeps the error far from any limit (a server idle for 45 minutes is never
    taken for one idle an hour); the 5-second floor absorbs the header's resolution.
    """
    smallest = smallest_limit(limits)
    share = MAX_SKEW if smallest is None else smallest * SKEW_SHARE
    return max(MIN_SKEW, min(MAX_SKEW, share))


def clocks_disagree(hub: datetime, local: datetime, limits: CullLimits) -> str | None:
    """The one-line refusal when the clocks differ by more than ``skew_limit``, else None."""
    skew = (hub - local).total_seconds()
    allowed = skew_limit(limits)
    if abs(skew) <= allowed:
        return None
    return (
        f"the hub's clock (its Date header: {hub:%Y-%m-%dT%H:%M:%SZ}) and this machine's "
        f"({local:%Y-%m-%dT%H:%M:%SZ}) differ by {format_duration(abs(skew))}, more than "
        f"the {format_duration(allowed)} tolerated (a quarter of the smallest idle limit, "
        "5s to 5m): one of them is wrong, and idleness measured on the wrong one culls "
        "active servers; nothing was culled. Fix the clock (NTP) or the Date header of a "
        "proxy in front of the hub, or say which clock is right: --clock=local (this "
        "machine's) or --allow-clock-skew (the hub's)"
    )
