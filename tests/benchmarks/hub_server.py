"""A fast fake JupyterHub REST API with synthetic users, for memory and CPU at 100k users.

``python -m tests.benchmarks.hub_server --users 100000 --running 0.5 --idle 1.0``

Serves ``GET /hub/api/`` (version 6.1.1), the paginated ``GET /hub/api/users`` with
``state`` (``ready``/``active``, ``inactive``), ``offset`` and ``limit`` as JupyterHub does
(default page 50, clamped to 200, ``total``, ``next``, a plain list without the
pagination ``Accept`` header), ``GET /hub/api/users/{name}``, and ``DELETE`` of servers
and users (204; a stopped server is gone from later answers, a deleted user is 404).
The page arithmetic is the tests' own (``tests.support.pagination``), which imports
nothing heavy, so this server pages exactly as the emulated hub does.
Records have the shape and fields of a real 6.1.1 hub's answer to the culler's token.

User ``i`` (ids in listing order) has a running default server when
``i < users * running``; it is idle (``last_activity`` two days ago) when
``i % 100 < idle * 100``, else active now. Nothing per user is stored until it is
stopped or deleted, so the fake hub itself stays small and fast.

It prints one JSON line ``{"url": ..., "token": ...}`` once listening on 127.0.0.1 and
serves until stdin closes, SIGTERM, or ``--max-seconds``. ``--latency`` delays every
``GET /users`` page, as a hub farther away or busier would. ``fake_hub()`` runs it as a
subprocess for the benchmarks.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.benchmarks.common import python_env
from tests.support.pagination import page_window, users_page

VERSION = "6.1.1"
PAGINATION_ACCEPT = "application/jupyterhub-pagination+json"
IDLE_SINCE = "2020-01-01T00:00:00.000000Z"
USER_PATH = re.compile(r"^/hub/api/users/([^/]+)(?:/(server|servers/([^/]+)))?$")


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Population:
    """The synthetic users; only stops and deletions are remembered."""

    users: int
    running: float
    idle: float
    created: str = field(
        default_factory=lambda: iso(datetime.now(timezone.utc) - timedelta(days=3))
    )
    stopped: dict[int, str] = field(default_factory=dict)  # id -> when its server stopped
    deleted: set[int] = field(default_factory=set)

    @property
    def running_count(self) -> int:
        return round(self.users * self.running)

    def name(self, index: int) -> str:
        return f"user-{index:07d}"

    def index(self, name: str) -> int | None:
        if not name.startswith("user-"):
            return None
        try:
            index = int(name[5:])
        except ValueError:
            return None
        return index if 0 <= index < self.users and index not in self.deleted else None

    def is_running(self, index: int) -> bool:
        return index < self.running_count and index not in self.stopped

    def is_idle(self, index: int) -> bool:
        return index % 100 < self.idle * 100

    def record(self, index: int, now: str) -> dict[str, Any]:
        """The user model a 6.1.1 hub sends a token with the culler's scopes."""
        name = self.name(index)
        activity = IDLE_SINCE if self.is_idle(index) else now
        servers: dict[str, Any] = {}
        if self.is_running(index):
            servers[""] = {
                "name": "",
                "display_name": "",
                "full_name": f"{name}/",
                "last_activity": activity,
                "started": IDLE_SINCE,
                "pending": None,
                "ready": True,
                "stopped": False,
                "url": f"/user/{name}/",
                "user_options": {},
                "progress_url": f"/hub/api/users/{name}/server/progress",
                "full_url": None,
                "full_progress_url": None,
            }
        elif index in self.stopped:
            activity = self.stopped[index]
        return {
            "auth_state": None,
            "groups": [],
            "pending": None,
            "last_activity": activity,
            "created": self.created,
            "roles": ["user"],
            "name": name,
            "kind": "user",
            "admin": False,
            "server": f"/user/{name}/" if servers else None,
            "servers": servers,
            "user_info": None,
        }

    def query(self, state: str | None) -> range:
        """Ids of the users a state filter selects, before offset/limit (as the hub's SQL)."""
        if state in ("ready", "active"):
            return range(0, self.running_count)
        if state == "inactive":
            return range(self.running_count, self.users)
        return range(0, self.users)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real hub (tornado)
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: FakeHubServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would cost more than the answer."""

    def _send(self, status: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"token {self.server.token}":
            return True
        self._send(403, {"status": 403, "message": "Missing or invalid credentials."})
        return False

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def do_GET(self) -> None:
        self._drain()
        parts = urlsplit(self.path)
        if parts.path in ("/hub/api", "/hub/api/"):
            self._send(200, {"version": VERSION})
            return
        if not self._authorized():
            return
        population = self.server.population
        now = iso(datetime.now(timezone.utc))
        if parts.path == "/hub/api/users":
            body = self._user_list(parse_qs(parts.query), now)
            if self.server.latency:
                time.sleep(self.server.latency)
            self._send(200, body)
            return
        match = USER_PATH.match(parts.path)
        index = population.index(unquote(match.group(1))) if match and not match.group(2) else None
        if index is None:
            self._send(404, {"status": 404, "message": "Not Found"})
            return
        self._send(200, population.record(index, now))

    def _user_list(self, query: dict[str, list[str]], now: str) -> object:
        population = self.server.population
        params = {k: v[0] for k, v in query.items()}
        state = params.get("state")
        paginated = self.headers.get("Accept") == PAGINATION_ACCEPT
        offset, limit = page_window(params, paginated=paginated)
        ids = population.query(state)
        window = [i for i in ids[offset : offset + limit] if i not in population.deleted]
        if state == "ready":
            window = [i for i in window if population.is_running(i)]
        items = [population.record(i, now) for i in window]
        if not paginated:
            return items
        # next.url built from the request, like the hub's (upstream follows this URL)
        url = f"http://{self.headers.get('Host', '127.0.0.1')}/hub/api"
        return users_page(items, offset, limit, url, total=len(ids), query=params)

    def do_DELETE(self) -> None:
        self._drain()
        if not self._authorized():
            return
        population = self.server.population
        match = USER_PATH.match(urlsplit(self.path).path)
        index = population.index(unquote(match.group(1))) if match else None
        if match is None or index is None:
            self._send(404, {"status": 404, "message": "Not Found"})
            return
        if match.group(2):  # a server
            if population.is_running(index) and match.group(2) == "server":
                population.stopped[index] = iso(datetime.now(timezone.utc))
            self._send(204)
            return
        population.deleted.add(index)
        self._send(204)

    do_POST = do_PATCH = do_PUT = do_DELETE


class FakeHubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, population: Population, token: str, latency: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.population = population
        self.token = token
        self.latency = latency

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hub/api"


def serve(population: Population, token: str, max_seconds: float, latency: float = 0.0) -> None:
    """Serve until stdin closes (the parent went away), SIGTERM, or ``max_seconds``."""
    server = FakeHubServer(population, token, latency)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=server.serve_forever, name="fake-hub", daemon=True).start()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=until_stdin_closes, name="stdin-watch", daemon=True).start()
    sys.stdout.write(json.dumps({"url": server.url, "token": token}) + "\n")
    sys.stdout.flush()
    done.wait(max_seconds)
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class FakeHubHandle:
    url: str
    token: str
    process: subprocess.Popen[str]


@contextmanager
def fake_hub(
    users: int,
    *,
    running: float = 0.5,
    idle: float = 0.0,
    latency: float = 0.0,
    max_seconds: float = 3600,
) -> Iterator[FakeHubHandle]:
    """Run the fake hub in a subprocess of its own (its CPU and memory are not the culler's)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.hub_server",
            f"--users={users}",
            f"--running={running}",
            f"--idle={idle}",
            f"--latency={latency}",
            f"--max-seconds={max_seconds}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=python_env(),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the fake hub exited before listening")
        info = json.loads(line)
        yield FakeHubHandle(info["url"], info["token"], process)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.hub_server", description=__doc__
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--running", type=float, default=0.5, help="fraction with a server")
    parser.add_argument("--idle", type=float, default=0.0, help="fraction that is idle")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per user page")
    parser.add_argument("--max-seconds", type=float, default=3600)
    args = parser.parse_args(argv)
    token = secrets.token_hex(16)
    population = Population(args.users, args.running, args.idle)
    serve(population, token, args.max_seconds, args.latency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
