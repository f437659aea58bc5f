"""A hostile HTTP peer on 127.0.0.1 for the hardening tests: it trickles, or never answers.

``responses`` cannot model time on the wire: a body that arrives one byte at a time, or
a port that accepts a TLS ClientHello and then says nothing. This peer does, with real
sockets, and stops (closing every connection) when its ``with`` block ends.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["EmptyHub", "HostilePeer"]


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

    def __enter__(self) -> HostilePeer:
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


class EmptyHub:
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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/hub/api"

    def __enter__(self) -> EmptyHub:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
