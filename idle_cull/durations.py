"""Durations as operators write them (``600``, ``90m``, ``2h``) and as logs show them."""

from __future__ import annotations

import math
import re

from idle_cull.errors import ConfigError

__all__ = ["SKEW_WORTH_MENTIONING", "format_duration", "parse_duration", "skew_phrase"]

# The Date header has one-second resolution and is truncated, so a measured skew below
# two seconds can be nothing but that rounding.
SKEW_WORTH_MENTIONING = 2.0

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_FORMAT_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str, *, what: str = "duration") -> float:
    """Seconds from ``"600"``, ``"90m"``, ``"2h"``, ``"1h30m"`` or ``"30d"``.

    Operators paste upstream command lines in plain seconds, and write new ones in
    human units; both must mean the same thing everywhere a duration is accepted.
    """
    cleaned = text.strip().lower()
    try:
        seconds = float(cleaned)
    except ValueError:
        seconds = _parse_unit_duration(cleaned, text, what)
    if math.isnan(seconds) or seconds < 0 or math.isinf(seconds):
        raise ConfigError(f"{what} must be zero or a positive number of seconds, got {text!r}")
    return seconds


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
