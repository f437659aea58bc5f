"""Durations as operators write them (``600``, ``90m``, ``2h``) and as logs show them."""

from __future__ import annotations

import math
import re

from idle_cull.errors import ConfigError

__all__ = [
    "MAX_DURATION",
    "SKEW_WORTH_MENTIONING",
    "check_seconds",
    "format_duration",
    "parse_duration",
    "skew_phrase",
]

# The Date header has one-second resolution and is truncated, so a measured skew below
# two seconds can be nothing but that rounding.
SKEW_WORTH_MENTIONING = 2.0

# The longest duration any option takes: 100 years, far beyond any idle limit, and within
# what every consumer of a duration holds (``timedelta``; ``threading.TIMEOUT_MAX``, about
# 292 years on Linux, bounds ``Event.wait`` and socket timeouts). Beyond it a value cannot
# mean anything but a mistake (``1e300``), and it would fail deep in a pass instead of here.
MAX_DURATION = 100 * 365 * 86400.0

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_FORMAT_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str, *, what: str = "duration", positive: bool = False) -> float:
    """Seconds from ``"600"``, ``"90m"``, ``"2h"``, ``"1h30m"`` or ``"30d"``, checked by
    ``check_seconds``.

    Operators paste upstream command lines in plain seconds, and write new ones in
    human units; both must mean the same thing everywhere a duration is accepted.
    """
    cleaned = text.strip().lower()
    try:
        seconds = float(cleaned)
    except ValueError:
        seconds = _parse_unit_duration(cleaned, text, what)
    return check_seconds(seconds, what=what, shown=repr(text), positive=positive)


def check_seconds(
    seconds: float, *, what: str = "duration", shown: str | None = None, positive: bool = False
) -> float:
    """``seconds`` if it is a usable duration, else ``ConfigError``: the one check every
    duration goes through, whether it was written as text (command line, environment) or
    arrived as a number (a TOML or upstream config file).

    NaN and infinities are refused (a NaN limit never fires: ``x >= nan`` is false), so
    are negative values (``-1`` would make every server "too old") and values beyond
    ``MAX_DURATION``; ``positive`` also refuses zero, for the options where 0 cannot mean
    "off" (a request timeout, a deadline).
    """
    given = repr(seconds) if shown is None else shown
    low = "a positive" if positive else "zero or a positive"
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0 or (positive and seconds == 0):
        raise ConfigError(f"{what} must be {low} number of seconds, got {given}")
    if seconds > MAX_DURATION:
        raise ConfigError(
            f"{what} must be at most {format_duration(MAX_DURATION)} (100 years), got {given}"
        )
    return float(seconds)


def _parse_unit_duration(cleaned: str, original: str, what: str) -> float:
    parts = _DURATION_PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ConfigError(
            f"{what} {original!r} is not a duration: use seconds (600) or units like 90m, 2h, 30d"
        )
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """Short human form (``2h10m``, ``45s``) for log lines and reasons.

    At most the two most significant adjacent units, rounded down: a zero middle unit is
    never dropped (``2h0m``, not ``2h26s``, which reads like 2 h 26 m). Rounding down keeps
    comparisons honest: a value below a limit of whole units never prints as that limit.
    The second unit is left out only when nothing at all remains (``2h`` is exactly 2 h).
    """
    if seconds < 0:
        return "-" + format_duration(-seconds)
    whole = int(seconds)
    if whole < 10 and seconds != whole:
        return f"{seconds:.1f}s"
    if whole < 60:
        return f"{whole}s"
    for index, (unit, size) in enumerate(_FORMAT_UNITS[:-1]):
        if whole >= size:
            count, rest = divmod(whole, size)
            smaller, smaller_size = _FORMAT_UNITS[index + 1]
            return f"{count}{unit}" + (f"{rest // smaller_size}{smaller}" if rest else "")
    raise AssertionError("unreachable: durations of a minute or more have a unit")


def skew_phrase(skew: float | None) -> str | None:
    """``this machine's clock is 5s behind the hub's``, or ``None`` when not meaningful.

    ``skew`` is the hub's clock minus this machine's, so positive means ours is behind;
    below ``SKEW_WORTH_MENTIONING`` it is the Date header's rounding, not a skew.
    """
    if skew is None or abs(skew) < SKEW_WORTH_MENTIONING:
        return None
    direction = "behind" if skew > 0 else "ahead of"
    return f"this machine's clock is {format_duration(abs(skew))} {direction} the hub's"
