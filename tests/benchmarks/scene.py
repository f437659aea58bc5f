"""A real JupyterHub at benchmark scale: N users, M running servers, stops that take D s.

Built on ``tests.support.realhub.RealHub`` (the no-op spawner of ``tests/support/hub_config.py``), with
what scale needs on top:

- the hub's work directory (its sqlite db) on ``/dev/shm`` when there is one: on disk,
  sqlite's fsyncs make a spawn cost about 110 ms instead of 40 ms, and the many
  re-spawns between contenders would take most of the run;
- users created with one ``POST /users`` per 500 names;
- servers spawned by ``SPAWN_WORKERS`` concurrent requests, then waited for;
- counts read from the paginated listing, with every wait bounded.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from tests.support.realhub import HarnessError, RealHub, server_path

PAGINATION_ACCEPT = "application/jupyterhub-pagination+json"
CREATE_CHUNK = 500
SPAWN_WORKERS = 10
REQUEST_TIMEOUT = 600.0
SHM = Path("/dev/shm")


@dataclass(frozen=True)
class Case:
    """One hub shape: ``users`` users, ``servers`` of them running, stops taking ``stop_delay`` s."""

    users: int
    servers: int
    stop_delay: float

    def __post_init__(self) -> None:
        if not 0 <= self.servers <= self.users:
            raise ValueError(f"servers must be between 0 and users: {self}")
        if self.stop_delay < 0:
            raise ValueError(f"stop_delay must be >= 0: {self}")

    @classmethod
    def parse(cls, text: str) -> Case:
        """``"1000x500x0.5"`` -> ``Case(1000, 500, 0.5)``."""
        try:
            users, servers, delay = text.lower().split("x")
            return cls(int(users), int(servers), float(delay))
        except ValueError:
            raise ValueError(
                f"a case is USERSxSERVERSxSTOP_SECONDS, e.g. 1000x500x0.5: {text!r}"
            ) from None

    @property
    def label(self) -> str:
        return f"N={self.users} M={self.servers} D={self.stop_delay:g}s"


class Scene:
    """A running hub plus the bulk admin operations the benchmark needs."""

    def __init__(self, hub: RealHub, case: Case) -> None:
        self.hub = hub
        self.case = case
        self.names = [f"bench-{i:06d}" for i in range(case.users)]
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_maxsize=SPAWN_WORKERS + 2, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.headers["Authorization"] = f"token {hub.admin_token}"

    @property
    def api_url(self) -> str:
        return self.hub.api_url

    @property
    def culler_token(self) -> str:
        return self.hub.culler_token

    def close(self) -> None:
        self._session.close()

    def _call(
        self, method: str, path: str, expect: tuple[int, ...], **kwargs: Any
    ) -> requests.Response:
        response = self._session.request(
            method, f"{self.api_url}{path}", timeout=REQUEST_TIMEOUT, **kwargs
        )
        if response.status_code not in expect:
            raise HarnessError(
                f"{method} {path} answered {response.status_code}, expected {expect}: "
                f"{response.text[:300]}"
            )
        return response

    def create_users(self) -> float:
        """Create every user of the case; returns the seconds it took."""
        started = time.perf_counter()
        for start in range(0, len(self.names), CREATE_CHUNK):
            chunk = self.names[start : start + CREATE_CHUNK]
            self._call("POST", "/users", (201,), json={"usernames": chunk})
        return time.perf_counter() - started

    def start_servers(self) -> float:
        """Spawn the first ``case.servers`` users' default servers and wait until all are ready."""
        started = time.perf_counter()
        targets = self.names[: self.case.servers]

        def spawn(name: str) -> None:
            self._call("POST", server_path(name), (201, 202), json={})

        with ThreadPoolExecutor(max_workers=SPAWN_WORKERS) as pool:
            list(pool.map(spawn, targets))
        deadline = time.monotonic() + 60 + 0.2 * len(targets)
        while self.count("ready") < len(targets):
            if time.monotonic() > deadline:
                raise HarnessError(f"servers not all ready after {len(targets)} spawns")
            time.sleep(0.2)
        return time.perf_counter() - started

    def count(self, state: str) -> int:
        """How many users the listing with ``state`` returns (``ready`` is filtered per page)."""
        if state != "ready":
            body = self._call(
                "GET",
                "/users",
                (200,),
                params={"state": state, "limit": 1},
                headers={"Accept": PAGINATION_ACCEPT},
            ).json()
            return int(body["_pagination"]["total"])
        seen = 0
        offset = 0
        for _ in range(self.case.users // 200 + 2):  # bounded: one page per 200 users
            body = self._call(
                "GET",
                "/users",
                (200,),
                params={"state": "ready", "offset": offset, "limit": 200},
                headers={"Accept": PAGINATION_ACCEPT},
            ).json()
            seen += len(body["items"])
            following = body["_pagination"]["next"]
            if not following:
                break
            offset = following["offset"]
        return seen

    def wait_all_stopped(self, timeout: float) -> int:
        """Wait until no server is active; return how many were still active at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            active = self.count("active")
            if active == 0 or time.monotonic() > deadline:
                return active
            time.sleep(0.2)

    def stop_all(self) -> None:
        """Stop whatever a failed contender left running, so the next one starts clean."""
        self.hub.set_stop_delay(0)
        for name in self.names[: self.case.servers]:
            self._call("DELETE", server_path(name), (202, 204, 404))
        self.wait_all_stopped(60)
        self.hub.set_stop_delay(self.case.stop_delay)


@contextmanager
def running_scene(case: Case, **hub_overrides: Any) -> Iterator[Scene]:
    """Start a hub for ``case`` (db on ``/dev/shm`` if possible), create its users, stop it at the end."""
    parent = SHM if SHM.is_dir() else None
    workdir = Path(tempfile.mkdtemp(prefix="idle-cull-bench-", dir=parent))
    try:
        hub = RealHub.start(workdir, **hub_overrides)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    scene = Scene(hub, case)
    try:
        hub.set_stop_delay(case.stop_delay)
        yield scene
    finally:
        scene.close()
        hub.stop()
        shutil.rmtree(workdir, ignore_errors=True)
