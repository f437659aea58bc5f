"""Bounded HTTP for the hub client and the Pushgateway push: no answer can hold a pass.

requests bounds each socket read, not a whole answer: a peer that trickles a byte every
few seconds, or a plain-http port that never answers a TLS handshake, can hold a
request for ever, and with it the lock of every later scheduled run. Here every request:

- has a whole-answer deadline (``whole`` seconds from the first byte sent to the last
  byte read), enforced by one watchdog thread that shuts down the request's socket;
- connects and completes a TLS handshake within ``connect`` seconds, and says so when
  it was the handshake that failed (``TLSHandshakeFailed``);
- reads at most ``max_bytes`` of decoded body (gzip included), else ``AnswerTooLarge``;
- never follows a redirect (the caller decides what a 3xx means);
- is abandoned ``grace`` seconds after ``stop_requested`` turns true (a deadline or a
  signal), so a pass that was asked to stop does stop (``RequestAbandoned``).

The errors are ``requests`` exceptions, so the retry rules and the callers' mapping to
their own error messages work as for any other failure: a whole-answer timeout is a
``ReadTimeout`` (transient), the rest are not retried. A request returns an ``Answer``,
its body already read.

Only public seams of requests and urllib3 are used, so that a release of either cannot
break every request through a private method it renamed: the pools get connection
classes of ours through ``ConnectionCls`` (set by ``pool_classes_by_scheme``), and
those tell the watchdog which socket the request uses; the body is read with
``iter_content``. ``tests/test_public_apis.py`` checks the package for private names.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = [
    "Answer",
    "AnswerTooLarge",
    "BoundedTransport",
    "RequestAbandoned",
    "RequestBounds",
    "TLSHandshakeFailed",
    "WholeAnswerTimeout",
    "read_json",
]

CHUNK_BYTES = 64 * 1024
WATCHDOG_TICK = 0.1  # seconds between the watchdog's looks at requests in flight


class WholeAnswerTimeout(requests.exceptions.ReadTimeout):
    """The whole answer did not arrive within the request's deadline (transient)."""


class TLSHandshakeFailed(requests.exceptions.SSLError):
    """The TLS handshake timed out: usually https:// sent to a plain-http port."""


class AnswerTooLarge(requests.RequestException):
    """The decoded answer is larger than the cap; nothing of it is kept."""


class RequestAbandoned(requests.RequestException):
    """The pass was asked to stop and this request was still unanswered after the grace."""


@dataclass(frozen=True)
class RequestBounds:
    """How long one request may take and how much it may bring back."""

    whole: float = 60.0  # seconds for the whole request, answer body included
    connect: float = 10.0  # seconds for the TCP connect and the TLS handshake
    max_bytes: int = 16 * 1024 * 1024  # decoded body
    grace: float = 5.0  # seconds requests in flight get after a stop was requested

    @classmethod
    def for_timeout(cls, timeout: float, **overrides: Any) -> RequestBounds:
        """Bounds for a ``--request-timeout``: connecting gets at most 10 s of it."""
        return cls(whole=timeout, connect=min(timeout, cls.connect), **overrides)


class _InFlight:
    """One request in flight: its deadline, its connection once it has one, its fate.

    ``sock`` is the connection's socket as last seen: http.client drops the connection's
    reference when an answer says ``Connection: close``, while the body is still read
    from that socket, and the watchdog must still be able to shut it down.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.connection: HTTPConnection | None = None
        self.sock: socket.socket | None = None
        self.handshaking = False
        self.aborted: str | None = None  # "timeout" or "abandoned"
        self._lock = threading.Lock()

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self.connection = connection
            self.sock = connection.sock or self.sock

    def abort(self, why: str) -> None:
        with self._lock:
            if self.aborted is not None:
                return
            self.aborted = why
            sock = getattr(self.connection, "sock", None) or self.sock
        if sock is not None:
            with suppress(OSError):  # the plain socket's shutdown wakes a blocked recv
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


_this_thread = threading.local()  # .request: the _InFlight this thread is sending, if any


def _current_request() -> _InFlight | None:
    return getattr(_this_thread, "request", None)


class _Tracker:
    """One transport's requests in flight, for its watchdog."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: set[_InFlight] = set()

    def begin(self, deadline: float) -> _InFlight:
        entry = _InFlight(deadline)
        with self._lock:
            self._entries.add(entry)
        _this_thread.request = entry
        return entry

    def end(self, entry: _InFlight) -> None:
        with self._lock:
            self._entries.discard(entry)
        _this_thread.request = None

    def snapshot(self) -> list[_InFlight]:
        with self._lock:
            return list(self._entries)


class _TrackedHTTPConnection(HTTPConnection):
    """Tells the request this thread is sending which connection carries it.

    A request on a new connection connects (``connect``), one on a kept-alive connection
    only sends (``putrequest``, where every request of http.client and urllib3 starts):
    either way the watchdog learns the connection before anything can block on it, and
    its socket once it has one.
    """

    def connect(self) -> None:
        _attach(self)
        super().connect()
        _attach(self)  # now with its socket

    def putrequest(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().putrequest(*args, **kwargs)


class _TrackedHTTPSConnection(_TrackedHTTPConnection, HTTPSConnection):
    """The same for https, and it marks the TLS handshake of a direct connection.

    urllib3 reports a handshake that times out as a read timeout, which would hide the
    likely cause (https:// sent to a plain-http port). Through a proxy, ``connect`` also
    opens the tunnel, whose timeouts are the proxy's: those stay plain timeouts.
    ``super()`` in the class above reaches ``HTTPSConnection`` here (MRO).
    """

    def connect(self) -> None:
        entry = _current_request()
        if entry is None or self.proxy is not None:
            super().connect()
            return
        entry.handshaking = True
        super().connect()  # raising leaves the mark for the error's explanation
        entry.handshaking = False


def _attach(connection: HTTPConnection) -> None:
    entry = _current_request()
    if entry is not None:
        entry.attach(connection)


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


_TRACKED_POOLS: dict[str, type[HTTPConnectionPool]] = {
    "http": _TrackedHTTPPool,
    "https": _TrackedHTTPSPool,
}


class _TrackedAdapter(HTTPAdapter):
    """Pools whose connections are tracked, for direct and proxied requests alike.

    ``send`` is requests' own, so ``responses`` (which patches ``HTTPAdapter.send``)
    still answers the unit tests through this adapter.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_TRACKED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_TRACKED_POOLS)
        return manager


@dataclass(frozen=True)
class Answer:
    """A whole answer, read within the bounds: what callers use of a response, and its body.

    The names are those of ``requests.Response``, so callers read an answer as they
    would read a response; the body is ``content``, already read and decoded.
    """

    status_code: int
    reason: str
    url: str
    headers: CaseInsensitiveDict[str]
    content: bytes

    @classmethod
    def of(cls, response: requests.Response, body: bytes) -> Answer:
        return cls(response.status_code, response.reason, response.url, response.headers, body)


def _read_body(response: requests.Response, cap: int) -> bytes:
    """The decoded body of a streamed response, refused past ``cap`` bytes.

    ``iter_content`` reads ``response.raw`` and turns urllib3's errors into the requests
    exceptions that callers and the retry rules already handle (a cut connection is a
    ``ChunkedEncodingError``, a broken gzip a ``ContentDecodingError``).
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > cap:
        raise AnswerTooLarge(f"the answer announces {int(declared):,} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        size += len(chunk)
        if size > cap:
            raise AnswerTooLarge(f"the answer is larger than {cap:,} bytes")
        chunks.append(chunk)
    _check_whole(response, declared)
    return b"".join(chunks)


def _check_whole(response: requests.Response, declared: str) -> None:
    """A body shorter than its Content-Length was cut: an error, as urllib3 2 says itself.

    urllib3 1.26 does not check by default and returns what arrived as if it were all.
    ``raw.tell()`` counts the bytes read off the wire, before any gzip decoding.
    """
    if not (declared.isascii() and declared.isdigit()) or response.status_code in (204, 304):
        return
    if response.request is not None and response.request.method == "HEAD":
        return
    received = response.raw.tell()
    if received < int(declared):
        raise requests.exceptions.ChunkedEncodingError(
            f"the connection was cut after {received:,} of {int(declared):,} bytes"
        )


class BoundedTransport:
    """A ``requests.Session`` whose every request obeys ``RequestBounds``; thread-safe."""

    def __init__(
        self,
        session: requests.Session,
        bounds: RequestBounds,
        *,
        pool_size: int = 10,
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        self.session = session
        self.bounds = bounds
        self._stop_requested = stop_requested
        self._tracker = _Tracker()
        adapter = _TrackedAdapter(
            pool_connections=2, pool_maxsize=max(pool_size, 1) + 2, max_retries=0
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._closed = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._watchdog_lock = threading.Lock()
        self._stop_seen: float | None = None

    def request(
        self, method: str, url: str, *, bounds: RequestBounds | None = None, **kwargs: Any
    ) -> Answer:
        """Send one request and read its whole body within the bounds.

        ``bounds`` replaces the transport's own for this request (a tighter probe);
        the grace after a stop is always the transport's. Raises ``WholeAnswerTimeout``,
        ``TLSHandshakeFailed``, ``AnswerTooLarge``, ``RequestAbandoned`` or whatever
        requests raises.
        """
        limits = bounds or self.bounds
        self._start_watchdog()
        entry = self._tracker.begin(time.monotonic() + limits.whole)
        try:
            response = self.session.request(
                method,
                url,
                stream=True,
                allow_redirects=False,
                timeout=(limits.connect, limits.whole),
                **kwargs,
            )
            try:
                body = _read_body(response, limits.max_bytes)
                if entry.aborted:  # urllib3 1.26 reads a shut-down socket as the body's end
                    raise requests.exceptions.ReadTimeout("the watchdog shut the socket")
            except BaseException:
                response.close()  # a half-read connection must not go back to the pool
                raise
        except Exception as error:
            raise self._explain(entry, error, limits) from None
        finally:
            self._tracker.end(entry)
        return Answer.of(response, body)

    def _explain(self, entry: _InFlight, error: Exception, limits: RequestBounds) -> Exception:
        """Our own error for what the watchdog or the caps did; others unchanged."""
        if entry.aborted == "abandoned":
            return RequestAbandoned(
                f"abandoned {self.bounds.grace:g}s after the pass was asked to stop"
            )
        if entry.handshaking and (entry.aborted or isinstance(error, requests.Timeout)):
            return TLSHandshakeFailed(f"no TLS handshake within {limits.connect:g}s")
        if entry.aborted == "timeout":
            return WholeAnswerTimeout(f"no whole answer within {limits.whole:g}s")
        return error

    def _start_watchdog(self) -> None:
        with self._watchdog_lock:
            if self._watchdog is None and not self._closed.is_set():
                self._watchdog = threading.Thread(
                    target=self._watch, name="idle-cull-watchdog", daemon=True
                )
                self._watchdog.start()

    def _watch(self) -> None:
        while not self._closed.wait(WATCHDOG_TICK):
            self.check(time.monotonic())

    def check(self, now: float) -> None:
        """Abort what is overdue: past its deadline, or past the grace after a stop."""
        if self._stop_seen is None and self._stop_requested():
            self._stop_seen = now
        abandon = self._stop_seen is not None and now >= self._stop_seen + self.bounds.grace
        for entry in self._tracker.snapshot():
            if now >= entry.deadline:
                entry.abort("timeout")
            elif abandon:
                entry.abort("abandoned")

    def close(self) -> None:
        self._closed.set()
        with self._watchdog_lock:
            watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.join()
        self.session.close()


def read_json(body: bytes) -> Any:
    """JSON from an answer's raw bytes, for every peer: the hub and the probed servers.

    RFC 8259 makes JSON UTF-8 whatever the Content-Type says, so the bytes are parsed as
    they are. A body (already size-capped by the transport) nested too deeply for the
    parser raises ``RecursionError``, which would escape a caller's ``except ValueError``
    and end the pass; here it is a ``ValueError`` like any other answer that is not JSON.
    """
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
