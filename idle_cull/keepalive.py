"""The keep-alive file: a user postpones the cull of their own server, within a limit.

A user writes an end time or a duration into ``keep-alive.txt`` in their server's root
directory (``echo 18:00 > ~/keep-alive.txt``); idle-cull reads it through the server's
contents API and keeps the server until then, never longer than the operator's limit
counted from when the file was last written. So a server is kept for ever only by a user
who keeps coming back to rewrite the file, which is activity anyway.

Why this file name: it is visible (jupyter_server refuses to serve hidden files by
default, ``ContentsManager.allow_hidden = False``, and JupyterLab's file browser hides
them, so ``.idle-cull-keep`` would not work on most hubs and users could not see it); it
is lower case with no space or shell character, so it is typed as it reads; ``.txt``
opens in JupyterLab's text editor from the file browser; and it says what it does.

Two parts:

- pure: ``read_request`` parses what the user wrote and ``postponement`` decides, from
  the file's content, its ``last_modified``, ``now`` and the limit, until when the server
  is kept and why. Nothing the file holds can raise out of it or keep a server longer
  than ``limit`` after ``min(last_modified, now)``: a modification time in the future
  (``touch -d 2099-01-01``) is refused, not trusted.
- I/O: ``KeepAliveReader`` fetches the file with the user's own probe token
  (``probe_tokens``), never the culler's, ``no_track_activity=1``, through the bounded
  transport, first its model without content (a directory, a large file or a missing
  one costs the server nothing), then its text, capped. Every failure is "no
  postponement" with a reason, so the pass falls back to the decision it would have
  made without the file.

Time zone rule: a time without a date or offset (``18:00``) is the next such time after
the file was written, on the clock of ``zone`` (the operator's setting: the hub's users
share it); an ISO date-time may carry its own offset (``2026-12-07T18:00+01:00``); a
duration (``2h``) needs no zone.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from idle_cull import __version__
from idle_cull.durations import format_duration
from idle_cull.environment import check_ca_bundle, check_proxies
from idle_cull.models import RecordError, parse_timestamp
from idle_cull.safe_text import printable
from idle_cull.transport import (
    AnswerTooLarge,
    BoundedTransport,
    RequestAbandoned,
    RequestBounds,
    read_json,
)

__all__ = [
    "CLOCK_SKEW",
    "KEEP_ALIVE_FILE",
    "MAX_CONTENT_CHARS",
    "KeepAliveFile",
    "KeepAliveReader",
    "Postponement",
    "Reading",
    "postponement",
    "read_request",
]

log = logging.getLogger(__name__)

KEEP_ALIVE_FILE = "keep-alive.txt"
MAX_CONTENT_CHARS = 64  # "2026-12-07T18:00:00+01:00" and a newline fit many times over
MAX_ANSWER_BYTES = 16 * 1024  # a contents model around at most 64 characters of text
CLOCK_SKEW = 300.0  # seconds a server's clock may run ahead of the culler's
READ_TIMEOUT = 5.0  # seconds for each request: a Jupyter server answers in milliseconds

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


# -- the pure part ---------------------------------------------------------------------------


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


# -- the reading part ------------------------------------------------------------------------


class KeepAliveReader:
    """Reads servers' keep-alive files at ``proxy_url`` + the server model's ``url``; thread-safe.

    Like ``kernels.KernelProbe``: redirects are never followed, the token goes only to the
    configured proxy's origin, credentials never come from the environment (netrc), and
    every answer is bounded in time and size.
    """

    def __init__(
        self,
        proxy_url: str,
        *,
        timeout: float = READ_TIMEOUT,
        file_name: str = KEEP_ALIVE_FILE,
        pool_size: int = 10,
        session: requests.Session | None = None,
        give_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self.proxy_url = proxy_url.rstrip("/")
        self._origin = urlsplit(self.proxy_url).netloc
        self._file = quote(file_name, safe="")
        self._timeout = timeout
        self._session = session or requests.Session()
        settings = self._session.merge_environment_settings(self.proxy_url, {}, None, None, None)
        check_proxies(settings["proxies"])
        check_ca_bundle(settings["verify"], self.proxy_url)
        self._session.trust_env = False  # no ~/.netrc replacing the token
        self._session.proxies.update(settings["proxies"])
        self._session.verify = settings["verify"]
        self._session.headers["User-Agent"] = f"idle-cull/{__version__}"
        bounds = RequestBounds(whole=timeout, connect=timeout, max_bytes=MAX_ANSWER_BYTES)
        self._transport = BoundedTransport(
            self._session, bounds, pool_size=pool_size, stop_requested=give_up
        )

    def close(self) -> None:
        self._transport.close()

    def url_for(self, server_url: str) -> str | None:
        """The file's contents-API URL, or ``None`` when the server's ``url`` is not a plain
        path (the user's token must never leave for another host)."""
        if not server_url.startswith("/") or server_url.startswith("//"):
            return None
        url = f"{self.proxy_url}{server_url.rstrip('/')}/api/contents/{self._file}"
        parts = urlsplit(url)
        if parts.netloc != self._origin or parts.query or parts.fragment:
            return None
        return url

    def read(self, server_url: str | None, token: Callable[[], str]) -> Reading:
        """The keep-alive file of the server at ``server_url`` (``/user/ann/``), or why not.

        ``token`` gives the user's own token, asked for only once the url is usable;
        whatever it raises propagates (the caller turns it into this server's reason).
        """
        url = self.url_for(server_url) if server_url else None
        if url is None:
            return Reading(None, f"the hub gave no usable server url ({server_url!r})")
        secret = token()
        model = self._get(url, secret, content="0")
        if isinstance(model, Reading):
            return model
        problem = _not_a_small_file(model)
        if problem:
            return Reading(None, problem)
        model = self._get(url, secret, content="1", type="file", format="text")
        if isinstance(model, Reading):
            return model
        return _file_from(model)

    def _get(self, url: str, token: str, **query: str) -> dict[str, Any] | Reading:
        """One contents-API request: its JSON model, or the ``Reading`` that explains why not."""
        started = time.monotonic()
        try:
            response = self._transport.request(
                "GET",
                url,
                params={**query, "no_track_activity": "1"},
                headers={"Accept": "application/json", "Authorization": f"token {token}"},
            )
        except RequestAbandoned:
            return Reading(None, "not read: the pass is stopping")
        except AnswerTooLarge:
            return Reading(None, f"ignored: answer larger than {MAX_ANSWER_BYTES // 1024} KiB")
        except requests.Timeout:
            return Reading(None, f"not read: no answer within {self._timeout:g}s")
        except requests.RequestException as error:
            return Reading(None, f"not read: {type(error).__name__}")
        status = response.status_code
        took = time.monotonic() - started
        log.debug("keep-alive file at %s: HTTP %d in %.2fs", _path(url), status, took)
        if status == 404:
            # jupyter_server's own 404 is plain text; a server without a contents API
            # (RStudio, code-server) answers 404 too: either way there is no file to read.
            return Reading(None, "no keep-alive file")
        try:
            body: Any = read_json(response.content)
        except ValueError:
            body = None
        if status == 400 and query.get("content") == "1":
            return Reading(None, "ignored: not a text file")
        if status != 200:
            return Reading(None, f"not read: HTTP {status}")
        if not isinstance(body, dict):
            return Reading(None, "not read: the answer is not a contents model")
        return body


def _not_a_small_file(model: dict[str, Any]) -> str | None:
    """Why a content-less model is not worth asking the content of, or ``None``."""
    kind = model.get("type")
    if kind != "file":
        return f"ignored: {KEEP_ALIVE_FILE} is a {printable(str(kind))[:20]}, not a file"
    size = model.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size > MAX_CONTENT_CHARS * 4:
        return f"ignored: the file is {size:,} bytes, more than a time or duration"
    return None


def _file_from(model: dict[str, Any]) -> Reading:
    content = model.get("content")
    if model.get("type") != "file" or not isinstance(content, str):
        return Reading(None, "ignored: not a text file")
    if len(content) > MAX_CONTENT_CHARS * 4:
        return Reading(None, "ignored: the file is longer than a time or duration")
    try:
        written = parse_timestamp(model.get("last_modified"), field="last_modified")
    except RecordError:
        written = None
    if written is None:
        return Reading(None, "ignored: the server gave no usable last_modified")
    return Reading(KeepAliveFile(content, written))


def _path(url: str) -> str:
    return urlsplit(url).path
