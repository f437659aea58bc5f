"""jupyterhub_config.py for the real-hub test harness (``tests/support/realhub.py``).

The launcher runs ``jupyterhub -f tests/support/hub_config.py`` with the environment variables read
below; nothing here is meant to be edited per test. Runtime knobs that tests change while the
hub runs (the stop delay) live in files in the hub's work directory, so no restart is needed.

It runs unchanged on every release of ``hub_releases.txt`` (2.3 to 6.1): every config
name below exists in each, except ``Authenticator.allow_all`` (from 5.0), which is only set
there. Facts checked in the installed JupyterHub 6.1.1 source:

- ``last_activity_interval = 0`` really disables the periodic copy of proxy route activity
  into the db (``app.py``: the PeriodicCallback is only created ``if self.last_activity_interval``),
  so ``last_activity`` only moves when a test spawns, stops or posts activity.
- ``trust_user_provided_tokens`` exists: config/service tokens are then stored with one cheap
  hash instead of the password-grade one (about 2.8 ms of hub CPU per request saved). Our
  tokens come from ``secrets.token_hex(32)``, so their entropy is good.
- ``GET /users`` needs ``list:users``: with the ``idle-cull-noscope`` token (only
  ``read:users:activity``) the hub answers 403, not an empty list (``needs_scope('list:users')``
  on ``UserListAPIHandler.get``; asserted in ``tests/integration/test_realhub.py``).
- ``DELETE /users/{name}`` stops only the *default* server; with a named server still running
  the hub's ``_delete_spawner`` raises and the request fails, so the harness stops every server
  before deleting users.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jupyterhub
from jupyterhub.spawner import Spawner
from traitlets import Bool

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (provided by traitlets at load)


def _env(name: str) -> str:
    """Read a required variable; the launcher always sets them, so a miss is a usage error."""
    try:
        return os.environ[name]
    except KeyError:
        raise RuntimeError(
            f"{name} is not set: tests/support/hub_config.py is meant to be started by tests/support/realhub.py"
        ) from None


WORKDIR = Path(_env("IDLE_CULL_HUB_DIR"))
STOP_DELAY_FILE = WORKDIR / "stop_delay"
STOP_CANCEL_FILE = WORKDIR / "stop_cancel"


# --- the one shared "single-user server" ------------------------------------------------------


KERNEL_PROBES_FILE = WORKDIR / "kernel_probes.jsonl"
_probes_lock = threading.Lock()


class _AlwaysOK(BaseHTTPRequestHandler):
    """Answers 200 to any path: the hub only checks that the server URL is up.

    The version header keeps the hub from logging a version-mismatch warning per spawn.
    Each ``/api/kernels`` request (a culler's probe, through the proxy) is recorded with
    the ``Authorization`` header it carried, as a user's own server could record it
    (``RealHub.kernel_probes_seen``); its answer (``{}``) is not a kernel list.
    """

    def _record_probe(self) -> None:
        if "/api/kernels" not in self.path:
            return
        seen = {"path": self.path, "authorization": self.headers.get("Authorization", "")}
        with _probes_lock, open(KERNEL_PROBES_FILE, "a") as file:
            file.write(json.dumps(seen) + "\n")

    def _ok(self) -> None:
        self._record_probe()
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-JupyterHub-Version", jupyterhub.__version__)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _ok

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging: it would only bury the hub log."""


def _start_shared_server() -> str:
    """Serve ``_AlwaysOK`` on a free loopback port in a daemon thread; return its URL.

    Started once, when the config loads, inside the hub process: it lives and dies with the
    hub, and a port chosen by the kernel cannot collide.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysOK)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="noop-server", daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


SHARED_SERVER_URL = _start_shared_server()


def _watch_parent(parent_pid: int) -> None:
    """SIGTERM the hub once its launcher is gone, so a killed pytest leaves no orphan hub.

    The hub then shuts down as usual, which also stops the proxy it started.
    """
    while os.getppid() == parent_pid:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)


if os.environ.get("IDLE_CULL_PARENT_PID"):
    threading.Thread(
        target=_watch_parent,
        args=(int(os.environ["IDLE_CULL_PARENT_PID"]),),
        name="parent-watchdog",
        daemon=True,
    ).start()


# --- the no-op spawner --------------------------------------------------------------------------


def _read_stop_delay() -> float:
    """Seconds the next stop takes; a missing or garbled file means 0."""
    try:
        return max(0.0, float(STOP_DELAY_FILE.read_text().strip() or 0))
    except (OSError, ValueError):
        return 0.0


def _read_cancel_marker() -> str:
    """Generation counter that ``RealHub.reset`` bumps to cut slow stops short."""
    try:
        return STOP_CANCEL_FILE.read_text()
    except OSError:
        return ""


class NoopSpawner(Spawner):  # type: ignore[misc]  # jupyterhub ships no types: Spawner is Any
    """A spawner that starts nothing: every server is the shared always-200 HTTP server.

    It models what a culler sees (ready, pending stop, stopped) at a few ms per spawn.
    """

    running = Bool(False, help="True between start() and the end of stop(); kept in state.")

    async def start(self) -> str:
        self.running = True
        return SHARED_SERVER_URL

    async def poll(self) -> int | None:
        return None if self.running else 0

    async def stop(self, now: bool = False) -> None:
        """Take as long as the stop-delay file says at the moment the stop begins.

        Reading it here, not at hub start, lets tests make stops slow at runtime. A change of
        the cancel marker (``RealHub.reset``) ends the wait early so resets stay fast.
        """
        delay = 0.0 if now else _read_stop_delay()
        marker = _read_cancel_marker()
        deadline = time.monotonic() + delay
        while (remaining := deadline - time.monotonic()) > 0:
            if _read_cancel_marker() != marker:
                break
            await asyncio.sleep(min(0.05, remaining))
        self.running = False

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self.running:
            state["running"] = True
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.running = bool(state.get("running", False))

    def clear_state(self) -> None:
        super().clear_state()
        self.running = False


# --- hub, proxy, services -----------------------------------------------------------------------

HUB_PORT = int(_env("IDLE_CULL_HUB_PORT"))
PROXY_PORT = int(_env("IDLE_CULL_PROXY_PORT"))
PROXY_API_PORT = int(_env("IDLE_CULL_PROXY_API_PORT"))

c.JupyterHub.spawner_class = NoopSpawner
c.JupyterHub.authenticator_class = "null"  # users come from the API only; PAM needs OS users
if jupyterhub.version_info >= (5,):
    # nobody logs in anyway; silences 5.0's "no allow config" warning (before 5.0 the
    # trait does not exist, and setting it would only log "not recognized")
    c.Authenticator.allow_all = True
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = HUB_PORT
c.JupyterHub.bind_url = f"http://127.0.0.1:{PROXY_PORT}"
c.JupyterHub.db_url = f"sqlite:///{WORKDIR / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(WORKDIR / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(WORKDIR / "jupyterhub.pid")

c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 0
c.JupyterHub.concurrent_spawn_limit = 0  # the default 100 answers 429 to spawn bursts
c.JupyterHub.last_activity_interval = 0  # see module docstring
c.JupyterHub.cleanup_servers = False  # fast shutdown; state never outlives a RealHub
c.JupyterHub.trust_user_provided_tokens = True  # see module docstring
c.JupyterHub.tornado_settings = {"slow_stop_timeout": 1}
c.Spawner.http_timeout = 10  # the shared server is always up; fail fast if it is not

# tests.support.realhub.find_chp resolved it (env, .venv/chp, PATH) before launching the hub.
c.ConfigurableHTTPProxy.command = [_env("IDLE_CULL_CHP")]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PROXY_API_PORT}"
c.ConfigurableHTTPProxy.pid_file = str(WORKDIR / "jupyterhub-proxy.pid")

# --- internal SSL (RealHub.start(internal_ssl=True)); off unless the launcher sets the dir -----
#
# The hub generates every CA and certificate into internal_certs_location itself (certipy).
# Its API then listens with TLS on the same 127.0.0.1:HUB_PORT and requires a client
# certificate; the proxy's API is TLS too, so its URL must say https (JupyterHub's own default
# does, but ours above is explicit).
# NoopSpawner needs no change (checked in JupyterHub 6.1.1): before each start the hub calls
# the base create_certs (a per-user pair signed by notebooks-ca, written locally) and
# move_certs (returns the paths unchanged), and the spawner just never uses cert_paths. Its
# server URL stays http://, which the hub accepts: the TLS context User._wait_up passes to
# tornado's HTTP client is only used for https URLs.
INTERNAL_CERTS = os.environ.get("IDLE_CULL_INTERNAL_CERTS")
if INTERNAL_CERTS:
    c.JupyterHub.internal_ssl = True
    c.JupyterHub.internal_certs_location = INTERNAL_CERTS
    c.ConfigurableHTTPProxy.api_url = f"https://127.0.0.1:{PROXY_API_PORT}"

SERVICE_SCOPES: dict[str, tuple[str, list[str]]] = {
    # test setup: create users, spawn, post activity, groups
    "idle-cull-admin": (
        "IDLE_CULL_ADMIN_TOKEN",
        [
            "admin:users",
            "admin:servers",
            "users:activity",
            "admin:groups",
            "list:users",
            "read:users",
            "read:servers",
        ],
    ),
    # the culler exactly as the README documents it, with --cull-users rights
    "idle-cull": (
        "IDLE_CULL_CULLER_TOKEN",
        [
            "list:users",
            "read:users:activity",
            "read:servers",
            "delete:servers",
            "admin:users",
            "read:groups:name",
        ],
    ),
    # the culler without --cull-users rights
    "idle-cull-servers-only": (
        "IDLE_CULL_SERVERS_ONLY_TOKEN",
        ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    ),
    # a culler that probes kernels: what idle-cull needs since issue 21 (tokens, to mint each
    # probed user a token of their own) and what it needed before (access:servers), so the
    # test that a probed server cannot reuse what it receives fails on the old code
    "idle-cull-prober": (
        "IDLE_CULL_PROBER_TOKEN",
        [
            "list:users",
            "read:users:activity",
            "read:servers",
            "delete:servers",
            "tokens",
            "access:servers",
        ],
    ),
    # reads users' groups but may not check that a group exists (issue 23.1)
    "idle-cull-groups-unchecked": (
        "IDLE_CULL_GROUPS_UNCHECKED_TOKEN",
        [
            "list:users",
            "read:users:activity",
            "read:servers",
            "delete:servers",
            "read:users:groups",
        ],
    ),
    # missing scopes: GET /users answers 403 (no list:users), see module docstring
    "idle-cull-noscope": ("IDLE_CULL_NOSCOPE_TOKEN", ["read:users:activity"]),
    # lists and reads everything a pass reads, but lacks delete:servers (preflight tests)
    "idle-cull-readonly": (
        "IDLE_CULL_READONLY_TOKEN",
        ["list:users", "read:users:activity", "read:servers", "read:groups:name"],
    ),
}

c.JupyterHub.services = [
    {"name": name, "api_token": _env(token_var)}
    for name, (token_var, _scopes) in SERVICE_SCOPES.items()
]
c.JupyterHub.load_roles = [
    {"name": name, "scopes": scopes, "services": [name]}
    for name, (_token_var, scopes) in SERVICE_SCOPES.items()
]
# A hub-managed service (RealHub.start(managed_service=[...])): the hub runs that command
# with the environment it gives the services it launches, as upstream's culler was run.
if os.environ.get("IDLE_CULL_MANAGED_SERVICE"):
    c.JupyterHub.services.append(
        {
            "name": "idle-cull-managed",
            "command": json.loads(os.environ["IDLE_CULL_MANAGED_SERVICE"]),
        }
    )
# Only an entity with the admin flag may grant admin ("Only admins can grant admin
# permissions", apihandlers/users.py), and only the built-in admin role sets that flag for a
# service, so the setup service also holds it (it then has every scope: fine for test setup).
c.JupyterHub.load_roles.append({"name": "admin", "services": ["idle-cull-admin"]})


def _apply_overrides(raw: str) -> None:
    """Apply ``RealHub.start(**config_overrides)``, passed as JSON ``{"Class.trait": value}``.

    A dict value is merged into an existing dict (so ``tornado_settings`` keeps its
    ``slow_stop_timeout`` unless the override names it).
    """
    for dotted, value in json.loads(raw).items():
        cls_name, trait = dotted.split(".", 1)
        section = c[cls_name]
        current = section.get(trait) if trait in section else None
        if isinstance(current, dict) and isinstance(value, dict):
            section[trait] = {**current, **value}
        else:
            section[trait] = value


_apply_overrides(os.environ.get("IDLE_CULL_HUB_OVERRIDES", "{}"))
