"""Real work on real single-user servers, for the server-activity tests (issue 24).

``Workloads`` starts one hub of real ``jupyterhub-singleuser`` servers
(``tests/support/singleuser.py``'s ``SingleUserHub``, composed, not changed) and puts each
server in one state a culler must tell apart:

==========  ===================================================================
user        what runs there
==========  ===================================================================
``tab``     an idle kernel, and a client polling ``/api/kernels``, ``/api/sessions``
            and ``/api/terminals`` every 2 s like a visible JupyterLab tab
``busy``    a kernel running a silent long cell
``printer`` a terminal whose job prints a line every second
``quiet``   an idle terminal, nothing else (no tab)
``cell``    an idle kernel the tests run cells in (a cell seconds ago, a CPU burner)
``empty``   neither kernels nor terminals
==========  ===================================================================

Each server runs jupyter-resource-usage with ``ResourceUseDisplay.track_cpu_percent``
on, set in the user's own ``~/.jupyter/jupyter_server_config.json`` before the spawn
(``SimpleLocalProcessSpawner`` sets ``HOME`` to the user's home, and single-user
servers read user config unless ``disable_user_config``), so no hub config changes.

The hub is started with a known proxy API URL and auth token (config overrides), so a
test can read the proxy's routing table (``GET /api/routes``: each route's
``last_activity`` and target) the way ``idle_cull.proxy_routes`` does.

Cost: one hub and six servers, spawned together, three kernels and two terminals; about
15-25 s to set up on a loaded 2-core machine, about 700 MB of memory.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import websocket  # websocket-client
from dateutil.parser import isoparse

from tests.support.local_http import LocalHTTPServer
from tests.support.realhub import (
    REQUEST_TIMEOUT,
    RealHub,
    free_ports,
    quote_segment,
    server_path,
    wait_for,
)
from tests.support.singleuser import KERNEL_WAIT, SINGLEUSER_CONFIG, SingleUserHub

__all__ = ["TAB_POLL", "WORKLOAD_USERS", "OddAnswers", "TabPoller", "Workloads"]

TAB_POLL = 2.0  # seconds between an open tab's polls
PRINT_EVERY = 1  # seconds between the printing terminal's lines
WORKLOAD_USERS = ("tab", "busy", "printer", "quiet", "cell", "empty")
USER_CONFIG = {"ResourceUseDisplay": {"track_cpu_percent": True}}
# a CPU burner the kernel starts in the background: a child of the kernel, in the server's tree
BURN_CELL = (
    "import subprocess, sys\n"
    "burner = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
)
STOP_BURN_CELL = "burner.kill(); burner.wait()"


class TabPoller:
    """Polls a server's REST API like a visible JupyterLab tab (without
    ``no_track_activity``: a tab's polls count as activity).

    It sends through the standard library, not ``requests``: the poller lives as long as
    the session's workloads, and every ``responses`` mock a later unit test activates
    patches ``requests`` process-wide, so its polls would be recorded there as stray calls
    (a test asserting that a pass sent nothing failed that way, once in a while).
    """

    PATHS = ("api/kernels", "api/sessions", "api/terminals")

    def __init__(self, base_url: str, token: str, every: float = TAB_POLL) -> None:
        self._base = base_url
        self._every = every
        self._headers = {"Authorization": f"token {token}"}
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tab-poller", daemon=True)
        self.polls = 0

    def start(self) -> TabPoller:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in self.PATHS:
                self._poll(path)
            self.polls += 1
            self._stop.wait(self._every)

    def _poll(self, path: str) -> None:
        request = urllib.request.Request(self._base + path, headers=self._headers)
        with (
            contextlib.suppress(OSError),
            self._opener.open(request, timeout=REQUEST_TIMEOUT) as answer,
        ):
            answer.read()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(REQUEST_TIMEOUT)


@dataclass
class Workloads:
    """The hub, its servers in their states, and helpers to read what each one saw."""

    su: SingleUserHub
    proxy_api_url: str
    proxy_auth_token: str
    kernels: dict[str, str] = field(default_factory=dict)  # user -> kernel id
    terminals: dict[str, str] = field(default_factory=dict)  # user -> terminal name
    poller: TabPoller | None = None
    ready_at: float = 0.0  # time.monotonic() when every workload was in place

    @classmethod
    def start(cls) -> Workloads:
        proxy_api_port = free_ports(1)[0]
        auth_token = secrets.token_hex(32)
        proxy_api_url = f"http://127.0.0.1:{proxy_api_port}"
        hub = RealHub.start(
            config=SINGLEUSER_CONFIG,
            ConfigurableHTTPProxy__api_url=proxy_api_url,
            ConfigurableHTTPProxy__auth_token=auth_token,
        )
        workloads = cls(SingleUserHub(hub), proxy_api_url, auth_token)
        try:
            workloads._set_up()
        except BaseException:
            workloads.stop()
            raise
        return workloads

    def _set_up(self) -> None:
        hub = self.su.hub
        hub.create_users(list(WORKLOAD_USERS))
        for user in WORKLOAD_USERS:
            self._write_user_config(user)
            hub.api("POST", server_path(user), json={}, expect=(201, 202))
        for user in WORKLOAD_USERS:
            wait_for(partial(self._ready, user), f"{user}'s server to be ready", timeout=120)
        for user in ("tab", "busy", "cell"):
            self.kernels[user] = self.su.start_kernel(user)
        self.su.run_silently("busy", self.kernels["busy"])
        self.terminals["printer"] = self.start_terminal(
            "printer", f"while true; do echo tick; sleep {PRINT_EVERY}; done"
        )
        self.terminals["quiet"] = self.start_terminal("quiet", "echo hello")
        self.poller = TabPoller(self.su.server_url("tab"), hub.admin_token).start()
        self.ready_at = time.monotonic()

    def _write_user_config(self, user: str) -> None:
        config_dir = self.su.hub.workdir / "home" / user / ".jupyter"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(USER_CONFIG))

    def _ready(self, user: str) -> bool:
        model = self.su.server_model(user)
        return bool(model and model.get("ready"))

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()
        self.su.stop()

    def __enter__(self) -> Workloads:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- work --

    def start_terminal(self, user: str, command: str) -> str:
        """Open a terminal through the REST API, type ``command`` into it over its
        websocket as a user does, and close the websocket (the job runs on: the server
        reads its output whether or not anyone is connected)."""
        name: str = self.su.server_api("POST", user, "api/terminals").json()["name"]
        url = self.su.server_url(user).replace("http://", "ws://", 1)
        sock = websocket.create_connection(
            f"{url}terminals/websocket/{name}",
            header=[f"Authorization: token {self.su.hub.admin_token}"],
            timeout=KERNEL_WAIT,
        )
        try:
            sock.send(json.dumps(["stdin", command + "\r"]))
            deadline = time.monotonic() + KERNEL_WAIT
            while time.monotonic() < deadline:  # wait for the echo: the shell got it
                message = json.loads(sock.recv())
                if message[0] == "stdout" and command.split(maxsplit=1)[0] in message[1]:
                    break
        finally:
            sock.close()
        return name

    def run_cell(self, user: str, code: str) -> None:
        """Run a cell in the user's kernel and wait until it is done."""
        self.su.execute(user, self.kernels[user], code, until="idle")

    # -- what the server, the proxy and the hub saw --

    def status_activity(self, user: str) -> datetime:
        """``/api/status``'s ``last_activity``: the newest of everything (not counted itself).

        Read at the route's target, not through the proxy: through the proxy the read
        itself would be route activity, which the hub copies into its record.
        """
        target = self.routes()[f"/user/{quote_segment(user)}"]["target"]
        response = requests.get(
            f"{target}/user/{quote_segment(user)}/api/status",
            headers={"Authorization": f"token {self.su.hub.admin_token}"},
            timeout=REQUEST_TIMEOUT,
        )
        response.raise_for_status()
        return isoparse(response.json()["last_activity"])

    def routes(self) -> dict[str, Any]:
        """The proxy's routing table: prefix -> route (``target``, ``last_activity``)."""
        response = requests.get(
            f"{self.proxy_api_url}/api/routes",
            headers={"Authorization": f"token {self.proxy_auth_token}"},
            timeout=REQUEST_TIMEOUT,
        )
        response.raise_for_status()
        table: dict[str, Any] = response.json()
        return table

    def route_activity(self, user: str) -> datetime:
        prefix = f"/user/{quote_segment(user)}"
        route = self.routes()[prefix]
        return isoparse(route["last_activity"])

    def hub_activity(self, user: str) -> datetime:
        model = self.su.server_model(user) or {}
        return isoparse(model["last_activity"])

    def log_path(self) -> Path:
        return self.su.hub.workdir / "hub.log"


class OddAnswers(LocalHTTPServer):
    """Answers every request on 127.0.0.1 the same odd way: ``html`` (an RStudio-like
    page), ``redirect`` (302 to a login page), or ``close`` (the connection is closed
    without an answer). ``requests`` counts what arrived."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.requests += 1
                if target.mode == "close":
                    self.close_connection = True
                    return
                if target.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/login")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"<html><body>RStudio Server</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads ``requests``."""

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return self.origin
