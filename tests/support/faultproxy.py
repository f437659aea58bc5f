"""A fault-injecting HTTP proxy between idle-cull and the real JupyterHub of the tests.

idle-cull is pointed at ``proxy.api_url``; the proxy forwards every request unchanged to
the hub unless a rule says otherwise. Rules are added and cleared while the proxy runs::

    with FaultProxy(hub.api_url) as proxy:
        proxy.add("GET", "/users", respond(503), count=3)   # next 3 listings answer 503
        proxy.add("DELETE", r"/users/ida/server", reset(after_forward=True))
        ...  # run idle-cull against proxy.api_url
        proxy.clear()

Faults: ``respond`` (any status and body without asking the hub: 500/502/503 bursts, 429
with ``Retry-After``, an HTML page), ``reset`` and ``stall`` (before the hub sees the
request, or after it acted and only the answer is lost), ``cut`` (a body shorter than
announced), ``rewrite``/``rewrite_json`` (truncate, corrupt, relabel, inject records, a
``next`` that loops), ``echo_request`` (an error quoting the request's credentials),
``drop_header`` (a proxy that strips a request header, e.g. the pagination ``Accept``) and
``meanwhile`` (the hub changed by someone else just before a request reaches it).

Why a real proxy rather than ``responses``: the faults that matter (a reset connection, a
stall past the client's timeout, a body cut short, a lost answer to a stop the hub did
carry out) happen on the wire, between two real processes, with the real hub's state
changing underneath. ``seen`` records every request, so a test can prove what reached
the hub (for instance: no DELETE at all during a pass that could not list users).

Bounded and loopback-only by construction: it listens on 127.0.0.1 and forwards only to
127.0.0.1; upstream requests and idle keep-alive connections time out; stalls wake up
when the proxy stops; ``stop`` closes every open connection and joins every handler
thread with a deadline, and raises if one is left behind.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "Answer",
    "FaultProxy",
    "Seen",
    "cut",
    "drop_header",
    "echo_request",
    "forward",
    "meanwhile",
    "reset",
    "respond",
    "rewrite",
    "rewrite_json",
    "stall",
]

API_PREFIX = "/hub/api"
UPSTREAM_TIMEOUT = 15.0  # longest wait for the hub; the hub answers in milliseconds
IDLE_CONNECTION_TIMEOUT = 10.0  # an idle keep-alive connection is closed after this
STOP_DEADLINE = 5.0  # longest ``stop`` waits for handler threads
# Headers that describe one connection, not the message: never passed through.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
        "accept-encoding",
        "content-encoding",
    }
)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: the hub's, or one a fault makes up or rewrites."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    reason: str = ""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def with_header(self, name: str, value: str) -> Answer:
        kept = tuple((k, v) for k, v in self.headers if k.lower() != name.lower())
        return replace(self, headers=(*kept, (name, value)))


@dataclass
class Seen:
    """One request the proxy received (logged on arrival), and what it did with it."""

    method: str
    path: str  # below /hub/api, still percent-encoded: "/users/what%3F/server"
    query: Mapping[str, str]
    fault: str  # "" when forwarded untouched, else the fault's name
    status: int | None = None  # the status sent back; None for a reset, stall or cut


class Fault:
    """What to do with a matching request instead of passing it through."""

    name = "forward"

    def apply(self, handler: _Handler, body: bytes) -> int | None:
        """Serve the request; return the status sent, or None if no answer was sent."""
        answer = handler.forward_upstream(body)
        handler.send_answer(answer)
        return answer.status


class _Respond(Fault):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.name = f"respond {answer.status}"

    def apply(self, handler: _Handler, body: bytes) -> int | None:
        handler.send_answer(self.answer)
        return self.answer.status


class _Reset(Fault):
    def __init__(self, after_forward: bool) -> None:
        self.after_forward = after_forward
        self.name = "reset after forward" if after_forward else "reset"

    def apply(self, handler: _Handler, body: bytes) -> int | None:
        if self.after_forward:
            handler.forward_upstream(body)  # the hub acts; its answer is lost
        handler.reset_connection()
        return None


class _Stall(Fault):
    def __init__(self, seconds: float, after_forward: bool) -> None:
        self.seconds = seconds
        self.after_forward = after_forward
        self.name = f"stall {seconds:g}s" + (" after forward" if after_forward else "")

    def apply(self, handler: _Handler, body: bytes) -> int | None:
        if self.after_forward:
            handler.forward_upstream(body)
        handler.proxy.stopping.wait(self.seconds)  # stop() cuts it short
        handler.close_connection = True  # then hang up without an answer
        return None


class _Cut(Fault):
    def __init__(self, keep: float) -> None:
        self.keep = keep
        self.name = "cut"

    def apply(self, handler: _Handler, body: bytes) -> int | None:
        answer = handler.forward_upstream(body)
        handler.send_answer(answer, send_bytes=int(len(answer.body) * self.keep))
        handler.close_connection = True
        return None


class _Echo(Fault):
    def __init__(self, status: int) -> None:
        self.status = status
        self.name = f"echo request {status}"

    def apply(self, handler: _Handler, body: bytes) -> int | None:
        credentials = handler.headers.get("Authorization", "(none)")
        headers = "; ".join(f"{k}: {v}" for k, v in handler.headers.items())
        message = (
            f"invalid credentials {credentials!r} for {handler.command} {handler.path} ({headers})"
        )
        handler.send_answer(
            Answer(
                self.status,
                (("Content-Type", "application/json"),),
                json.dumps({"status": self.status, "message": message}).encode(),
            )
        )
        return self.status


class _DropHeader(Fault):
    def __init__(self, header: str) -> None:
        self.header = header.lower()
        self.name = f"drop header {header}"

    def apply(self, handler: _Handler, body: bytes) -> int | None:
        answer = handler.forward_upstream(body, drop=(self.header,))
        handler.send_answer(answer)
        return answer.status


class _Meanwhile(Fault):
    def __init__(self, action: Callable[[], None], name: str) -> None:
        self.action = action
        self.name = name

    def apply(self, handler: _Handler, body: bytes) -> int | None:
        self.action()
        return super().apply(handler, body)


class _Rewrite(Fault):
    def __init__(self, transform: Callable[[Answer], Answer], name: str) -> None:
        self.transform = transform
        self.name = name

    def apply(self, handler: _Handler, body: bytes) -> int | None:
        answer = self.transform(handler.forward_upstream(body))
        handler.send_answer(answer)
        return answer.status


def forward() -> Fault:
    """Pass the request through untouched (a rule that shields a request from later rules)."""
    return Fault()


def respond(
    status: int,
    body: object = None,
    *,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> Fault:
    """Answer without asking the hub. ``body`` bytes/str go as is, anything else as JSON;
    by default the hub's own error shape ``{"status", "message"}``."""
    if body is None:
        body = {"status": status, "message": f"injected by the fault proxy ({status})"}
    if isinstance(body, str):
        raw = body.encode()
    elif isinstance(body, bytes):
        raw = body
    else:
        raw = json.dumps(body).encode()
    all_headers = {"Content-Type": content_type, **(headers or {})}
    return _Respond(Answer(status, tuple(all_headers.items()), raw))


def reset(*, after_forward: bool = False) -> Fault:
    """Drop the connection with a TCP reset; ``after_forward``: only after the hub acted."""
    return _Reset(after_forward)


def stall(seconds: float, *, after_forward: bool = False) -> Fault:
    """Send nothing for ``seconds`` (past the client's timeout), then hang up."""
    return _Stall(seconds, after_forward)


def cut(keep: float = 0.5) -> Fault:
    """Announce the whole body's length, send only ``keep`` of it, hang up."""
    return _Cut(keep)


def echo_request(status: int) -> Fault:
    """Answer an error whose message quotes the credentials it rejected and the request's
    headers, as some gateways and debug pages do: the ``Authorization`` header first."""
    return _Echo(status)


def drop_header(name: str) -> Fault:
    """Forward without the request header ``name``, as a proxy that strips it would."""
    return _DropHeader(name)


def meanwhile(action: Callable[[], None], name: str = "meanwhile") -> Fault:
    """Run ``action`` (change the hub, straight, not through the proxy), then forward."""
    return _Meanwhile(action, name)


def rewrite(transform: Callable[[Answer], Answer], name: str = "rewrite") -> Fault:
    """Forward, then change the hub's answer (status, headers or body) before sending it."""
    return _Rewrite(transform, name)


def rewrite_json(change: Callable[[Any], Any], name: str = "rewrite json") -> Fault:
    """Forward, then pass the hub's JSON body through ``change`` (which may edit in place)."""

    def transform(answer: Answer) -> Answer:
        data = json.loads(answer.body)
        changed = change(data)
        result = data if changed is None else changed
        return replace(answer, body=json.dumps(result).encode())

    return _Rewrite(transform, name)


@dataclass
class _Rule:
    method: str
    path: re.Pattern[str]
    query: Mapping[str, str]
    fault: Fault
    remaining: int | None  # None: until cleared

    def matches(self, method: str, path: str, query: Mapping[str, str]) -> bool:
        if self.remaining == 0:
            return False
        if self.method not in ("*", method):
            return False
        if not self.path.fullmatch(path):
            return False
        return all(query.get(key) == value for key, value in self.query.items())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' connection pool expects
    timeout = IDLE_CONNECTION_TIMEOUT
    server: _Server

    @property
    def proxy(self) -> FaultProxy:
        return self.server.proxy

    def setup(self) -> None:
        super().setup()
        self.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.proxy._track(self.connection, add=False)

    def _serve(self) -> None:
        split = urlsplit(self.path)
        path = split.path[len(API_PREFIX) :] if split.path.startswith(API_PREFIX) else split.path
        path = path or "/"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = self.proxy._take_fault(self.command, path, query)
        seen = Seen(self.command, path, query, "" if type(fault) is Fault else fault.name)
        self.proxy._record(seen)  # on arrival: a stall must not land in a later pass's log
        seen.status = fault.apply(self, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def forward_upstream(self, body: bytes, drop: tuple[str, ...] = ()) -> Answer:
        """The hub's answer to this very request (same method, path, query, body, token),
        without the headers named in ``drop`` (lowercase)."""
        host, port = self.proxy.upstream
        skip = HOP_BY_HOP | set(drop)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        headers["Accept-Encoding"] = "identity"  # bodies must stay rewritable
        if body or self.command in ("POST", "PUT", "PATCH", "DELETE"):
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
        try:
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except OSError as error:
            self.proxy._error(f"upstream {self.command} {self.path}: {error!r}")
            return Answer(502, (("Content-Type", "text/plain"),), b"fault proxy: hub unreachable")
        finally:
            connection.close()
        kept = tuple((k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP)
        return Answer(response.status, kept, data, response.reason)

    def send_answer(self, answer: Answer, *, send_bytes: int | None = None) -> None:
        """Send ``answer``; with ``send_bytes``, announce it all but send only that much."""
        self.send_response_only(answer.status, answer.reason or None)
        for key, value in answer.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body if send_bytes is None else answer.body[:send_bytes])
        self.wfile.flush()

    def reset_connection(self) -> None:
        """Close with SO_LINGER 0: the client gets a TCP RST, not an orderly close."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()  # the RST goes out once ``finish`` drops the last reference

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: ``seen`` is the log tests read."""

    def log_error(self, format: str, *args: Any) -> None:
        message = format % args
        if "timed out" not in message:  # an idle keep-alive connection expiring
            self.proxy._error(message)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # joined by FaultProxy.stop with a deadline instead
    proxy: FaultProxy

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        self.proxy._track_thread(add=True)
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.proxy._track_thread(add=False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        # A client that hung up (after its own timeout, or at exit) is not a proxy failure.
        if isinstance(error, (ConnectionError, BrokenPipeError, TimeoutError)):
            return
        if isinstance(error, OSError) and self.proxy.stopping.is_set():
            return
        self.proxy._error(f"handler failed: {error!r}")


@dataclass
class FaultProxy:
    """The proxy; see the module docstring. Use as a context manager or start/stop."""

    upstream_api_url: str
    seen: list[Seen] = field(default_factory=list, init=False)
    errors: list[str] = field(default_factory=list, init=False)
    stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream_api_url)
        if parts.scheme != "http" or parts.hostname != "127.0.0.1" or not parts.port:
            raise ValueError(
                f"the fault proxy only forwards to http://127.0.0.1:<port>, not {self.upstream_api_url}"
            )
        if parts.path.rstrip("/") != API_PREFIX:
            raise ValueError(
                f"expected the hub's API URL ending in {API_PREFIX}: {self.upstream_api_url}"
            )
        self.upstream = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> FaultProxy:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fault-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "the proxy is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    def stop(self) -> None:
        """Stop accepting, wake stalls, close open connections, join every thread (bounded)."""
        if self._server is None:
            return
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + STOP_DEADLINE
        with self._lock:
            threads = list(self._threads)
        left = []
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                left.append(thread.name)
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._server = None
        if left:
            raise RuntimeError(f"fault proxy: handler threads still running after stop: {left}")

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- rules --

    def add(
        self,
        method: str,
        path: str,
        fault: Fault,
        *,
        count: int | None = None,
        query: Mapping[str, str] | None = None,
    ) -> None:
        """Apply ``fault`` to the next ``count`` requests (all, if None) that match.

        ``path`` is a regular expression matched against the whole path below
        ``/hub/api``, percent-encoded as sent ("/users", "/users/[^/]+/server");
        ``query`` must be a subset of the request's query parameters. Rules are tried
        in the order added; the first that matches and has uses left applies.
        """
        rule = _Rule(method.upper(), re.compile(path), dict(query or {}), fault, count)
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        """Remove every rule: from now on the proxy is transparent."""
        with self._lock:
            self._rules.clear()

    def forget(self) -> None:
        """Empty the request log (``seen``)."""
        with self._lock:
            self.seen.clear()

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        """Recorded requests, optionally only one method and/or a path (regex, full match)."""
        with self._lock:
            seen = list(self.seen)
        return [
            s
            for s in seen
            if (method is None or s.method == method)
            and (path is None or re.fullmatch(path, s.path))
        ]

    # -- used by handlers --

    def _take_fault(self, method: str, path: str, query: Mapping[str, str]) -> Fault:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path, query):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule.fault
        return Fault()

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _track_thread(self, *, add: bool) -> None:
        with self._lock:
            if add:
                self._threads.add(threading.current_thread())
            else:
                self._threads.discard(threading.current_thread())
