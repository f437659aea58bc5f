"""A real JupyterHub with real single-user servers and kernels, for the busy-kernel tests.

``tests/support/realhub.py``'s hub spawns no-op servers, which cannot have kernels. This one runs
``tests/support/singleuser_config.py``: ``jupyterhub-singleuser`` (jupyter_server + ipykernel)
spawned by JupyterHub's ``SimpleLocalProcessSpawner`` behind the real
configurable-http-proxy, everything on 127.0.0.1. It reuses ``RealHub`` for the hub itself
(start, stop, users, servers) and adds what a test needs to make a server busy the way a
user does: start a kernel through the server's REST API, run a silent long cell over the
kernel's websocket, interrupt it, and read what the server and the proxy saw.

Every request to a server goes through the proxy's public URL with the setup (admin)
token, which holds ``access:servers`` through the built-in admin role.

Outside pytest::

    with SingleUserHub.start() as hub:
        hub.hub.create_users(["ann"])
        hub.hub.start_server("ann")
        kernel = hub.start_kernel("ann")
        hub.run_silently("ann", kernel, "import time; time.sleep(600)")
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import websocket  # websocket-client

from tests.support.local_http import LocalHTTPServer
from tests.support.realhub import (
    REQUEST_TIMEOUT,
    TESTS_DIR,
    HarnessError,
    RealHub,
    quote_segment,
    wait_for,
)

__all__ = ["SILENT_LONG_CELL", "SINGLEUSER_CONFIG", "FaultyProbeTarget", "SingleUserHub"]

SINGLEUSER_CONFIG = TESTS_DIR / "singleuser_config.py"
# prints nothing, so the kernel sends no IOPub message (no activity) until it ends
SILENT_LONG_CELL = "import time; time.sleep(600)"
KERNEL_WAIT = 60.0  # a kernel's start on a loaded 2-core machine takes seconds
PROXY_LOG_MARK = "PROXY WEB "  # configurable-http-proxy's debug line for each proxied request
STALL_LIMIT = 30.0  # a stalled answer is held at most this long


class SingleUserHub:
    """``RealHub`` (as ``.hub``) plus the kernel helpers; see the module docstring."""

    def __init__(self, hub: RealHub) -> None:
        self.hub = hub
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy or netrc from the developer's shell

    @classmethod
    def start(cls, workdir: Path | None = None) -> SingleUserHub:
        return cls(RealHub.start(workdir, config=SINGLEUSER_CONFIG))

    def stop(self) -> None:
        """Stop every server first (their processes outlive a killed hub), then the hub."""
        self._session.close()
        # the hub is stopped below anyway, and its cleanup_servers stops what is left
        with contextlib.suppress(HarnessError, requests.RequestException):
            self.stop_all_servers()
        self.hub.stop()

    def __enter__(self) -> SingleUserHub:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def public_url(self) -> str:
        """The proxy's public URL: what ``--proxy-url`` is on a single machine."""
        return self.hub.public_url

    # -- servers --

    def fresh_user(self, name: str) -> None:
        """A user with a running default server (the user is created if needed)."""
        if self.hub.user(name) is None:
            self.hub.create_users([name])
        if self.server_model(name) is None:
            self.hub.start_server(name)

    def server_model(self, user: str, server: str = "") -> dict[str, Any] | None:
        model = self.hub.user(user) or {}
        found: dict[str, Any] | None = model.get("servers", {}).get(server)
        return found

    def stop_all_servers(self) -> None:
        for user in self.hub.users():
            for name in user.get("servers", {}):
                self.hub.stop_server(user["name"], name)

    def server_url(self, user: str, server: str = "") -> str:
        """``{proxy}/user/<name>/`` (or ``/user/<name>/<server>/``), as the hub routes it."""
        path = f"/user/{quote_segment(user)}/"
        if server:
            path += f"{quote_segment(server)}/"
        return f"{self.public_url}{path}"

    def server_api(
        self,
        method: str,
        user: str,
        path: str,
        *,
        expect: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> requests.Response:
        """Call the server's REST API (``path`` like ``api/kernels``) through the proxy."""
        response = self._session.request(
            method,
            self.server_url(user) + path,
            headers={"Authorization": f"token {self.hub.admin_token}"},
            timeout=REQUEST_TIMEOUT,
            allow_redirects=False,
            **kwargs,
        )
        if response.status_code not in expect:
            raise HarnessError(
                f"{method} {path} on {user}'s server answered {response.status_code}: "
                f"{response.text[:300]}"
            )
        return response

    def status(self, user: str) -> dict[str, Any]:
        """The server's ``/api/status`` (``last_activity``, ``kernels``): not counted as activity."""
        body: dict[str, Any] = self.server_api("GET", user, "api/status").json()
        return body

    # -- kernels --

    def start_kernel(self, user: str) -> str:
        """Start a python3 kernel through the REST API and run a trivial cell, as a notebook
        does on opening; return its id once the kernel is idle.

        Without a client the kernel stays ``starting`` (it reports idle only after it has
        answered a message), which is not the state a user's open notebook is in.
        """
        kernel_id: str = self.server_api(
            "POST", user, "api/kernels", json={"name": "python3"}, expect=(201,)
        ).json()["id"]
        self.execute(user, kernel_id, "pass", until="idle")
        return kernel_id

    def kernels(self, user: str) -> list[dict[str, Any]]:
        """The server's kernels, read without counting as activity."""
        body: list[dict[str, Any]] = self.server_api(
            "GET", user, "api/kernels", params={"no_track_activity": "1"}
        ).json()
        return body

    def kernel_state(self, user: str, kernel_id: str) -> str | None:
        for kernel in self.kernels(user):
            if kernel["id"] == kernel_id:
                state: str = kernel["execution_state"]
                return state
        return None

    def wait_kernel_state(self, user: str, kernel_id: str, state: str) -> None:
        wait_for(
            lambda: self.kernel_state(user, kernel_id) == state,
            f"kernel {kernel_id} of {user} to be {state}",
            timeout=KERNEL_WAIT,
        )

    def run_silently(self, user: str, kernel_id: str, code: str = SILENT_LONG_CELL) -> None:
        """Start a silent long cell and return once the kernel is busy with it."""
        self.execute(user, kernel_id, code, until="busy")

    def execute(self, user: str, kernel_id: str, code: str, *, until: str) -> None:
        """Send ``code`` to the kernel over its websocket, as a notebook does, and return
        once the kernel reports ``until`` (``busy``: started; ``idle``: done) for it. The
        websocket is then closed: a cell still running runs on without a client.
        """
        url = self.server_url(user).replace("http://", "ws://", 1)
        url += f"api/kernels/{kernel_id}/channels"
        msg_id = uuid.uuid4().hex
        message = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "username": user,
                "session": uuid.uuid4().hex,
                "version": "5.3",
                "date": "",
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            "channel": "shell",
            "buffers": [],
        }
        sock = websocket.create_connection(
            url,
            header=[f"Authorization: token {self.hub.admin_token}"],
            timeout=KERNEL_WAIT,
        )
        try:
            sock.send(json.dumps(message))
            while True:
                reply = json.loads(sock.recv())
                if (
                    reply.get("channel") == "iopub"
                    and reply.get("parent_header", {}).get("msg_id") == msg_id
                    and reply.get("msg_type") == "status"
                    and reply["content"].get("execution_state") == until
                ):
                    break
        finally:
            sock.close()
        self.wait_kernel_state(user, kernel_id, until)

    def interrupt(self, user: str, kernel_id: str) -> None:
        """Interrupt the running cell through the REST API and wait for the kernel to idle."""
        self.server_api("POST", user, f"api/kernels/{kernel_id}/interrupt", expect=(204,))
        self.wait_kernel_state(user, kernel_id, "idle")

    # -- what reached the servers --

    def proxied_requests(self, user: str) -> int:
        """Requests the proxy forwarded to this user's server so far (its debug log)."""
        mark = f"{PROXY_LOG_MARK}/user/{quote_segment(user)}/"
        text = (self.hub.workdir / "hub.log").read_text(errors="replace")
        return sum(1 for line in text.splitlines() if mark in line)


# --- a stand-in for the proxy that answers probes badly ------------------------------------


class FaultyProbeTarget(LocalHTTPServer):
    """Listens on 127.0.0.1 in place of the proxy and answers every request with
    ``status`` (a non-Jupyter server's 404, a failing server's 500), or, with ``stall``,
    holds the request without answering until the client gives up or ``stop``.

    ``--proxy-url`` pointed at it makes every probe fail the chosen way while the hub and
    its servers stay real. ``requests`` counts what arrived.
    """

    def __init__(self, status: int = 404, *, stall: bool = False) -> None:
        self.status = status
        self.stall = stall
        self.requests = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with target._lock:
                    target.requests += 1
                if target.stall:
                    target._stopping.wait(STALL_LIMIT)
                    return
                body = b'{"message": "not here"}'
                self.send_response(target.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads ``requests``."""

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return self.origin

    def release(self) -> None:
        self._stopping.set()
