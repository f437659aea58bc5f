"""Launch a real JupyterHub in a subprocess for integration tests and the demo.

Why a subprocess and not JupyterHub's own in-process test fixtures: idle-cull is a CLI that
talks HTTP to a hub, so the hub must be a separate server with its real auth, scopes,
pagination and slow-stop behaviour; a subprocess in its own process group can also always be
killed, whatever state a failed test leaves it in.

The hub runs ``tests/support/hub_config.py`` (a no-op spawner, four service tokens, everything on
127.0.0.1). ``RealHub`` adds the admin helpers tests need to build a scene (users, servers,
activity, groups, slow stops) and to reset the hub between tests.

Outside pytest::

    with RealHub.start() as hub:
        hub.create_users(["alice"])
        hub.start_server("alice")

or ``python -m tests.support.realhub``, which prints shell ``export`` lines and runs until Ctrl-C.

``RealHub.start(internal_ssl=True)`` runs the hub with JupyterHub's internal SSL: the hub
generates its CAs and certificates into ``<workdir>/internal-ssl``, its API is https and
demands a client certificate, and the harness's own requests present ``hub-internal``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from json import dumps as json_dumps
from json import loads as json_loads
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import quote

import requests

from tests.support.releases import INSTALL_HINT, HubRelease, UnknownRelease, find_release

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent.parent
HUB_CONFIG = TESTS_DIR / "hub_config.py"

CHP_INSTALL_HINT = "npm install --prefix .venv/chp configurable-http-proxy"
JUPYTERHUB_INSTALL_HINT = INSTALL_HINT  # builds every release of hub_releases.txt
PAGINATION_ACCEPT = "application/jupyterhub-pagination+json"
START_TIMEOUT = 60.0
WAIT_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0
PAGE_LIMIT = 200  # the hub's default api_page_max_limit

# files in the work directory that hub_config.py reads at stop time
STOP_DELAY_FILE = "stop_delay"
STOP_CANCEL_FILE = "stop_cancel"
LOG_FILE = "hub.log"
PROXY_PID_FILE = "jupyterhub-proxy.pid"
# what the no-op servers saw of each kernel probe (hub_config.py appends one JSON line each)
KERNEL_PROBES_FILE = "kernel_probes.jsonl"
# with internal_ssl: where the hub writes its certificates (c.JupyterHub.internal_certs_location)
INTERNAL_CERTS_DIR = "internal-ssl"
# hub state that must never carry over from an earlier hub in the same workdir
STATE_FILES = (
    "jupyterhub.sqlite",
    "jupyterhub_cookie_secret",
    "jupyterhub.pid",
    PROXY_PID_FILE,
    STOP_DELAY_FILE,
    STOP_CANCEL_FILE,
    KERNEL_PROBES_FILE,
)

# RealHub attribute -> environment variable hub_config.py reads the token from
TOKEN_VARS = {
    "admin_token": "IDLE_CULL_ADMIN_TOKEN",
    "culler_token": "IDLE_CULL_CULLER_TOKEN",
    "servers_only_token": "IDLE_CULL_SERVERS_ONLY_TOKEN",
    "groups_unchecked_token": "IDLE_CULL_GROUPS_UNCHECKED_TOKEN",
    "noscope_token": "IDLE_CULL_NOSCOPE_TOKEN",
    "readonly_token": "IDLE_CULL_READONLY_TOKEN",
    "prober_token": "IDLE_CULL_PROBER_TOKEN",
}


class HarnessError(RuntimeError):
    """The real hub is missing, did not start, or did not reach the state a helper asked for."""


class HubAPIError(HarnessError):
    """A hub API call answered a status the caller did not expect; keeps the response."""

    def __init__(self, response: requests.Response, expected: tuple[int, ...]) -> None:
        self.response = response
        request = response.request
        super().__init__(
            f"{request.method} {request.url} answered {response.status_code}, "
            f"expected one of {expected}: {response.text[:500]}"
        )


# --- prerequisites ------------------------------------------------------------------------------


def find_chp() -> str:
    """Locate configurable-http-proxy: $IDLE_CULL_CHP, then the repo's .venv/chp, then PATH.

    Checked before launching so a missing proxy is one clear line, not a hub log to read.
    """
    explicit = os.environ.get("IDLE_CULL_CHP")
    if explicit:
        if not Path(explicit).exists():
            raise HarnessError(f"IDLE_CULL_CHP={explicit} does not exist")
        return explicit
    local = REPO_ROOT / ".venv" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return str(local)
    on_path = shutil.which("configurable-http-proxy")
    if on_path:
        return on_path
    raise HarnessError(f"configurable-http-proxy not found; install it with: {CHP_INSTALL_HINT}")


def jupyterhub_command(release: HubRelease) -> list[str]:
    """The ``jupyterhub`` of the release's own venv (``.venv/hubs/<release>``)."""
    if not release.jupyterhub.exists():
        raise HarnessError(
            f"JupyterHub {release.name} is not installed in {release.venv}; "
            f"install it with: {JUPYTERHUB_INSTALL_HINT}"
        )
    return [str(release.jupyterhub)]


def free_ports(count: int) -> list[int]:
    """Ask the kernel for distinct free loopback ports (all held open at once, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- small helpers ------------------------------------------------------------------------------


def quote_segment(name: str) -> str:
    """Quote a user, group or server name as one URL path segment (``/``, ``%``, spaces...)."""
    return quote(name, safe="")


def server_path(user: str, server_name: str = "") -> str:
    """API path of a user's default server or of a named one."""
    if server_name:
        return f"/users/{quote_segment(user)}/servers/{quote_segment(server_name)}"
    return f"/users/{quote_segment(user)}/server"


def utcnow_iso() -> str:
    """Now as the hub writes timestamps: ISO 8601 UTC with a trailing Z."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT) -> None:
    """Poll ``condition`` (fast at first, then every 0.1 s) until true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while not condition():
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def override_key(name: str) -> str:
    """``api_page_max_limit`` -> ``JupyterHub.api_page_max_limit``; ``Spawner__x`` -> ``Spawner.x``.

    Keyword arguments cannot contain dots, hence the double-underscore form for other classes.
    """
    if "__" in name:
        cls_name, trait = name.split("__", 1)
        return f"{cls_name}.{trait}"
    return f"JupyterHub.{name}"


def _catches_sigterm(pid: int) -> bool:
    """Whether a process has a SIGTERM handler installed (Linux /proc; elsewhere assume yes)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return not Path("/proc/self/status").exists()
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_chp(pid: int) -> bool:
    """Guard against pid reuse before killing a proxy found through a pid file."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self/cmdline").exists()  # no /proc: trust the live pid
    except OSError:
        return False
    return b"configurable-http-proxy" in cmdline


def _terminate_pid(pid: int, grace: float = 2.0) -> None:
    """SIGTERM a process that is not our child, SIGKILL it if it outlives ``grace`` seconds.

    Liveness is checked with ``_is_chp``, which is false for a zombie (empty cmdline), so an
    init that is slow to reap does not make us wait.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except OSError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            time.sleep(0.02)
            if not _is_chp(pid):
                return


def _write_atomically(path: Path, text: str) -> None:
    """Replace a file in one step so the hub never reads it half-written."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --- the hub ------------------------------------------------------------------------------------


class RealHub:
    """A running JupyterHub subprocess plus admin helpers; see the module docstring."""

    api_url: str
    public_url: str
    admin_token: str
    culler_token: str
    servers_only_token: str
    groups_unchecked_token: str  # reads users' groups, may not read a group (issue 23.1)
    noscope_token: str
    readonly_token: str  # lists and reads, but may not stop servers
    prober_token: str  # a culler that probes kernels (see hub_config.py's SERVICE_SCOPES)
    workdir: Path
    internal_certs: Path | None  # the hub's internal_certs_location, with internal SSL only
    release: HubRelease  # which venv of hub_releases.txt the hub runs from
    version: str  # what the running hub says it is (GET /hub/api/), e.g. "3.1.1"
    page_limit: int = PAGE_LIMIT  # tests lower it to walk several pages with a few users

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        workdir: Path,
        owns_workdir: bool,
        hub_port: int,
        proxy_port: int,
        tokens: dict[str, str],
        release: HubRelease,
        internal_certs: Path | None = None,
    ) -> None:
        self.process = process
        self.release = release
        self.version = ""
        self.workdir = workdir
        self._owns_workdir = owns_workdir
        self.internal_certs = internal_certs
        scheme = "https" if internal_certs is not None else "http"
        self.api_url = f"{scheme}://127.0.0.1:{hub_port}/hub/api"
        self.public_url = f"http://127.0.0.1:{proxy_port}"
        self.admin_token = tokens["admin_token"]
        self.culler_token = tokens["culler_token"]
        self.servers_only_token = tokens["servers_only_token"]
        self.groups_unchecked_token = tokens["groups_unchecked_token"]
        self.noscope_token = tokens["noscope_token"]
        self.readonly_token = tokens["readonly_token"]
        self.prober_token = tokens["prober_token"]
        self._session = requests.Session()
        if internal_certs is not None:
            # The hub's TLS server requires a client certificate from every caller
            # (make_ssl_context sets CERT_REQUIRED), so the admin helpers present the hub's
            # own, exactly like idle-cull --ssl-enabled does. trust_env must be off: with it on,
            # requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE override Session.verify
            # (psf/requests#3829), and the system bundle does not know the hub's CA.
            self._session.trust_env = False
            ca, cert, key = self.tls_files
            self._session.verify = str(ca)
            self._session.cert = (str(cert), str(key))
        self._stopped = False

    @property
    def version_info(self) -> tuple[int, ...]:
        """``"3.1.1"`` -> ``(3, 1, 1)``, for tests that pin what differs between releases."""
        return tuple(int(part) for part in re.findall(r"\d+", self.version)[:3])

    @property
    def tls_files(self) -> tuple[Path, Path, Path]:
        """CA, client certificate and key that ``idle-cull --ssl-enabled`` reads.

        Same layout as ``TLSFiles.from_internal_certs``; the hub creates them at start-up.
        """
        if self.internal_certs is None:
            raise HarnessError("this hub runs without internal SSL: it has no certificates")
        return (
            self.internal_certs / "hub-ca" / "hub-ca.crt",
            self.internal_certs / "hub-internal" / "hub-internal.crt",
            self.internal_certs / "hub-internal" / "hub-internal.key",
        )

    # -- lifecycle --

    @classmethod
    def start(
        cls,
        workdir: Path | None = None,
        *,
        internal_ssl: bool = False,
        release: str | None = None,
        config: Path = HUB_CONFIG,
        managed_service: list[str] | None = None,
        **config_overrides: Any,
    ) -> RealHub:
        """Launch a fresh hub; return once ``GET {api_url}/`` answers and start-up is over.

        ``workdir`` defaults to a new temp dir (removed by ``stop``); a given one is kept, but
        hub state files in it are deleted first so every hub starts empty.
        ``internal_ssl`` turns on JupyterHub's internal SSL (off by default, so every other
        test sees the plain-http hub): certificates go to ``<workdir>/internal-ssl``, which is
        emptied first so the hub always generates a fresh set.
        ``release`` names a line of ``tests/support/hub_releases.txt`` (default: its last,
        newest one); the hub runs from that release's venv.
        ``managed_service`` is a command the hub runs as its managed service
        ``idle-cull-managed`` (its output goes to the hub's log).
        ``config_overrides`` (JSON values) go into the hub config: ``api_page_max_limit=10``
        sets ``c.JupyterHub.api_page_max_limit``; ``Spawner__http_timeout=5`` sets
        ``c.Spawner.http_timeout``; a dict is merged into an existing dict setting.
        ``config`` is the hub's config file (``tests/singleuser.py`` passes one that loads
        ``hub_config.py`` and spawns real single-user servers).
        """
        try:
            hub_release = find_release(release)
        except UnknownRelease as exc:
            raise HarnessError(str(exc)) from None
        command = [*jupyterhub_command(hub_release), "-f", str(config)]
        chp = find_chp()
        owns_workdir = workdir is None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="idle-cull-hub-"))
        workdir = workdir.resolve()  # the hub runs with cwd=workdir: relative paths would move
        workdir.mkdir(parents=True, exist_ok=True)
        for name in STATE_FILES:
            (workdir / name).unlink(missing_ok=True)
        internal_certs = workdir / INTERNAL_CERTS_DIR if internal_ssl else None
        if internal_certs is not None:
            shutil.rmtree(internal_certs, ignore_errors=True)
        hub_port, proxy_port, proxy_api_port = free_ports(3)
        tokens = {attr: secrets.token_hex(32) for attr in TOKEN_VARS}
        env = {
            **os.environ,
            "IDLE_CULL_HUB_DIR": str(workdir),
            "IDLE_CULL_HUB_PORT": str(hub_port),
            "IDLE_CULL_PROXY_PORT": str(proxy_port),
            "IDLE_CULL_PROXY_API_PORT": str(proxy_api_port),
            "IDLE_CULL_CHP": chp,
            "IDLE_CULL_PARENT_PID": str(os.getpid()),
            # the project's interpreter (the hub runs from its release's venv), for configs
            # that start processes needing the test toolchain (singleuser_config.py)
            "IDLE_CULL_PROJECT_PYTHON": sys.executable,
            "IDLE_CULL_HUB_OVERRIDES": json_dumps(
                {override_key(k): v for k, v in config_overrides.items()}
            ),
            **{TOKEN_VARS[attr]: token for attr, token in tokens.items()},
        }
        env.pop("IDLE_CULL_INTERNAL_CERTS", None)  # never inherited: only internal_ssl sets it
        env.pop("IDLE_CULL_MANAGED_SERVICE", None)  # nor this: only managed_service sets it
        if managed_service is not None:
            env["IDLE_CULL_MANAGED_SERVICE"] = json_dumps(managed_service)
        if internal_certs is not None:
            env["IDLE_CULL_INTERNAL_CERTS"] = str(internal_certs)
        with open(workdir / LOG_FILE, "ab") as log:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not the hub
            )
        hub = cls(
            process=process,
            workdir=workdir,
            owns_workdir=owns_workdir,
            hub_port=hub_port,
            proxy_port=proxy_port,
            tokens=tokens,
            release=hub_release,
            internal_certs=internal_certs,
        )
        try:
            hub._wait_until_up(START_TIMEOUT)
            hub.version = hub.api("GET", "/", expect=(200,)).json()["version"]
        except BaseException:
            hub.stop()
            raise
        return hub

    def _wait_until_up(self, timeout: float) -> None:
        """Wait until the hub answers ``GET /hub/api/`` and has finished starting up.

        The hub listens before its start-up ends, and it installs its SIGTERM handler (which
        stops the proxy) only at the very end; a SIGTERM before that kills it outright and
        leaves the proxy, which runs in its own session, behind. So "up" also means the hub
        catches SIGTERM. Fails early, with the log tail, if the hub process dies.
        """
        deadline = time.monotonic() + timeout
        while not (self._api_answers() and _catches_sigterm(self.process.pid)):
            code = self.process.poll()
            if code is not None:
                raise HarnessError(
                    f"jupyterhub exited with code {code} during start-up; "
                    f"last log lines:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"jupyterhub did not come up at {self.api_url}/ within {timeout:.0f} s; "
                    f"last log lines:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _api_answers(self) -> bool:
        if self.internal_certs is not None and not all(p.is_file() for p in self.tls_files):
            return False  # the hub has not written its certificates yet
        try:
            return self._session.get(f"{self.api_url}/", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        """SIGTERM the hub (it stops its proxy), then kill whatever is left behind.

        The hub starts the proxy in a session of its own, so besides the hub's process group
        the proxy is killed by the pid in its pid file if the hub did not stop it.
        Idempotent; never raises for an already-dead hub, so it is safe in any teardown.
        """
        if self._stopped:
            return
        self._stopped = True
        self._session.close()
        proxy_pid = _read_pid(self.workdir / PROXY_PID_FILE)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything else left in its group
        if proxy_pid is not None and _is_chp(proxy_pid):
            _terminate_pid(proxy_pid)
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RealHub:
        """``with RealHub.start() as hub:`` (the hub is already running)."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 50) -> str:
        """Last lines of the hub's log (stdout and stderr of hub and proxy), for diagnostics."""
        try:
            text = (self.workdir / LOG_FILE).read_text(errors="replace")
        except OSError as exc:
            return f"(no hub log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    # -- raw API --

    def api(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] | None = None,
    ) -> requests.Response:
        """Call ``{api_url}{path}`` with the admin token unless another is given.

        With ``expect``, any other status raises ``HubAPIError`` carrying the hub's message,
        so setup code fails where the hub said no, not three asserts later.
        """
        all_headers = {"Authorization": f"token {token or self.admin_token}", **(headers or {})}
        response = self._session.request(
            method,
            f"{self.api_url}{path}",
            json=json,
            headers=all_headers,
            timeout=REQUEST_TIMEOUT,
        )
        if expect is not None and response.status_code not in expect:
            raise HubAPIError(response, expect)
        return response

    # -- users --

    def create_users(self, names: list[str], *, admin: bool = False) -> None:
        """Create users in one ``POST /users``; PATCH ``admin`` afterwards if asked.

        Raises if the hub stored a name other than the one given: its default authenticator
        lowercases names, and a test using the original name would then silently miss.
        """
        created = self.api("POST", "/users", json={"usernames": names}, expect=(201,)).json()
        stored = sorted(user["name"] for user in created)
        if stored != sorted(names):
            raise HarnessError(f"hub created {stored} for {sorted(names)} (it lowercases names)")
        if admin:
            for name in names:
                self.api(
                    "PATCH", f"/users/{quote_segment(name)}", json={"admin": True}, expect=(200,)
                )

    def user(self, name: str) -> dict[str, Any] | None:
        """The user model as the admin sees it, or None if the hub has no such user."""
        response = self.api("GET", f"/users/{quote_segment(name)}", expect=(200, 404))
        return None if response.status_code == 404 else response.json()

    def users(self) -> list[dict[str, Any]]:
        """All users, following the hub's pagination (a plain GET /users truncates silently)."""
        return list(self._paginate("/users"))

    def _paginate(self, path: str) -> Iterator[dict[str, Any]]:
        """Yield every item of a paginated list, using ``offset`` from ``_pagination.next``.

        The offset is used rather than ``next.url``, whose host is the hub's view of the request.
        """
        offset = 0
        while True:
            page = self.api(
                "GET",
                f"{path}?offset={offset}&limit={self.page_limit}",
                headers={"Accept": PAGINATION_ACCEPT},
                expect=(200,),
            ).json()
            yield from page["items"]
            next_page = page["_pagination"]["next"]
            if not next_page:
                return
            offset = next_page["offset"]

    # -- servers --

    def _server(self, user: str, server_name: str) -> dict[str, Any] | None:
        """The server's model while it is active (ready or pending), else None."""
        model = self.user(user)
        if model is None:
            raise HarnessError(f"user {user!r} does not exist")
        server: dict[str, Any] | None = model.get("servers", {}).get(server_name)
        return server

    def start_server(
        self, user: str, server_name: str = "", *, user_options: dict[str, Any] | None = None
    ) -> None:
        """Spawn a server (``user_options`` is the request body) and wait until it is ready."""
        self.api("POST", server_path(user, server_name), json=user_options or {}, expect=(201, 202))

        def ready() -> bool:
            server = self._server(user, server_name)
            return bool(server and server["ready"])

        wait_for(ready, f"server {user!r}/{server_name!r} to be ready")

    def has_named_server(self, user: str, server_name: str) -> bool:
        """Whether the hub still has the named server, running or stopped (not removed).

        ``include_stopped_servers`` exists from JupyterHub 3.0; before it, the answer comes
        from a stop, which is 204 for a stopped named server and 404 for a removed one: ask
        only about a server that is not running.
        """
        if self.version_info >= (3,):
            path = f"/users/{quote_segment(user)}?include_stopped_servers=1"
            return server_name in self.api("GET", path, expect=(200,)).json()["servers"]
        stop = self.api("DELETE", server_path(user, server_name), expect=(202, 204, 404))
        return stop.status_code != 404

    def stop_server(self, user: str, server_name: str = "") -> None:
        """Stop a server and wait until the hub no longer lists it as active."""
        self.api("DELETE", server_path(user, server_name), expect=(202, 204))
        wait_for(
            lambda: self._server(user, server_name) is None,
            f"server {user!r}/{server_name!r} to stop",
        )

    def touch(self, user: str, server_name: str = "") -> None:
        """Post activity "now" for the user and that server, as a busy notebook would."""
        now = utcnow_iso()
        body = {"last_activity": now, "servers": {server_name: {"last_activity": now}}}
        self.api("POST", f"/users/{quote_segment(user)}/activity", json=body, expect=(200,))

    def set_stop_delay(self, seconds: float) -> None:
        """Make every stop that *starts* from now on take ``seconds`` (read by the spawner)."""
        _write_atomically(self.workdir / STOP_DELAY_FILE, repr(float(seconds)))

    # -- groups --

    def add_to_group(self, group: str, users: list[str]) -> None:
        """Create the group unless it exists (409), then add the users to it."""
        path = f"/groups/{quote_segment(group)}"
        self.api("POST", path, expect=(201, 409))
        self.api("POST", f"{path}/users", json={"users": users}, expect=(200,))

    # -- reset --

    def kernel_probes_seen(self) -> list[dict[str, str]]:
        """Every ``/api/kernels`` request the no-op servers received, in order: its
        ``path`` and the ``authorization`` header it carried (what a user's server sees)."""
        try:
            text = (self.workdir / KERNEL_PROBES_FILE).read_text()
        except FileNotFoundError:
            return []
        return [json_loads(line) for line in text.splitlines() if line.strip()]

    def reset(self) -> None:
        """Bring the hub back to empty: no servers, users or groups; instant stops.

        Stops come first because ``DELETE /users/{name}`` refuses users with a stop pending
        and fails on running named servers. Stops already sleeping are cut short through the
        cancel marker, so a test that left a 30 s stop behind does not slow the next one.
        """
        self.set_stop_delay(0)
        self._cancel_pending_stops()
        (self.workdir / KERNEL_PROBES_FILE).unlink(missing_ok=True)
        users = self.users()
        for user in users:
            for server_name in user.get("servers", {}):
                self.api("DELETE", server_path(user["name"], server_name), expect=(202, 204))
        wait_for(lambda: not any(u.get("servers") for u in self.users()), "all servers to stop")
        for user in users:
            self.api("DELETE", f"/users/{quote_segment(user['name'])}", expect=(204, 404))
        for group in list(self._paginate("/groups")):
            self.api("DELETE", f"/groups/{quote_segment(group['name'])}", expect=(204, 404))
        leftover = [user["name"] for user in self.users()]
        if leftover:
            raise HarnessError(f"reset left users behind: {leftover}")

    def _cancel_pending_stops(self) -> None:
        """Change the marker that sleeping ``NoopSpawner.stop`` calls watch."""
        _write_atomically(self.workdir / STOP_CANCEL_FILE, secrets.token_hex(8))


# --- python -m tests.support.realhub --------------------------------------------------------------------


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """Treat SIGTERM like Ctrl-C so the hub is stopped by the same ``with`` block."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Start a hub, print ``export`` lines for a demo script, run until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.realhub",
        description="Run a throwaway JupyterHub for trying idle-cull by hand.",
    )
    parser.add_argument("--workdir", type=Path, help="keep hub files here (default: temp dir)")
    parser.add_argument(
        "--internal-ssl",
        action="store_true",
        help="run the hub with JupyterHub's internal SSL (https API, client certificates)",
    )
    parser.add_argument(
        "--hub-release",
        help="a release of tests/support/hub_releases.txt, e.g. 3.1 (default: the newest)",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with RealHub.start(
            args.workdir, internal_ssl=args.internal_ssl, release=args.hub_release
        ) as hub:
            print(f"export JUPYTERHUB_API_URL={hub.api_url}")
            print(f"export JUPYTERHUB_API_TOKEN={hub.culler_token}")
            print(f"export IDLE_CULL_ADMIN_TOKEN={hub.admin_token}")
            print(f"export IDLE_CULL_SERVERS_ONLY_TOKEN={hub.servers_only_token}")
            print(f"export IDLE_CULL_HUB_DIR={hub.workdir}")
            if hub.internal_certs is not None:
                # for: idle-cull --ssl-enabled --internal-certs-location=...
                print(f"export IDLE_CULL_INTERNAL_CERTS_LOCATION={hub.internal_certs}")
            print("# hub ready; stop it with Ctrl-C or SIGTERM", flush=True)
            while hub.process.poll() is None:
                time.sleep(0.5)
            print(f"jupyterhub exited unexpectedly:\n{hub.log_tail()}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0
    except HarnessError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
