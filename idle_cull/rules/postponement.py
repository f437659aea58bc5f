"""What a user's keep-alive file asks for, and until when it keeps a server (pure).

A user writes an end time or a duration into ``keep-alive.txt`` in their server's root
directory (``echo 18:00 > ~/keep-alive.txt``); ``evidence.keep_alive`` reads it through
the server's contents API. Here ``read_request`` parses what the user wrote and
``postponement`` decides, from the file's content, its ``last_modified``, ``now`` and the
operator's limit, until when the server is kept and why. Nothing the file holds can raise
out of it or keep a server longer than ``limit`` after ``min(last_modified, now)``: a
modification time in the future (``touch -d 2099-01-01``) is refused, not trusted. So a
server is kept for ever only by a user who keeps coming back to rewrite the file, which
is activity anyway.

Why this file name: it is visible (jupyter_server refuses to serve hidden files by
default, ``ContentsManager.allow_hidden = False``, and JupyterLab's file browser hides
them, so ``.idle-cull-keep`` would not work on most hubs and users could not see it); it
is lower case with no space or shell character, so it is typed as it reads; ``.txt``
opens in JupyterLab's text editor from the file browser; and it says what it does.

Time zone rule: a time without a date or offset (``18:00``) is the next such time after
the file was written, on the clock of ``zone`` (``--postpone-timezone``: the hub's users
share it); an ISO date-time may carry its own offset (``2026-12-07T18:00+01:00``); a
duration (``2h``) needs no zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from idle_cull.durations import format_duration
from idle_cull.safe_text import printable

__all__ = [
    "CLOCK_SKEW",
    "KEEP_ALIVE_FILE",
    "MAX_CONTENT_CHARS",
    "KeepAliveError",
    "KeepAliveFile",
    "Postponement",
    "Reading",
    "postponement",
    "read_request",
]

KEEP_ALIVE_FILE = "keep-alive.txt"
MAX_CONTENT_CHARS = 64  # "2026-12-07T18:00:00+01:00" and a newline fit many times over
CLOCK_SKEW = 300.0  # seconds a server's clock may run ahead of the culler's

_DURATION = re.compile(r"(?:\d{1,6}(?:\.\d{1,3})?[smhdw]){1,5}", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CLOCK_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)", re.ASCII)
_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ]([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?(Z|[+-]\d{2}:\d{2})?",
    re.ASCII | re.IGNORECASE,
)
HOW_TO_WRITE = "write an end time like 18:00 or a duration like 2h"


class KeepAliveError(ValueError):
    """What the user wrote cannot be a postponement; the message says why, for the report."""


@dataclass(frozen=True)
class KeepAliveFile:
    """The file as the contents API gave it."""

    content: str
    last_modified: datetime  # aware UTC, from the server's clock


@dataclass(frozen=True)
class Reading:
    """What reading a server's keep-alive file found: the file, or why there is none."""

    file: KeepAliveFile | None
    reason: str = ""  # why ``file`` is None: "no keep-alive file", "HTTP 500", ...
    requests: int = 0  # how many requests reading it took (the report's attempts)


@dataclass(frozen=True)
class Postponement:
    """Until when the user asked to keep the server, bounded; ``until`` is ``None`` when
    the file postpones nothing (and ``reason`` says why)."""

    until: datetime | None
    reason: str

    def keeps(self, now: datetime) -> bool:
        return self.until is not None and self.until > now


def read_request(text: str, written: datetime, zone: tzinfo) -> datetime:
    """The moment the user asked for, from the file's text; raises ``KeepAliveError``.

    ``written`` (the file's last_modified, aware) anchors a duration and a clock time:
    ``2h`` is two hours after writing, ``18:00`` the next 18:00 after writing in ``zone``.
    """
    cleaned = text.strip()
    if not cleaned:
        raise KeepAliveError(f"the file is empty; {HOW_TO_WRITE}")
    if len(cleaned) > MAX_CONTENT_CHARS or not cleaned.isprintable():
        raise KeepAliveError(f"the file holds more than one short line; {HOW_TO_WRITE}")
    lowered = cleaned.lower()
    if _DURATION.fullmatch(lowered):
        return _later(written, _duration_seconds(lowered))
    clock = _CLOCK_TIME.fullmatch(cleaned)
    if clock:
        return _next_clock_time(int(clock[1]), int(clock[2]), written, zone)
    stamp = _DATE_TIME.fullmatch(cleaned)
    if stamp:
        return _date_time(stamp, zone)
    shown = printable(cleaned[:24])
    raise KeepAliveError(f"{shown!r} is not an end time or a duration; {HOW_TO_WRITE}")


def _later(moment: datetime, seconds: float) -> datetime:
    """``moment`` plus ``seconds``, saturating at the end of the calendar instead of raising."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return datetime.max.replace(tzinfo=timezone.utc)


def _duration_seconds(text: str) -> float:
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhdw])", text)
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _next_clock_time(hour: int, minute: int, written: datetime, zone: tzinfo) -> datetime:
    """The first ``hour:minute`` in ``zone`` after ``written``: 09:00 written at 22:00 is
    tomorrow morning, which is what a user who writes it at night means."""
    local = written.astimezone(zone)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local:
        candidate = (candidate.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
    return candidate.astimezone(timezone.utc)


def _date_time(match: re.Match[str], zone: tzinfo) -> datetime:
    day, hour, minute, second, offset = match.groups()
    naive = f"{day}T{hour}:{minute}:{second or '00'}"
    try:
        moment = datetime.fromisoformat(naive)
        if offset:
            offset = "+00:00" if offset.upper() == "Z" else offset
            moment = datetime.fromisoformat(naive + offset)
        else:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise KeepAliveError(f"{match[0]!r} is not a date and time that exists") from None


def postponement(reading: Reading, now: datetime, limit: float, zone: tzinfo) -> Postponement:
    """Until when ``reading`` keeps the server: never past ``limit`` seconds after the file
    was written (or ``now``, whichever is earlier), never when the limit is 0.

    Pure: ``now`` and the limit come in, the bound and its reason go out, for the report
    (``user postponed until 18:00 (limit 8h)``).
    """
    if limit <= 0:
        return Postponement(None, "postponing is off (limit 0)")
    if reading.file is None:
        return Postponement(None, reading.reason or "no keep-alive file")
    written = reading.file.last_modified
    if (written - now).total_seconds() > CLOCK_SKEW:
        return Postponement(None, "ignored: the file's modification time is in the future")
    anchor = min(written, now)
    try:
        asked = read_request(reading.file.content, anchor, zone)
    except KeepAliveError as error:
        return Postponement(None, f"ignored: {error}")
    except OverflowError:  # a clock time on a date at the very edge of the calendar
        return Postponement(None, "ignored: the file's modification time is out of range")
    bound = _later(anchor, limit)
    until = min(asked, bound)
    shown = _moment(until, now, zone)
    limited = f"limit {format_duration(limit)}"
    if until <= now:
        return Postponement(None, f"postponement ended at {shown} ({limited})")
    if asked > bound:
        return Postponement(until, f"user postponed until {shown} (asked for later; {limited})")
    return Postponement(until, f"user postponed until {shown} ({limited})")


def _moment(moment: datetime, now: datetime, zone: tzinfo) -> str:
    """``18:00`` today, ``2026-12-08 02:00`` another day, on the clock of ``zone``."""
    local = moment.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return f"{local:%H:%M}"
    return f"{local.date().isoformat()} {local:%H:%M}"  # %Y drops a year's leading zeros
