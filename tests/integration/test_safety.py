"""The safety rails against a real JupyterHub: dry run, caps, re-check, lock, signals."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import PAST_IDLE, cull, servers_of
from tests.support.realhub import LOG_FILE, RealHub

IDLE = "--timeout=3"


class HubLog:
    """Counts the culler's mutating requests in the hub's own request log."""

    def __init__(self, real_hub: RealHub) -> None:
        self.path = real_hub.workdir / LOG_FILE
        self.start = self.path.stat().st_size

    def deletes(self) -> list[str]:
        with self.path.open("rb") as log:
            log.seek(self.start)
            text = log.read().decode(errors="replace")
        return re.findall(r"\b\d{3} (?:DELETE|POST|PATCH|PUT) (/hub/api/\S+)", text)


def planned(stderr: str) -> set[str]:
    return set(re.findall(r"DRY RUN: (?:stop server|delete user) (\S+):", stderr))


def done(stderr: str) -> set[str]:
    return set(re.findall(r"(?:stop server|delete user) (\S+): (?:stopped|deleted)\b", stderr))


def test_dry_run_changes_nothing_and_the_real_run_does_exactly_that(real_hub: RealHub) -> None:
    real_hub.create_users(["ann", "ben", "cal", "dee"])
    real_hub.start_server("ann")
    real_hub.start_server("ben", "lab")
    real_hub.start_server("cal")
    time.sleep(PAST_IDLE)
    real_hub.touch("cal")
    before = {name: servers_of(real_hub, name) for name in ("ann", "ben", "cal", "dee")}
    log = HubLog(real_hub)
    dry = cull(real_hub, IDLE, "--cull-users", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "summary: DRY RUN, nothing was changed" in dry.stderr
    assert log.deletes() == []  # the hub saw no mutating request at all
    assert {name: servers_of(real_hub, name) for name in before} == before
    assert planned(dry.stderr) == {"ann", "ben/lab", "ben", "dee"}
    real = cull(real_hub, IDLE, "--cull-users")
    assert real.returncode == 0, real.stderr
    assert done(real.stderr) == planned(dry.stderr)
    assert real_hub.user("cal") is not None
    assert [u["name"] for u in real_hub.users()] == ["cal"]


def test_cap_refuses_the_whole_plan(real_hub: RealHub) -> None:
    names = ["c1", "c2", "c3"]
    real_hub.create_users(names)
    for name in names:
        real_hub.start_server(name)
    time.sleep(PAST_IDLE)
    log = HubLog(real_hub)
    result = cull(real_hub, IDLE, "--max-cull-fraction=0.5")
    assert result.returncode == 4, result.stderr
    assert log.deletes() == []
    assert all(servers_of(real_hub, n) == {""} for n in names)
    assert result.stderr.count("would stop server c") == 3
    within = cull(real_hub, IDLE, "--max-culls=3")
    assert within.returncode == 0, within.stderr
    assert all(servers_of(real_hub, n) == set() for n in names)


@pytest.mark.matrix  # the Date header and GET /users/{name}, on every release
def test_hub_clock_is_used(real_hub: RealHub) -> None:
    result = cull(real_hub, IDLE)
    assert result.returncode == 0
    assert "measuring idleness on the hub's clock" in result.stderr
    assert "clock is" not in result.stderr  # same machine: no skew worth a warning


@pytest.mark.matrix  # the Date header and GET /users/{name}, on every release
def test_recheck_spares_a_server_that_woke_up_during_the_pass(real_hub: RealHub) -> None:
    real_hub.create_users(["first", "second"])
    real_hub.start_server("first")
    real_hub.start_server("second")
    time.sleep(PAST_IDLE)
    # first's stop takes 2 s and the hub answers 202 after 1 s; with one worker, second is
    # re-checked only after that, and by then it has been used.
    real_hub.set_stop_delay(2)
    process = start_cull(real_hub, IDLE, "--concurrency=1", "--recheck-after=0")
    wait_until(lambda: pending_stop(real_hub, "first"), "first's stop to begin")
    real_hub.touch("second")
    stderr = finish(process)
    assert process.returncode == 0, stderr
    assert "stop server first: pending" in stderr
    assert re.search(
        r"stop server second: skipped \(re-check: idle [\d.]+s < 3s \(--timeout\)\)", stderr
    )
    assert servers_of(real_hub, "second") == {""}


def test_lock_held_by_another_pass_exits_75(real_hub: RealHub, tmp_path: Path) -> None:
    real_hub.create_users(["locked"])
    real_hub.start_server("locked")
    time.sleep(PAST_IDLE)
    lock = tmp_path / "idle-cull.lock"
    with lock.open("w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held = cull(real_hub, IDLE, f"--lock-file={lock}")
    assert held.returncode == 75
    assert servers_of(real_hub, "locked") == {""}
    free = cull(real_hub, IDLE, f"--lock-file={lock}")
    assert free.returncode == 0, free.stderr
    assert servers_of(real_hub, "locked") == set()


def test_sigterm_finishes_in_flight_and_attempts_nothing_new(real_hub: RealHub) -> None:
    names = [f"t{i}" for i in range(5)]
    real_hub.create_users(names)
    for name in names:
        real_hub.start_server(name)
    time.sleep(PAST_IDLE)
    real_hub.set_stop_delay(0.6)
    process = start_cull(real_hub, IDLE, "--concurrency=1")
    wait_until(lambda: any(pending_stop(real_hub, n) for n in names), "the first stop to begin")
    process.send_signal(signal.SIGTERM)
    stderr = finish(process)
    assert process.returncode == 1, stderr
    assert "SIGTERM received: starting no new actions" in stderr
    attempted = len(re.findall(r"stop server t\d: (?:stopped|pending)", stderr))
    assert 1 <= attempted < 5
    assert f"server_not_attempted={5 - attempted}" in stderr
    time.sleep(1)
    still_running = [n for n in names if servers_of(real_hub, n)]
    assert len(still_running) == 5 - attempted
    assert "summary:" in stderr.splitlines()[-1]  # the pass reported to the end


def start_cull(real_hub: RealHub, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env.update(JUPYTERHUB_API_URL=real_hub.api_url, JUPYTERHUB_API_TOKEN=real_hub.culler_token)
    return subprocess.Popen(
        [sys.executable, "-m", "idle_cull", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    _, stderr = process.communicate(timeout=60)
    return stderr


def pending_stop(real_hub: RealHub, name: str) -> bool:
    model = real_hub.user(name) or {}
    return any(s.get("pending") == "stop" for s in model.get("servers", {}).values())


def wait_until(condition: object, what: str, timeout: float = 20) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_deadline_ends_the_pass_and_reports_the_rest(real_hub: RealHub) -> None:
    names = [f"d{i}" for i in range(4)]
    real_hub.create_users(names)
    for name in names:
        real_hub.start_server(name)
    time.sleep(PAST_IDLE)
    real_hub.set_stop_delay(0.7)
    result = cull(real_hub, IDLE, "--concurrency=1", "--deadline=1", "--report=json")
    assert result.returncode == 1, result.stderr
    assert "--deadline of 1s passed" in result.stderr
    document = json.loads(result.stdout)
    outcomes = [e["outcome"] for e in document["entries"]]
    attempted = outcomes.count("stopped")
    assert 1 <= attempted < 4
    assert outcomes.count("not_attempted") == 4 - attempted
    assert document["interrupted"].startswith("--deadline")
    assert sum(1 for n in names if servers_of(real_hub, n)) == 4 - attempted
