"""The parse-and-check function of each kind of option value, and its click type.

A value reaches an option from the command line or the environment (text), or from a
config file (a TOML or upstream ``.py`` file: text, numbers or booleans). Every one of
them goes through the same function here, whichever the source: the click type calls
it, and ``config_file`` passes file values through the same click type. So a check
made for the command line (a negative duration, NaN, a concurrency beyond its bound)
cannot be skipped by writing the value in a file, where a number arrives already typed.
"""

from __future__ import annotations

import math
from typing import Any

import click

from idle_cull.durations import check_seconds, parse_duration
from idle_cull.errors import ConfigError

__all__ = [
    "Count",
    "Duration",
    "HubURL",
    "NamedDuration",
    "Share",
    "count_value",
    "duration_value",
    "share_value",
]


def duration_value(value: object, *, what: str, positive: bool = False) -> float:
    """Seconds from text (``90m``) or a number (a config file's ``600``), checked."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} takes a duration (600, 90m, 2h), not true/false")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            seconds = math.inf
        return check_seconds(seconds, what=what, shown=repr(value), positive=positive)
    return parse_duration(str(value), what=what, positive=positive)


def count_value(
    value: object, *, what: str, minimum: int, maximum: int | None = None, why: str = ""
) -> int:
    """A whole number from text or a number, within ``minimum`` and ``maximum``.

    ``why`` ends the message for a value above ``maximum``: a bound is only useful to an
    operator who is told what it protects.
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        number = _whole(value.strip())
    if number is None:
        raise ConfigError(f"{what} must be a whole number, got {value!r}")
    if number < minimum:
        raise ConfigError(f"{what} must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{what} must be at most {maximum}{why}, got {number}")
    return number


def _whole(text: str) -> int | None:
    """``"10"``, and ``"10.0"`` or ``"1e3"`` as a file's number ``10.0`` is taken too."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def share_value(value: object, *, what: str) -> float:
    """A share from 0 to 1 (``0.5`` is half), from text or a number; NaN refused.

    Percentages (``50%``, ``50``) are refused, not converted: a cap read one way by the
    operator and another by the tool is no cap. The refusal says the fraction meant.
    """
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        if isinstance(value, bool):
            raise ValueError(text)
        number = float(value) if isinstance(value, (int, float)) else float(text.removesuffix("%"))
    except ValueError:
        raise ConfigError(
            f"{what}: {text!r} is not a number: write a fraction from 0 to 1, e.g. 0.5"
        ) from None
    if percent or not 0 <= number <= 1:  # NaN is not in range either
        raise ConfigError(f"{what}: {_not_a_fraction(text, number, percent=percent)}")
    return number


def _not_a_fraction(text: str, number: float, *, percent: bool) -> str:
    """What is wrong and the value meant: ``50% is a percentage: write 0.5 (...)``."""
    meant = f"write {number / 100:g} (a fraction from 0 to 1)"
    if percent and 0 <= number <= 100:
        return f"{text} is a percentage: {meant}"
    if 1 < number <= 100:
        return f"{text} is more than 1: for {number:g}%, {meant}"
    return f"{text} is not a fraction from 0 to 1: write e.g. 0.5 for half"


def _what(param: click.Parameter | None, default: str) -> str:
    return param.opts[0] if param is not None and param.opts else default


class Duration(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """Seconds, or human units: 600, 90m, 2h, 30d; ``positive`` refuses 0."""

    name = "duration"

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            return duration_value(value, what=_what(param, "duration"), positive=self.positive)
        except ConfigError as error:
            self.fail(str(error), param, ctx)


class NamedDuration(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """``NAME=DURATION`` pairs such as ``gpu=2h`` for the per-group/profile/server limits."""

    name = "name=duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, float]:
        option = _what(param, "option")
        try:
            if isinstance(value, tuple):  # converted once already (a config file's value)
                name, seconds = value
                return name, duration_value(seconds, what=f"{option} {name}")
            name, sep, duration = str(value).rpartition("=")
            if not sep or not name:
                self.fail(f"{value!r} is not NAME=DURATION (e.g. gpu=2h)", param, ctx)
            return name, duration_value(duration, what=f"{option} {name}")
        except ConfigError as error:
            self.fail(str(error), param, ctx)


class Count(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A whole number within bounds (``count_value``)."""

    name = "integer"

    def __init__(self, minimum: int, maximum: int | None = None, *, why: str = "") -> None:
        self.minimum, self.maximum, self.why = minimum, maximum, why

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return count_value(
                value,
                what=_what(param, "number"),
                minimum=self.minimum,
                maximum=self.maximum,
                why=self.why,
            )
        except ConfigError as error:
            self.fail(str(error), param, ctx)


class Share(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A share between 0 and 1 (``share_value``)."""

    name = "share"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            return share_value(value, what=_what(param, "share"))
        except ConfigError as error:
            self.fail(str(error), param, ctx)


class HubURL(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A URL as given (the hub's API, the proxy's), without trailing slashes; ``Settings``
    validates it (``idle_cull.urls``), wherever it came from."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value).rstrip("/")
