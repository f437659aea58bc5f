"""``LocalHTTPServer``: a threaded HTTP server on a free port of 127.0.0.1, served from a
daemon thread for the length of a ``with`` block.

The stand-ins the tests point a pass at (a user's server that answers oddly or hangs, a
hub with nobody on it, a webhook receiver) differ only in their request handler; how
they listen, start and stop is this one class.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

__all__ = ["LocalHTTPServer"]

_Server = TypeVar("_Server", bound="LocalHTTPServer")


class LocalHTTPServer:
    """Serves ``handler`` on 127.0.0.1 inside ``with``; ``origin`` is where it listens.

    Subclasses whose handlers wait (a request held without an answer) let them go in
    ``release``, which runs before the server shuts down: otherwise a held request keeps
    its thread and socket until the client gives up, into whatever test runs next.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def release(self) -> None:
        """Let handlers that are holding a request go; nothing by default."""

    def __enter__(self: _Server) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
