"""Reading a user's keep-alive file, and the file as a source of evidence.

``KeepAliveReader`` fetches ``keep-alive.txt`` from a server's root directory with the
user's own probe token (``probe_tokens``), never the culler's, ``no_track_activity=1``,
through the bounded transport: first its model without content (a directory, a large
file or a missing one costs the server nothing), then its text, capped. Every failure is
a ``Reading`` without a file and with a reason, so the pass falls back to the decision it
would have made without the file. ``KeepAliveSource`` (``--postpone-limit``) asks it about
each server the pass is about to stop and lets ``rules.postponement`` decide.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone, tzinfo
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from idle_cull.evidence.base import Asks, Target
from idle_cull.evidence.probe_tokens import ExpectedServers, ProbeTarget, ProbeTokens
from idle_cull.evidence.proxy_routes import Locator, NoAddress
from idle_cull.evidence.server_api import Failed, Failure, ServerAPI
from idle_cull.models import RecordError, parse_timestamp
from idle_cull.rules.evidence import Finding
from idle_cull.rules.postponement import (
    KEEP_ALIVE_FILE,
    MAX_CONTENT_CHARS,
    KeepAliveFile,
    Postponement,
    Reading,
    postponement,
)
from idle_cull.safe_text import printable
from idle_cull.transport import read_json

__all__ = ["KeepAliveReader", "KeepAliveSource", "PostponeLimits", "postponed"]

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 16 * 1024  # a contents model around at most 64 characters of text
READ_TIMEOUT = 5.0  # seconds for each request: a Jupyter server answers in milliseconds


class KeepAliveReader:
    """Reads servers' keep-alive files where ``locate`` says (``evidence.proxy_routes``:
    through the proxy, or at the route's target); thread-safe.

    Like ``kernel_api.KernelProbe``: redirects are never followed, the token goes only
    where the locator allows, credentials never come from the environment (netrc), and
    every answer is bounded in time and size.
    """

    def __init__(
        self,
        locate: Locator,
        *,
        timeout: float = READ_TIMEOUT,
        file_name: str = KEEP_ALIVE_FILE,
        pool_size: int = 10,
        session: requests.Session | None = None,
        give_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self._locate = locate
        self._api = ServerAPI(
            locate.proxy_url,
            timeout=timeout,
            max_bytes=MAX_ANSWER_BYTES,
            pool_size=pool_size,
            session=session,
            give_up=give_up,
        )
        self._file = quote(file_name, safe="")

    def close(self) -> None:
        self._api.close()

    def url_for(self, target: ProbeTarget) -> str | NoAddress:
        """The file's contents-API URL, or why the server cannot be read safely (the
        user's token must never leave for another host, nor go to someone else's server)."""
        base = self._locate(target)
        return base if isinstance(base, NoAddress) else f"{base}api/contents/{self._file}"

    def read(self, target: ProbeTarget, token: Callable[[], str]) -> Reading:
        """The keep-alive file of the server ``target`` names, or why not.

        ``token`` gives the user's own token, asked for only once the url is usable;
        whatever it raises propagates (the caller turns it into this server's reason).
        """
        url = self.url_for(target)
        if isinstance(url, NoAddress):
            return Reading(None, url.reason)
        secret = token()
        model = self._get(url, secret, content="0")
        if isinstance(model, Reading):
            return replace(model, requests=1)
        problem = _not_a_small_file(model)
        if problem:
            return Reading(None, problem, requests=1)
        model = self._get(url, secret, content="1", type="file", format="text")
        if isinstance(model, Reading):
            return replace(model, requests=2)
        return replace(_file_from(model), requests=2)

    def _get(self, url: str, token: str, **query: str) -> dict[str, Any] | Reading:
        """One contents-API request: its JSON model, or the ``Reading`` that explains why not."""
        started = time.monotonic()
        answer = self._api.get(url, token, params=query)
        if isinstance(answer, Failure):
            return Reading(None, _not_read(answer))
        status = answer.status
        took = time.monotonic() - started
        log.debug("keep-alive file at %s: HTTP %d in %.2fs", _path(url), status, took)
        if status == 404:
            # jupyter_server's own 404 is plain text; a server without a contents API
            # (RStudio, code-server) answers 404 too: either way there is no file to read.
            return Reading(None, "no keep-alive file")
        try:
            body: Any = read_json(answer.content)
        except ValueError:
            body = None
        if status == 400 and query.get("content") == "1":
            return Reading(None, "ignored: not a text file")
        if status != 200:
            return Reading(None, f"not read: HTTP {status}")
        if not isinstance(body, dict):
            return Reading(None, "not read: the answer is not a contents model")
        return body


def _not_read(failure: Failure) -> str:
    """The reading's reason for a request that got no answer."""
    if failure.how is Failed.ABANDONED:
        return "not read: the pass is stopping"
    if failure.how is Failed.TOO_LARGE:
        return f"ignored: {failure.reason}"
    if failure.how is Failed.CONNECTION:
        return f"not read: {failure.error}"
    return f"not read: {failure.reason}"


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


# -- the source of evidence -------------------------------------------------------------------


@dataclass(frozen=True)
class PostponeLimits:
    """The operator's bounds on what a keep-alive file can do."""

    limit: float = 0.0  # seconds after the file was written (--postpone-limit); 0: off
    max_age: bool = False  # whether --max-age may be postponed (--postpone-max-age)
    zone: tzinfo = timezone.utc  # for times without a zone (--postpone-timezone)


class KeepAliveSource:
    """``--postpone-limit`` as a source of evidence: a postponement the user wrote keeps
    a server the pass is about to stop; thread-safe.

    Asked after the re-check, like the kernel probe, with the same per-user token (one
    per user per pass, ``probe_tokens``). Not for a server ``--max-age`` stops unless
    ``--postpone-max-age``. A dry run reads nothing: a successful read is proxied traffic,
    which the hub counts as activity. Whatever goes wrong while reading one server's file
    (an exception of any kind included) is "no postponement" for that server only.
    """

    name = "keep-alive"
    asks = Asks.CANDIDATES

    def __init__(
        self,
        reader: KeepAliveReader,
        tokens: ProbeTokens,
        limits: PostponeLimits,
        max_age: float,
    ) -> None:
        self._reader = reader
        self._tokens = tokens
        self._limits = limits
        self._max_age = max_age
        self._expected = ExpectedServers()

    def wanted(self, target: Target) -> bool:
        if self._limits.max_age or self._max_age <= 0 or target.age_seconds is None:
            return True
        return target.age_seconds < self._max_age

    def expect(self, targets: Sequence[Target]) -> None:
        """A user with several servers read gets one token for all (as the probe's)."""
        self._expected.expect(targets)

    def would_gather(self, target: Target) -> Finding:
        """Dry run: this server's keep-alive file would be read; nothing is sent."""
        return Finding(self.name, detail=None)

    def gather(self, target: Target, now: datetime) -> Finding:
        reading = self._read(target)
        decided = postponement(reading, now, self._limits.limit, self._limits.zone)
        keeps = decided.keeps(now)
        level = logging.INFO if keeps or reading.file is not None else logging.DEBUG
        log.log(level, "keep-alive file of server %s: %s", target.label, decided.reason)
        return Finding(
            self.name,
            keep=decided.reason if keeps else None,
            failed=reading.reason if reading.reason.startswith("not read") else None,
            attempts=reading.requests,
            detail=decided,
        )

    def _read(self, target: Target) -> Reading:
        probe = self._expected.target_for(target)
        try:
            return self._reader.read(probe, lambda: self._tokens.token_for(probe))
        except Exception as error:  # the structural boundary: see the class docstring
            return Reading(None, f"not read: unexpected {type(error).__name__}")


def postponed(found: Sequence[Finding]) -> Postponement | None:
    """The keep-alive source's decision among a server's findings, if it was asked."""
    for finding in found:
        if finding.source == KeepAliveSource.name and isinstance(finding.detail, Postponement):
            return finding.detail
    return None
