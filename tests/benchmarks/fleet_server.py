"""Emulated single-user servers for the server-activity benchmark: one process, every user.

``python -m tests.benchmarks.fleet_server`` prints its URL on stdout, is told the hub's API
URL by ``POST /_hub`` (the hub is started after it, with its URL as the servers'), then
serves ``/user/<name>/api/{kernels,terminals,metrics/v1,status}`` for any ``<name>`` the
way ``jupyterhub-singleuser`` does as far as the hub sees it: each token is checked with
the hub (``GET /hub/api/user`` with that token, as ``HubAuth.user_for_token``) and the
answer cached for 300 s (``HubAuth.cache_max_age``); the token must hold
``access:servers`` for that user's server, else 403. Answers: one idle kernel that ran a
cell a second ago (so a real ``--activity-source=server`` pass keeps every server and
measures the survey alone), no terminals, ``cpu_percent`` 0. ``POST /_forget`` empties the cache (a new
pass more than 5 minutes after the last one). ``POST /_hang`` with a JSON list of user
names makes those servers unreachable: their API requests are read and never answered
(a hung server, or a route whose target never answers), until the client gives up.
Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

CACHE_SECONDS = 300.0
HANG_LIMIT = 120.0  # seconds a hung server's request is held at most


def kernels() -> bytes:
    """One idle kernel whose last message was a second ago."""
    used = datetime.now(timezone.utc) - timedelta(seconds=1)
    kernel = {
        "id": "k1",
        "name": "python3",
        "last_activity": used.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "execution_state": "idle",
        "connections": 0,
    }
    return json.dumps([kernel]).encode()


class Fleet:
    def __init__(self) -> None:
        self.hub_api = ""
        self.cache: dict[str, tuple[dict[str, Any], float]] = {}
        self.lock = threading.Lock()
        self.local = threading.local()
        self.checks = 0
        self.hung: frozenset[str] = frozenset()

    def session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
            session.trust_env = False
        return session

    def owner(self, token: str) -> dict[str, Any] | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        with self.lock:
            cached = self.cache.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        response = self.session().get(
            f"{self.hub_api}/user", headers={"Authorization": f"token {token}"}, timeout=30
        )
        with self.lock:
            self.checks += 1
        if response.status_code != 200:
            return None
        model: dict[str, Any] = response.json()
        with self.lock:
            self.cache[key] = (model, time.monotonic() + CACHE_SECONDS)
        return model


def allowed(model: dict[str, Any] | None, user: str) -> bool:
    if model is None:
        return False
    scopes = set(model.get("scopes") or ())
    return bool(
        scopes & {"access:servers", f"access:servers!user={user}", f"access:servers!server={user}/"}
    )


def handler_for(fleet: Fleet) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            if self.path == "/_hub":
                length = int(self.headers.get("Content-Length") or 0)
                fleet.hub_api = self.rfile.read(length).decode().rstrip("/")
                self._send(200, b"{}")
                return
            if self.path == "/_hang":
                length = int(self.headers.get("Content-Length") or 0)
                fleet.hung = frozenset(json.loads(self.rfile.read(length)))
                self._send(200, b"{}")
                return
            if self.path == "/_forget":
                with fleet.lock:
                    fleet.cache.clear()
                self._send(200, json.dumps({"checks": fleet.checks}).encode())
                return
            self._send(404, b"{}")

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            parts = path.split("/")
            if len(parts) < 4 or parts[1] != "user":
                self._send(200, b"{}")  # the hub's readiness check of a new server
                return
            user, endpoint = parts[2], "/".join(parts[3:])
            if user in fleet.hung and endpoint.startswith("api/"):
                self._never_answer()
                return
            auth = self.headers.get("Authorization", "")
            token = auth[6:] if auth.startswith("token ") else ""
            if not token or not allowed(fleet.owner(token), user):
                self._send(403, b'{"message": "Forbidden"}')
                return
            if endpoint == "api/kernels":
                self._send(200, kernels())
            elif endpoint == "api/terminals":
                self._send(200, b"[]")
            elif endpoint == "api/metrics/v1":
                self._send(200, b'{"rss": 1, "cpu_percent": 0.0}')
            else:
                self._send(200, b"{}")

        def _never_answer(self) -> None:
            """Wait, answering nothing, until the client closes (or HANG_LIMIT passes)."""
            self.close_connection = True
            self.connection.settimeout(HANG_LIMIT)
            with contextlib.suppress(OSError):
                while self.connection.recv(4096):
                    pass

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    return Handler


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m tests.benchmarks.fleet_server").parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(Fleet()))
    server.daemon_threads = True
    sys.stdout.write(f"http://127.0.0.1:{server.server_address[1]}\n")
    sys.stdout.flush()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
