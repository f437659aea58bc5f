"""A hostile HTTP peer on 127.0.0.1 for the hardening tests: it trickles, or never answers.

``responses`` cannot model time on the wire: a body that arrives one byte at a time, or
a port that accepts a TLS ClientHello and then says nothing. This peer does, with real
sockets, and stops (closing every connection) when its ``with`` block ends.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, TypeVar

from tests.support.local_http import LocalHTTPServer

__all__ = ["EmptyHub", "HostilePeer", "HungServers", "ScriptedPeer", "blackhole"]

Peer = TypeVar("Peer", bound="HostilePeer")


class HostilePeer:
    """Accepts connections; per ``mode``: ``"trickle"`` answers 200 with a body sent one
    byte every ``interval`` seconds (``length`` bytes in all); ``"silent"`` reads and never answers (a plain-http
    server waiting for the end of a request that is really a TLS ClientHello)."""

    def __init__(self, mode: str, *, interval: float = 0.3, length: int = 1000) -> None:
        self.mode = mode
        self.interval = interval
        self.length = length
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def __enter__(self: Peer) -> Peer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        with self._lock:
            for sock in self._sockets:
                sock.close()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                continue
            with self._lock:
                self.connections += 1
                self._sockets.append(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(0.2)
        received = b""
        while not self._stop.is_set() and (self.mode == "silent" or b"\r\n\r\n" not in received):
            try:
                data = connection.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            received += data
        if self.mode != "trickle":
            return
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {self.length}\r\n\r\n"
        try:
            connection.sendall(head.encode())
            for _ in range(self.length):
                if self._stop.wait(self.interval):
                    return
                connection.sendall(b" ")
        except OSError:
            return


class ScriptedPeer(HostilePeer):
    """A keep-alive HTTP/1.1 peer whose n-th request (counted over all connections) gets
    ``answers[n]`` (the last one again once they run out):

    - ``"ok"``: 200 with ``b"ok"`` and a Content-Length, after ``delay`` seconds;
    - ``"trickle"``: 200 with a Content-Length of ``length``, one byte every ``interval``;
    - ``"drip"``: the same without a Content-Length (the body ends when the connection does);
    - ``"silent"``: no answer at all;
    - ``"huge"``: 200 without a Content-Length, ``length`` bytes, then the connection closes;
    - ``"cut"``: 200 with a Content-Length of ``length``, half of it, then the connection closes.

    With ``tls``, every connection is TLS first. ``connections``, ``requests`` and
    ``most_at_once`` (requests answered at the same time) say what the client did.
    """

    def __init__(
        self,
        answers: Sequence[str],
        *,
        delay: float = 0.0,
        interval: float = 0.3,
        length: int = 1000,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__("scripted", interval=interval, length=length)
        self.answers = list(answers)
        self.delay = delay
        self.tls = tls
        self.requests = 0
        self.most_at_once = 0
        self._at_once = 0

    def _serve(self, connection: socket.socket) -> None:
        try:
            if self.tls is not None:
                connection.settimeout(5)
                connection = self.tls.wrap_socket(connection, server_side=True)
            connection.settimeout(0.2)
            reader = _Requests(connection, self._stop)
            while reader.next_request():
                with self._lock:
                    answer = self.answers[min(self.requests, len(self.answers) - 1)]
                    self.requests += 1
                if not self._answer(connection, answer):
                    return
        except OSError:
            return
        finally:
            connection.close()

    def _answer(self, connection: socket.socket, answer: str) -> bool:
        """Send one answer; whether the connection can carry another request."""
        if answer == "silent":
            self._stop.wait()
            return False
        if answer == "huge":
            connection.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            connection.sendall(b"x" * self.length)
            return False
        if answer == "cut":
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {self.length}\r\n\r\n"
            connection.sendall(head.encode() + b"x" * (self.length // 2))
            return False
        if answer in ("trickle", "drip"):
            framing = (
                f"Content-Length: {self.length}" if answer == "trickle" else "Connection: close"
            )
            connection.sendall(f"HTTP/1.1 200 OK\r\n{framing}\r\n\r\n".encode())
            for _ in range(self.length):
                if self._stop.wait(self.interval):
                    return False
                connection.sendall(b" ")
            return answer == "trickle"
        with self._lock:
            self._at_once += 1
            self.most_at_once = max(self.most_at_once, self._at_once)
        try:
            time.sleep(self.delay)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Peer: scripted\r\n\r\nok"
            )
        finally:
            with self._lock:
                self._at_once -= 1
        return True


class _Requests:
    """Reads request heads off one connection (bodies are not expected)."""

    def __init__(self, connection: socket.socket, stop: threading.Event) -> None:
        self._connection = connection
        self._stop = stop
        self._buffer = b""

    def next_request(self) -> bool:
        """Wait for the next request head; ``False`` once the client or the peer is done."""
        while b"\r\n\r\n" not in self._buffer:
            if self._stop.is_set():
                return False
            try:
                data = self._connection.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return False
            self._buffer += data
        _, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        return True


@contextmanager
def blackhole() -> Iterator[int]:
    """A port on 127.0.0.1 where a TCP connect hangs: a listener whose accept queue is full
    (Linux then drops further SYNs), like a firewall that drops packets. Yields the port."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    filler = socket.create_connection(listener.getsockname(), timeout=1)
    try:
        yield int(listener.getsockname()[1])
    finally:
        filler.close()
        listener.close()


class EmptyHub(LocalHTTPServer):
    """A hub with no users on 127.0.0.1 (``api_url``): enough for a whole, clean pass in
    a subprocess, whose stdout can then be a full disk, a closed pipe or no fd at all."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/hub/api/":
                    body: object = {"version": "6.1.1"}
                else:
                    body = {
                        "items": [],
                        "_pagination": {"offset": 0, "limit": 50, "total": 0, "next": None},
                    }
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)

    @property
    def api_url(self) -> str:
        return f"{self.origin}/hub/api"


class HungServers(LocalHTTPServer):
    """Users' servers on 127.0.0.1 (``url``: a proxy's origin) of which some hang.

    ``/user/<name>/api/kernels`` and ``api/terminals`` answer ``answers[name]`` (a JSON
    list of kernels; terminals: none) at once; a ``hung`` user's requests are read and
    never answered, until the client gives up and closes. ``most_waiting`` is the most
    hung requests open at once: how many stalled probes a survey held at the same time.
    """

    def __init__(self, answers: dict[str, list[Any]], hung: Sequence[str]) -> None:
        self.answers = answers
        self.hung = frozenset(hung)
        self.waiting = 0
        self.most_waiting = 0
        self.hung_requests = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        servers = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = self.path.split("?")[0].split("/")  # "", "user", name, "api", ...
                name = parts[2] if len(parts) > 3 else ""
                if name in servers.hung:
                    servers._hang(self.connection)
                    self.close_connection = True
                    return
                body = servers.answers.get(name, []) if parts[-1] == "kernels" else []
                data = json.dumps(body).encode()
                self.send_response(200 if name in servers.answers else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def _hang(self, connection: socket.socket) -> None:
        with self._lock:
            self.waiting += 1
            self.hung_requests += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
        connection.settimeout(0.1)
        try:
            while not self._closing.is_set():
                try:
                    if not connection.recv(4096):
                        return  # the client gave up
                except TimeoutError:
                    continue
                except OSError:
                    return
        finally:
            with self._lock:
                self.waiting -= 1

    @property
    def url(self) -> str:
        return self.origin

    def release(self) -> None:
        self._closing.set()
