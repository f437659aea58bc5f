"""Faults between idle-cull and a real JupyterHub, injected by ``faultproxy.FaultProxy``.

Most tests build the same small hub (``build_scene``): servers and users that are idle, and
servers and users in use, kept active by a thread that posts activity the way a busy
notebook does. idle-cull runs as a subprocess against the proxy. For each fault class:

- the pass that meets the fault exits with the documented status;
- no server in use is stopped and no user that should stay is deleted (read back from
  the hub after every pass);
- once the fault clears, the next pass reaches the end state of a pass that never saw a
  fault (``EXPECTED_END_STATE``; the clean pass that closes
  ``test_faults_that_stop_the_pass_cull_nothing`` is such a pass, on a hub shown unchanged);
- the token appears nowhere in the output (``cull`` checks every run), and no run ends
  in a traceback.

Faults that the pass must ride out (bursts, one reset, one stall) get a hub of their own
each. Faults that must stop the pass before anything is culled (exit 3, or 7 for a
listing the hub cut short) cannot change the hub, so they share one hub: each is shown to leave it exactly as it was, with no
DELETE reaching the proxy, and one clean pass at the end reaches the reference.
Set IDLE_CULL_FAULT_TABLE=<file> to append one JSON line per fault class and run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.faultproxy import (
    Answer,
    Fault,
    FaultProxy,
    Seen,
    cut,
    drop_header,
    echo_request,
    meanwhile,
    reset,
    respond,
    rewrite,
    rewrite_json,
    stall,
)
from tests.support.realhub import RealHub, quote_segment, utcnow_iso
from tests.support.records import unusable_token_files

IDLE = 2  # --timeout, seconds
# Idle servers must look idle on the hub's clock, which idle-cull reads from the Date
# header: whole seconds, truncated, so up to 1 s behind. Busy ones are touched every
# TOUCH_EVERY seconds, far below IDLE.
WAIT = IDLE + 1.3
TOUCH_EVERY = 0.25
REQUEST_TIMEOUT = 2
STALL = REQUEST_TIMEOUT + 2
ARGS = (
    f"--timeout={IDLE}",
    "--cull-users",
    "--cull-admin-users=false",
    "--remove-named-servers",
    "--api-page-size=2",
    "--concurrency=3",
    f"--request-timeout={REQUEST_TIMEOUT}",
)

# The scene, in creation order, which is the hub's listing order (by id). With pages of
# two, the unfiltered listing that --cull-users reads is [idle-ida, temp-tim] [nora, boss]
# [busy-bo, fresh-fay].
IN_USE = {("busy-bo", ""), ("nora", "keep")}  # servers that must never be stopped
MUST_STAY = {"nora", "boss", "busy-bo", "fresh-fay"}  # users that must never be deleted
EXPECTED_END_STATE = {
    "nora": {"keep": "running"},  # lab stopped and removed; the active server keeps nora
    "boss": {},  # idle, but an admin (--cull-admin-users=false)
    "busy-bo": {"": "running"},
    "fresh-fay": {},  # no server, recent activity
}  # idle-ida (server stopped, then user deleted) and temp-tim (deleted) are gone

# Requests of a pass over the scene, as (method, path below /hub/api, query subset)
Request = tuple[str, str, dict[str, str]]
PROBE: Request = ("GET", "/", {})
LIST_1 = ("GET", "/users", {"offset": "0"})
LIST_2 = ("GET", "/users", {"offset": "2"})
LIST_3 = ("GET", "/users", {"offset": "4"})
ANY_LISTING: Request = ("GET", "/users", {})
STOP_IDA: Request = ("DELETE", "/users/idle-ida/server", {})
STOP_LAB: Request = ("DELETE", "/users/nora/servers/lab", {})
DELETE_TIM: Request = ("DELETE", "/users/temp-tim", {})
RECHECK_IDA: Request = ("GET", "/users/idle-ida", {})


# --- the scene --------------------------------------------------------------------------


class Toucher:
    """Posts activity for the servers and users in use, every TOUCH_EVERY seconds.

    Straight to the hub (not through the proxy), on its own session (requests sessions
    are not meant to be shared between threads).
    """

    def __init__(self, real_hub: RealHub) -> None:
        self.hub = real_hub
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="toucher", daemon=True)

    def start(self) -> Toucher:
        self._touch(requests.Session())
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.wait(TOUCH_EVERY):
            self._touch(session)

    def _touch(self, session: requests.Session) -> None:
        now = utcnow_iso()
        bodies = {
            "busy-bo": {"last_activity": now, "servers": {"": {"last_activity": now}}},
            "nora": {"last_activity": now, "servers": {"keep": {"last_activity": now}}},
            "fresh-fay": {"last_activity": now},
        }
        for name, body in bodies.items():
            try:
                response = session.post(
                    f"{self.hub.api_url}/users/{name}/activity",
                    json=body,
                    headers={"Authorization": f"token {self.hub.admin_token}"},
                    timeout=10,
                )
                if response.status_code != 200:
                    self.errors.append(f"{name}: {response.status_code} {response.text[:100]}")
            except requests.RequestException as error:
                self.errors.append(f"{name}: {error!r}")


def build_scene(real_hub: RealHub, *, wait: bool = True) -> Toucher:
    """Create the scene on an empty hub and (by default) wait until its idle part is idle."""
    real_hub.create_users(["idle-ida", "temp-tim", "nora"])
    real_hub.create_users(["boss"], admin=True)
    real_hub.create_users(["busy-bo", "fresh-fay"])
    real_hub.start_server("idle-ida")
    real_hub.start_server("nora", "lab")
    real_hub.start_server("nora", "keep")
    real_hub.start_server("busy-bo")
    toucher = Toucher(real_hub).start()
    if wait:
        time.sleep(WAIT)
    return toucher


def end_state(real_hub: RealHub) -> dict[str, dict[str, str]]:
    """Every user and its servers: "running", "pending", or "stopped" for a named server
    that was stopped but not removed. A stopped default server and a removed named server
    are absent (the hub lists a stopped default server for every user)."""
    state = {}
    for user in real_hub.users():
        name = user["name"]
        path = f"/users/{quote_segment(name)}?include_stopped_servers=1"
        model = real_hub.api("GET", path, expect=(200,)).json()
        servers = {}
        for server, s in model["servers"].items():
            if s["ready"]:
                servers[server] = "running"
            elif s.get("pending"):
                servers[server] = "pending"
            elif server:
                servers[server] = "stopped"
        state[name] = servers
    return state


def harm(state: dict[str, dict[str, str]]) -> tuple[list[str], list[str]]:
    """Servers in use that are not running, and users that must stay but are gone."""
    stopped = sorted(f"{u}/{s}" for u, s in IN_USE if state.get(u, {}).get(s) != "running")
    deleted = sorted(u for u in MUST_STAY if u not in state)
    return stopped, deleted


# --- running idle-cull --------------------------------------------------------------------


@dataclass
class Pass:
    status: int
    stderr: str
    seconds: float
    requests: list[Seen]

    def sent(self, method: str) -> list[str]:
        return [s.path for s in self.requests if s.method == method]


def cull(
    real_hub: RealHub,
    proxy: FaultProxy,
    *args: str,
    url: str | None = None,
    token: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 90,
) -> Pass:
    """One pass of ``python -m idle_cull`` against the proxy, as cron would run it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    environment["JUPYTERHUB_API_URL"] = url or proxy.api_url
    environment["JUPYTERHUB_API_TOKEN"] = real_hub.culler_token if token is None else token
    environment.update(env or {})
    proxy.forget()
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "idle_cull", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    for secret in (
        real_hub.culler_token,
        real_hub.admin_token,
        real_hub.servers_only_token,
        real_hub.noscope_token,
    ):
        assert secret not in output, "the API token appears in the output"
    assert "Traceback" not in output, output
    return Pass(result.returncode, result.stderr, seconds, proxy.requests())


# --- fixtures -----------------------------------------------------------------------------

TALLY: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def proxy(shared_real_hub: RealHub) -> Iterator[FaultProxy]:
    with FaultProxy(shared_real_hub.api_url) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
def fault_table() -> Iterator[None]:
    """Append this module's tallies to $IDLE_CULL_FAULT_TABLE (for the closing report)."""
    yield
    target = os.environ.get("IDLE_CULL_FAULT_TABLE")
    if target and TALLY:
        with Path(target).open("a") as out:
            for row in TALLY:
                out.write(json.dumps(row) + "\n")
    TALLY.clear()


@pytest.fixture
def faults(proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The module's proxy with no rules; the proxy itself must not have failed."""
    proxy.clear()
    proxy.errors.clear()
    yield proxy
    proxy.clear()
    errors = list(proxy.errors)
    proxy.errors.clear()
    assert errors == [], f"the fault proxy failed: {errors}"


@pytest.fixture
def scene(real_hub: RealHub) -> Iterator[RealHub]:
    toucher = build_scene(real_hub)
    try:
        yield real_hub
    finally:
        toucher.stop()
    assert toucher.errors == []


def install(
    proxy: FaultProxy, rules: tuple[tuple[tuple[str, str, dict[str, str]], Fault, int | None], ...]
) -> None:
    for (method, path, query), fault, count in rules:
        proxy.add(method, path, fault, count=count, query=query)


# --- faults a pass must ride out, or fail only the actions they hit -------------------------


def _retry_after(status: int, seconds: int) -> Fault:
    return respond(status, headers={"Retry-After": str(seconds)})


@dataclass(frozen=True)
class Case:
    name: str  # the fault class, as in the closing table
    rules: tuple[tuple[tuple[str, str, dict[str, str]], Fault, int | None], ...]
    status: int  # the documented exit status of the pass that meets the fault
    says: tuple[str, ...] = ()  # each appears in that pass's log
    args: tuple[str, ...] = ()
    seconds: tuple[float, float] = (0, 60)  # bounds on that pass's duration
    extra: dict[str, Any] = field(default_factory=dict)


RIDE_OUT = [
    Case(
        "502/503/504 bursts (2 each)",
        (
            (PROBE, respond(503), 2),
            (LIST_1, respond(502), 2),
            (STOP_IDA, respond(503), 2),
            (DELETE_TIM, respond(504), 2),
        ),
        status=0,
        says=(
            "probe the hub version: HTTP 503 (attempt 1 of 5)",
            "list users: HTTP 502 (attempt 2 of 5)",
            "HTTP 504 (attempt 2 of 5)",
        ),
    ),
    Case(
        "429 with Retry-After: 1",
        (
            (LIST_1, _retry_after(429, 1), 1),
            (STOP_LAB, _retry_after(429, 1), 1),
            (DELETE_TIM, _retry_after(429, 1), 1),
        ),
        status=0,
        says=("HTTP 429 (attempt 1 of 5), retrying in 1.0s",),
        seconds=(3, 60),  # three waits of 1 s, one per phase (list, stop, delete)
    ),
    Case(
        "connection reset (before and after the hub acted)",
        (
            (LIST_1, reset(), 2),
            (LIST_3, reset(), 1),
            (STOP_IDA, reset(after_forward=True), 1),  # stopped; the 204 is lost
            (STOP_LAB, reset(after_forward=True), 1),  # stopped and removed; the retry gets 404
            (DELETE_TIM, reset(after_forward=True), 1),  # deleted; the retry gets 404
        ),
        status=0,
        says=(
            "list users: connection failed (attempt 2 of 5)",
            "stop server 'idle-ida': connection failed",
        ),
    ),
    Case(
        "connection cut mid-body (a listing page, a re-check)",
        (
            (LIST_3, cut(0.5), 1),
            (RECHECK_IDA, cut(0.5), 1),
        ),
        status=0,
        says=(
            "list users: answer cut off (attempt 1 of 5)",
            "read user 'idle-ida': answer cut off (attempt 1 of 5)",
        ),
    ),
    Case(
        f"stall past --request-timeout={REQUEST_TIMEOUT} (before and after the hub acted)",
        (
            (LIST_1, stall(STALL), 1),
            (STOP_IDA, stall(STALL, after_forward=True), 1),  # stopped; the answer never comes
        ),
        status=0,
        says=("list users: timed out (attempt 1 of 5)", "stop server 'idle-ida': timed out"),
        seconds=(2 * REQUEST_TIMEOUT, 60),
    ),
    Case(
        "action failures: 500 (not retried), 429/503 until the retries run out",
        (
            (STOP_IDA, respond(500), 1),
            (STOP_LAB, _retry_after(503, 0), None),
            (DELETE_TIM, _retry_after(429, 0), None),
        ),
        status=1,
        says=(
            "stop server idle-ida failed",
            "answered HTTP 503 5 times",
            "answered HTTP 429 5 times",
            "not deleting user idle-ida",
        ),
        extra={
            "after_fault": {
                "idle-ida": {"": "running"},  # its stop failed, so the user stays too
                "temp-tim": {},
                "nora": {"lab": "running", "keep": "running"},
            }
        },
    ),
]


@pytest.mark.parametrize("case", RIDE_OUT, ids=[c.name for c in RIDE_OUT])
def test_faults_a_pass_rides_out(scene: RealHub, faults: FaultProxy, case: Case) -> None:
    real_hub = scene
    install(faults, case.rules)
    first = cull(real_hub, faults, *ARGS, *case.args)
    after_fault = end_state(real_hub)
    faults.clear()
    second = cull(real_hub, faults, *ARGS)
    final = end_state(real_hub)
    stopped, deleted = harm(after_fault)
    TALLY.append(_row(case.name, first, stopped, deleted, final == EXPECTED_END_STATE))

    assert first.status == case.status, first.stderr
    for text in case.says:
        assert text in first.stderr, f"{text!r} not in the log:\n{first.stderr}"
    low, high = case.seconds
    assert low <= first.seconds <= high, f"the faulty pass took {first.seconds:.1f}s"
    assert (stopped, deleted) == ([], []), first.stderr
    for user, servers in case.extra.get("after_fault", {}).items():
        assert after_fault.get(user) == servers, (
            f"{user} after the faulty pass: {after_fault.get(user)}"
        )
    if case.status == 0:
        assert after_fault == EXPECTED_END_STATE, first.stderr
    assert second.status == 0, second.stderr
    assert harm(final) == ([], [])
    assert final == EXPECTED_END_STATE, second.stderr


def _ready_server(name: str, stamp: str) -> dict[str, Any]:
    """A ready server record, started and last active at ``stamp``."""
    return {
        "name": name,
        "ready": True,
        "pending": None,
        "started": stamp,
        "last_activity": stamp,
        "url": "/x/",
        "user_options": {},
    }


def test_hostile_records_on_the_wire(scene: RealHub, faults: FaultProxy) -> None:
    """Listing pages rewritten in flight: look-alike names that, addressed wrongly, would hit
    a user or server in use; the same instants in other notations; garbage records; a
    duplicate across pages. The pass handles or rejects each and reaches the reference."""
    real_hub = scene
    captured: dict[str, Any] = {}

    def first_page(page: dict[str, Any]) -> None:
        captured["ida"] = next(u for u in page["items"] if u["name"] == "idle-ida")
        idle = "2020-01-01T00:00:00Z"
        for name in ("busy-bo?", "busy-bo#x", "busy%2Dbo", "busy-bo/server", "nora/servers/keep"):
            page["items"].append(
                {
                    "kind": "user",
                    "name": name,
                    "admin": False,
                    "groups": [],
                    "created": idle,
                    "last_activity": idle,
                    "servers": {"": _ready_server("", idle)},
                }
            )

    def second_page(page: dict[str, Any]) -> None:
        page["items"] += [
            None,
            "fresh-fay",
            {"name": 42},
            {
                "name": "garbage-ts",
                "last_activity": "yesterday",
                "admin": False,
                "created": None,
                "groups": [],
                "servers": {},
            },
        ]

    def third_page(page: dict[str, Any]) -> None:
        busy, fay = page["items"]
        assert (busy["name"], fay["name"]) == ("busy-bo", "fresh-fay")
        # the same instant, written with a -08:00 offset: read without it, 8 h idle
        fresh = busy["servers"][""]["last_activity"]
        busy["servers"][""]["last_activity"] = _in_zone(fresh, -8)
        idle = "2020-01-01T00:00:00Z"
        for hostile in ("../server", "%2E%2E", "..%2F..%2Fusers%2Fbusy-bo"):
            busy["servers"][hostile] = _ready_server(hostile, idle)
        fay["last_activity"] = fay["last_activity"].removesuffix("Z")  # naive, as hubs before 2.0
        page["items"].append(captured["ida"])  # listed twice

    install(
        faults,
        (
            (LIST_1, rewrite_json(first_page), 1),
            (LIST_2, rewrite_json(second_page), 1),
            (LIST_3, rewrite_json(third_page), 1),
        ),
    )
    # Without the re-check, nothing stands between a misread record and an action.
    first = cull(real_hub, faults, *ARGS, "--recheck=false")
    after = end_state(real_hub)
    faults.clear()
    second = cull(real_hub, faults, *ARGS)
    final = end_state(real_hub)
    stopped, deleted = harm(after)
    TALLY.append(
        _row(
            "hostile records rewritten in the listing",
            first,
            stopped,
            deleted,
            final == EXPECTED_END_STATE,
        )
    )

    assert first.status == 0, first.stderr
    assert (stopped, deleted) == ([], []), first.stderr
    assert after == EXPECTED_END_STATE, first.stderr
    # every action on a real user went to exactly the resource planned, once
    deletes = first.sent("DELETE")
    assert deletes.count("/users/idle-ida/server") == 1
    assert "/users/busy-bo/server" not in deletes
    assert not {"/users/busy-bo", "/users/nora", "/users/fresh-fay", "/users/boss"} & set(deletes)
    assert "/users/busy-bo/servers/..%2Fserver" in deletes  # the hub answers 404
    assert "user 'idle-ida' listed twice" in first.stderr
    assert "rejected_records=4" in first.stderr
    assert "user 'garbage-ts': last_activity is not an ISO 8601 timestamp" in first.stderr
    assert second.status == 0, second.stderr
    assert final == EXPECTED_END_STATE


def _in_zone(stamp: str, hours: int) -> str:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment.astimezone(timezone(timedelta(hours=hours))).isoformat()


def _row(
    name: str, first: Pass, stopped: list[str], deleted: list[str], reached: bool
) -> dict[str, Any]:
    return {
        "fault": name,
        "status": first.status,
        "completed": first.status in (0, 1),
        "wrongly_stopped": len(stopped),
        "wrongly_deleted": len(deleted),
        "next_pass_reached_reference": reached,
        "seconds": round(first.seconds, 1),
    }


# --- faults that must stop the pass before anything is culled (exit 3 or 7) ----------------


def _truncated(answer: Answer) -> Answer:
    return replace(answer, body=answer.body[: len(answer.body) // 2])


def _corrupted(answer: Answer) -> Answer:
    return replace(answer, body=answer.body.replace(b'"', b"'", 3))


def _next_back_to_start(page: dict[str, Any]) -> None:
    page["_pagination"]["next"] = {"offset": 0, "limit": 2, "url": "http://127.0.0.1/"}


NOT_A_HUB_PAGE = "<!DOCTYPE html><html><body><form>Sign in to continue</form></body></html>"

STOPPERS = [
    Case("500 on the listing", ((LIST_1, respond(500), 1),), 3, ("HTTP 500",)),
    Case(
        "401 in the middle of the listing",
        ((LIST_2, respond(401), 1),),
        3,
        ("rejected the API token (401)",),
    ),
    Case(
        "503 (Retry-After: 0) until the retries run out",
        ((ANY_LISTING, _retry_after(503, 0), None),),
        3,
        ("answered HTTP 503 5 times",),
    ),
    Case(
        "stall past --request-timeout=0.5 on every attempt",
        ((PROBE, stall(2), None),),
        3,
        ("no whole answer within 0.5s, 5 times",),
        args=("--request-timeout=0.5",),
        # 5 timeouts, plus the backoff (3.75 to 7.5 s jittered), plus start-up
        seconds=(2.5 + 3.75, 2.5 + 7.5 + 3),
    ),
    Case(
        "truncated JSON (second page)",
        ((LIST_2, rewrite(_truncated, "truncate"), 1),),
        3,
        ("is not JSON",),
    ),
    Case(
        "connection cut mid-body on every attempt",
        ((LIST_3, cut(0.5), None),),
        3,
        ("could not list users: the connection was cut before the whole answer arrived, 5 times",),
    ),
    Case("corrupt JSON", ((LIST_1, rewrite(_corrupted, "corrupt"), 1),), 3, ("is not JSON",)),
    Case(
        "JSON of the wrong shape",
        ((LIST_3, rewrite_json(lambda p: {"users": p["items"]}, "reshape"), 1),),
        3,
        ("lacks 'items' or '_pagination'",),
    ),
    Case(
        "an HTML page instead of JSON",
        ((LIST_1, respond(200, NOT_A_HUB_PAGE, content_type="text/html"), 1),),
        3,
        ("is not JSON (text/html",),
    ),
    Case(
        "pagination next that loops back",
        ((LIST_2, rewrite_json(_next_back_to_start, "loop next"), 1),),
        3,
        ("does not advance",),
    ),
    Case(
        # The hub then answers a plain list, cut at its page limit without a word.
        "a proxy that drops the pagination Accept header",
        ((ANY_LISTING, drop_header("Accept"), None),),
        7,
        ("the listing is incomplete", "plain list of 2 users", "let that header through"),
    ),
]


def test_faults_that_stop_the_pass_cull_nothing(real_hub: RealHub, faults: FaultProxy) -> None:
    """Each fault in turn on one hub: exit 3 (7), no DELETE sent, the hub exactly as before.

    The faulty passes run with --timeout=0, so had one gone ahead it would have stopped
    every server and deleted every user but the admin; meanwhile the idle part of the
    scene becomes idle for the clean pass at the end.
    """
    built = time.monotonic()
    toucher = build_scene(real_hub, wait=False)
    try:
        _stoppers_then_clean_pass(real_hub, faults, built)
    finally:
        toucher.stop()
    assert toucher.errors == []


def _stoppers_then_clean_pass(real_hub: RealHub, faults: FaultProxy, built: float) -> None:
    before = end_state(real_hub)
    assert harm(before) == ([], [])
    problems = []
    for case in STOPPERS:
        faults.clear()
        install(faults, case.rules)
        run = cull(real_hub, faults, *ARGS, "--timeout=0", *case.args)
        after = end_state(real_hub)
        stopped, deleted = harm(after)
        TALLY.append(_row(case.name, run, stopped, deleted, False))
        low, high = case.seconds
        checks = {
            "exit status": run.status == case.status,
            "message": all(text in run.stderr for text in case.says),
            "says nothing was culled": "nothing was culled" in run.stderr,
            "no DELETE sent": run.sent("DELETE") == [],
            "hub unchanged": after == before,
            f"took {run.seconds:.1f}s": low <= run.seconds <= high,
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            problems.append(f"{case.name}: {', '.join(failed)}\n{run.stderr}")
    # The reference: a pass that meets no fault, on a hub the faulty passes left unchanged.
    faults.clear()
    time.sleep(max(0.0, built + WAIT - time.monotonic()))
    clean = cull(real_hub, faults, *ARGS)
    final = end_state(real_hub)
    reached = final == EXPECTED_END_STATE
    for row in TALLY[-len(STOPPERS) :]:
        row["next_pass_reached_reference"] = reached
    assert problems == [], "\n\n".join(problems)
    assert clean.status == 0, clean.stderr
    assert final == EXPECTED_END_STATE, clean.stderr


def test_pagination_that_never_ends_is_refused(real_hub: RealHub, faults: FaultProxy) -> None:
    real_hub.create_users(["someone"])
    real_hub.start_server("someone")
    before = end_state(real_hub)

    def always_more(page: dict[str, Any]) -> None:
        pagination = page["_pagination"]
        pagination["next"] = {
            "offset": pagination["offset"] + 2,
            "limit": 2,
            "url": "http://127.0.0.1/",
        }

    install(faults, ((ANY_LISTING, rewrite_json(always_more, "endless next"), None),))
    try:
        run = cull(real_hub, faults, *ARGS, "--timeout=0", timeout=4)
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"the pass was still listing after 4 s ({len(faults.requests('GET', '/users'))} pages)"
        )
    assert run.status == 3, run.stderr
    assert run.sent("DELETE") == []
    assert end_state(real_hub) == before


def _change_once(action: Callable[[], None]) -> Callable[[], None]:
    """``action``, the first time only (a retried page must not change the hub twice)."""
    done: list[bool] = []

    def once() -> None:
        if not done:
            done.append(True)
            action()

    return once


@pytest.mark.parametrize("cull_users", [False, True], ids=["state-ready", "unfiltered"])
def test_a_hub_changing_between_pages_is_not_an_incomplete_listing(
    real_hub: RealHub, faults: FaultProxy, cull_users: bool
) -> None:
    """Between pages of two, two listed users leave the listing and one joins it: the hub's
    count moves, and offsets with it, so fewer records arrive than the first page counted
    (a check of records against that count would cry wolf). Measured in offsets covered
    against the hub's latest count, the listing is complete: exit 0, no alarm."""
    real_hub.create_users(["gone-1", "gone-2"])  # no server: first in the unfiltered listing
    with_servers = [f"c{i}" for i in range(8)]
    real_hub.create_users(with_servers)
    for name in with_servers:
        real_hub.start_server(name)

    def leave() -> None:
        for gone, server_of in (("gone-1", "c0"), ("gone-2", "c1")):
            if cull_users:  # the unfiltered listing: listed users are deleted
                real_hub.api("DELETE", f"/users/{gone}", expect=(204,))
            else:  # state=ready: listed users' servers stop
                real_hub.stop_server(server_of)

    def join() -> None:
        real_hub.create_users(["late-comer"])
        real_hub.start_server("late-comer")

    install(
        faults,
        (
            (LIST_2, meanwhile(_change_once(leave), "two listed users leave"), None),
            (LIST_3, meanwhile(_change_once(join), "a user joins"), None),
        ),
    )
    args = ["--timeout=1h", "--api-page-size=2", *(["--cull-users"] if cull_users else [])]
    run = cull(real_hub, faults, *args)
    assert run.status == 0, run.stderr
    assert "incomplete" not in run.stderr
    changed = [s.fault for s in run.requests if s.fault]
    assert changed == ["two listed users leave", "a user joins"], run.stderr
    # The first page counted 8 users with a server (10 users in all); 7 (9) were listed:
    # two shifted out of reach by the leavers, one late-comer in.
    assert f"users_listed={9 if cull_users else 7} " in run.stderr, run.stderr
    assert run.sent("DELETE") == []


@pytest.mark.parametrize("status", [403, 500])
def test_an_error_body_quoting_the_token_does_not_leak_it(
    real_hub: RealHub, faults: FaultProxy, status: int
) -> None:
    real_hub.create_users(["someone"])
    real_hub.start_server("someone")
    install(faults, ((LIST_1, echo_request(status), 1),))
    run = cull(real_hub, faults, "--timeout=0")  # asserts the token is not in the output
    assert run.status == 3, run.stderr
    assert run.sent("DELETE") == []


# --- names the real hub accepts -----------------------------------------------------------


def test_hostile_names_on_the_real_hub(real_hub: RealHub, faults: FaultProxy) -> None:
    """Idle users whose names, sent unquoted, would address an active look-alike."""
    idle = ["what?", "pct%61x", "#tag", "a b", "ünïcødé", "x.."]
    busy = ["what", "pctax", "tag", "a", "x"]
    real_hub.create_users(idle + busy)
    for name in [*idle[:2], *idle[3:], *busy]:
        if name != "#tag":
            real_hub.start_server(name)
    time.sleep(WAIT)
    for name in busy:
        real_hub.touch(name)
    run = cull(real_hub, faults, f"--timeout={IDLE}", "--cull-users")
    state = end_state(real_hub)
    assert run.status == 0, run.stderr
    assert state == {name: {"": "running"} for name in busy}, run.stderr
    deletes = set(run.sent("DELETE"))
    assert {f"/users/{quote_segment(n)}" for n in idle} <= deletes


# --- bad input from the operator: nothing reaches the hub ---------------------------------


@pytest.fixture
def token_files(tmp_path: Path, shared_real_hub: RealHub) -> dict[str, Path]:
    """Token files that cannot be used (see ``tests.support.records.unusable_token_files``)."""
    return unusable_token_files(tmp_path, shared_real_hub.culler_token, shared_real_hub.admin_token)


@dataclass(frozen=True)
class OperatorError:
    id: str
    args: tuple[str, ...] = ()  # "--api-token-file=@name" points at token_files[name]
    env: dict[str, str] = field(default_factory=dict)
    url: Any = None  # turns the proxy's API URL into the one given, if set
    message: str = ""


# The full table runs in-process (tests/test_hostile_data.py); these few show at the
# network level that nothing at all leaves the process.
OPERATOR_ERRORS = [
    OperatorError(
        "wrong-scheme",
        url=lambda u: u.replace("http://", "ftp://"),
        message="is not an http(s) URL",
    ),
    OperatorError(
        "url-without-hub-api",
        url=lambda u: u.removesuffix("/hub/api"),
        message="does not end in /hub/api",
    ),
    OperatorError("negative-max-age", ("--max-age=-1h",), message="--max-age"),
    OperatorError(
        "token-file-not-utf-8", ("--api-token-file=@not-utf-8",), message="cannot read token file"
    ),
    OperatorError(
        "token-file-two-tokens", ("--api-token-file=@two-tokens",), message="line breaks"
    ),
]


@pytest.mark.parametrize("case", OPERATOR_ERRORS, ids=[o.id for o in OPERATOR_ERRORS])
def test_operator_errors_exit_2_and_send_nothing(
    shared_real_hub: RealHub, faults: FaultProxy, token_files: dict[str, Path], case: OperatorError
) -> None:
    """One clear line, exit 2, and not a single request reaches the proxy (or the hub)."""
    args = [
        f"{a.split('=@')[0]}={token_files[a.split('=@')[1]]}" if "=@" in a else a for a in case.args
    ]
    url = case.url(faults.api_url) if case.url else None
    run = cull(shared_real_hub, faults, *args, url=url, env=case.env)
    assert run.status == 2, run.stderr
    assert case.message in run.stderr, run.stderr
    assert run.requests == [], "a request reached the proxy"
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line or "Error:" in line]
    assert len(errors) == 1, run.stderr


def test_https_to_a_plain_http_server_exits_3_at_once(
    shared_real_hub: RealHub, faults: FaultProxy
) -> None:
    """The hub's public proxy answers a TLS hello with an HTTP error: not retried, exit 3.

    (The hub's own port instead waits for a request line that never comes, so there the
    pass takes --request-timeout times the 5 attempts, like any silent server.)"""
    url = shared_real_hub.public_url.replace("http://", "https://") + "/hub/api"
    run = cull(shared_real_hub, faults, "--timeout=60", url=url)
    assert run.status == 3, run.stderr
    assert "TLS handshake" in run.stderr
    assert run.seconds < 10


def test_wrong_base_url_behind_the_public_proxy_exits_3(
    shared_real_hub: RealHub, faults: FaultProxy
) -> None:
    run = cull(
        shared_real_hub, faults, "--timeout=60", url=f"{shared_real_hub.public_url}/jupyter/hub/api"
    )
    assert run.status == 3, run.stderr
    # The proxy redirects the unknown path to the hub's login page: never followed (issue 13).
    assert (
        "no JupyterHub API there" in run.stderr
        or "is not JSON" in run.stderr
        or "a redirect to" in run.stderr
    )


# --- the proxy itself ---------------------------------------------------------------------


def test_the_proxy_stops_promptly_with_a_stall_in_flight(shared_real_hub: RealHub) -> None:
    proxy = FaultProxy(shared_real_hub.api_url).start()
    proxy.add("GET", "/", stall(60))
    session = requests.Session()
    assert session.get(f"{proxy.api_url}/users", timeout=5).status_code == 403  # forwarded
    caught: list[BaseException] = []

    def stalled_request() -> None:
        try:
            session.get(f"{proxy.api_url}/", timeout=30)
        except requests.RequestException as error:
            caught.append(error)

    worker = threading.Thread(target=stalled_request)
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 3
    worker.join(timeout=5)
    assert len(caught) == 1  # the client saw the connection end, not an answer
    assert [s.fault for s in proxy.requests()] == ["", "stall 60s"]
    assert proxy.errors == []
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        FaultProxy("http://example.org:8081/hub/api")
