"""Issue 13 against a real JupyterHub behind the fault proxy: the two wrong culls.

A front proxy that redirects a DELETE, or writes its own ``Date`` header from a clock
hours ahead, made idle-cull report servers as stopped (or stop active ones) with exit 0.
Each test reads the hub back afterwards: the server in use must still be running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from tests.support.faultproxy import Answer, FaultProxy, respond, rewrite
from tests.support.realhub import RealHub


@pytest.fixture
def faults(shared_real_hub: RealHub) -> Iterator[FaultProxy]:
    with FaultProxy(shared_real_hub.api_url) as proxy:
        yield proxy
        assert list(proxy.errors) == []


def cull(real_hub: RealHub, proxy: FaultProxy, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    environment["JUPYTERHUB_API_URL"] = proxy.api_url
    environment["JUPYTERHUB_API_TOKEN"] = real_hub.culler_token
    result = subprocess.run(
        [sys.executable, "-m", "idle_cull", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert real_hub.culler_token not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def running(real_hub: RealHub, name: str) -> bool:
    user = real_hub.user(name)
    return bool(user and user.get("servers", {}).get("", {}).get("ready"))


def test_a_redirected_stop_is_not_counted_as_a_stop(real_hub: RealHub, faults: FaultProxy) -> None:
    """The redirect points at the user's own URL: followed, the DELETE became a GET (200)."""
    real_hub.create_users(["ann"])
    real_hub.start_server("ann")
    location = f"{faults.api_url}/users/ann"
    faults.add("DELETE", "/users/ann/server", respond(302, b"", headers={"Location": location}))
    result = cull(real_hub, faults, "--timeout=0", "--recheck-after=0", "--report=json")
    assert result.returncode == 1, result.stderr
    (entry,) = json.loads(result.stdout)["entries"]
    assert entry["outcome"] == "failed"
    assert f"a redirect to '{location}'" in entry["error"]
    assert [s.method for s in faults.requests() if s.path == "/users/ann"] == [
        "GET"
    ]  # the re-check only: the redirect was not followed as a GET
    assert running(real_hub, "ann")


def test_a_front_proxy_clock_hours_ahead_stops_nothing(
    real_hub: RealHub, faults: FaultProxy
) -> None:
    real_hub.create_users(["bob"])
    real_hub.start_server("bob")
    real_hub.touch("bob")
    ahead = format_datetime(datetime.now(timezone.utc) + timedelta(hours=3), usegmt=True)

    def restamp(answer: Answer) -> Answer:
        return answer.with_header("Date", ahead)

    faults.add("GET", ".*", rewrite(restamp, "Date 3h ahead"))
    result = cull(real_hub, faults, "--timeout=1h")
    assert result.returncode == 6, result.stderr
    assert "differ by" in result.stderr
    assert [s for s in faults.requests() if s.method == "DELETE"] == []
    assert running(real_hub, "bob")
