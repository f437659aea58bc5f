"""Tests of the real-hub harness itself, asserting on what the real JupyterHub reports.

They pin the hub behaviour idle-cull's integration tests build on (scopes, slow stops,
pagination, activity), so a hub upgrade that changes it fails here first, with a clear name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.realhub import (
    PAGINATION_ACCEPT,
    REPO_ROOT,
    HarnessError,
    HubAPIError,
    RealHub,
    quote_segment,
    server_path,
)
from tests.support.releases import HubRelease

# Also run on every older release of tests/support/hub_releases.txt (scripts/test-hub).
pytestmark = pytest.mark.matrix

ODD_NAMES = ["with space", "pct%41x", "ünïcødé", "dot.dash-under_score", "at@plus+"]


def parse_ts(value: str) -> datetime:
    """Parse the hub's ISO timestamps (trailing Z) on every supported Python."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def server_model(real_hub: RealHub, user: str, server_name: str = "") -> dict[str, Any]:
    model = real_hub.user(user)
    assert model is not None, f"user {user!r} is gone"
    server: dict[str, Any] = model["servers"][server_name]
    return server


def group_names(real_hub: RealHub) -> list[str]:
    response = real_hub.api("GET", "/groups", headers={"Accept": PAGINATION_ACCEPT}, expect=(200,))
    return [group["name"] for group in response.json()["items"]]


def test_create_users_with_odd_names_round_trip(real_hub: RealHub) -> None:
    real_hub.create_users(ODD_NAMES)

    assert sorted(user["name"] for user in real_hub.users()) == sorted(ODD_NAMES)
    for name in ODD_NAMES:
        model = real_hub.user(name)
        assert model is not None
        assert model["name"] == name  # "pct%41x" must not come back as "pctAx"
    assert real_hub.user("nobody") is None


def test_odd_names_work_for_servers_activity_and_groups(real_hub: RealHub) -> None:
    name = "ünï cødé%2f"
    real_hub.create_users([name])
    real_hub.start_server(name)
    real_hub.start_server(name, "named-1")
    real_hub.touch(name, "named-1")
    real_hub.add_to_group("group with space", [name])

    model = real_hub.user(name)
    assert model is not None
    assert set(model["servers"]) == {"", "named-1"}
    assert model["groups"] == ["group with space"]
    real_hub.stop_server(name, "named-1")
    real_hub.stop_server(name)
    assert real_hub.user(name)["servers"] == {}  # type: ignore[index]


def test_hub_accepts_only_slugs_as_new_server_names(real_hub: RealHub) -> None:
    real_hub.create_users(["alice"])

    for bad in ("named one", "Upper", "1st", "ünï"):
        response = real_hub.api("POST", server_path("alice", bad), json={})
        if real_hub.version_info < (6,):
            # before 6.0 the hub takes any server name: idle-cull quotes whatever it lists
            assert response.status_code in (201, 202), bad
            continue
        assert response.status_code == 400, bad
        assert "Invalid server_name" in response.json()["message"]


def test_hub_rejects_slash_and_lowercases_names(real_hub: RealHub) -> None:
    with pytest.raises(HubAPIError, match="Invalid username") as excinfo:
        real_hub.create_users(["a/b"])
    assert excinfo.value.response.status_code == 400

    with pytest.raises(HarnessError, match="lowercases"):
        real_hub.create_users(["Carol"])
    assert real_hub.user("carol") is not None


def test_create_admin_users(real_hub: RealHub) -> None:
    real_hub.create_users(["root1", "root2"], admin=True)
    real_hub.create_users(["plain"])

    admins = {user["name"]: user["admin"] for user in real_hub.users()}
    assert admins == {"root1": True, "root2": True, "plain": False}


def test_start_default_and_named_server(real_hub: RealHub) -> None:
    real_hub.create_users(["alice"])
    real_hub.start_server("alice")
    real_hub.start_server("alice", "gpu", user_options={"profile": "gpu"})

    model = real_hub.user("alice")
    assert model is not None
    assert set(model["servers"]) == {"", "gpu"}
    for server in model["servers"].values():
        assert server["ready"] is True
        assert server["pending"] is None
        assert server["started"] is not None
    assert model["servers"]["gpu"]["user_options"] == {"profile": "gpu"}
    assert model["servers"]["gpu"]["url"] == "/user/alice/gpu/"


def test_culler_token_sees_servers_and_activity(real_hub: RealHub) -> None:
    real_hub.create_users(["alice"])
    real_hub.start_server("alice", "gpu", user_options={"profile": "gpu"})

    users = real_hub.api("GET", "/users", token=real_hub.culler_token, expect=(200,)).json()

    assert [user["name"] for user in users] == ["alice"]
    server = users[0]["servers"]["gpu"]
    assert server["ready"] is True
    assert server["user_options"] == {"profile": "gpu"}
    assert users[0]["last_activity"] is not None


def test_touch_advances_last_activity_of_user_and_that_server_only(real_hub: RealHub) -> None:
    real_hub.create_users(["alice"])
    real_hub.start_server("alice")
    real_hub.start_server("alice", "gpu")
    before = real_hub.user("alice")
    assert before is not None
    time.sleep(0.01)

    real_hub.touch("alice", "gpu")

    after = real_hub.user("alice")
    assert after is not None
    assert parse_ts(after["last_activity"]) > parse_ts(before["last_activity"])
    gpu_before = parse_ts(before["servers"]["gpu"]["last_activity"])
    assert parse_ts(after["servers"]["gpu"]["last_activity"]) > gpu_before
    assert after["servers"][""]["last_activity"] == before["servers"][""]["last_activity"]


def test_instant_stop_answers_204(real_hub: RealHub) -> None:
    real_hub.create_users(["alice"])
    real_hub.start_server("alice")

    response = real_hub.api("DELETE", "/users/alice/server", token=real_hub.culler_token)

    assert response.status_code == 204
    assert server_path("alice") == "/users/alice/server"
    assert real_hub.user("alice")["servers"] == {}  # type: ignore[index]
    # stopping an already stopped default server is a no-op 204
    assert (
        real_hub.api("DELETE", "/users/alice/server", token=real_hub.culler_token).status_code
        == 204
    )


def test_stop_of_unknown_user_or_named_server_is_404(real_hub: RealHub) -> None:
    real_hub.create_users(["alice"])
    culler = real_hub.culler_token

    # JupyterHub 2.3 to 4.1 fail with 500 for a user they do not have (HubClient.stop_server
    # then asks GET /users/{name}, which is 404 on every release)
    gone_user = 500 if real_hub.version_info < (5,) else 404
    assert real_hub.api("DELETE", "/users/nobody/server", token=culler).status_code == gone_user
    assert (
        real_hub.api("DELETE", "/users/nobody/servers/lab", token=culler).status_code == gone_user
    )
    assert real_hub.api("GET", "/users/nobody", token=culler).status_code == 404
    assert real_hub.api("DELETE", "/users/alice/servers/nope", token=culler).status_code == 404


def test_slow_stop_answers_202_and_the_server_goes_later(real_hub: RealHub) -> None:
    real_hub.create_users(["alice"])
    real_hub.start_server("alice")
    real_hub.set_stop_delay(2.5)  # more than slow_stop_timeout (1 s)

    began = time.monotonic()
    response = real_hub.api("DELETE", "/users/alice/server", token=real_hub.culler_token)
    waited = time.monotonic() - began

    assert response.status_code == 202
    assert 0.9 < waited < 2.0
    assert server_model(real_hub, "alice")["pending"] == "stop"
    # a second stop while one is pending answers 202 at once
    began = time.monotonic()
    assert (
        real_hub.api("DELETE", "/users/alice/server", token=real_hub.culler_token).status_code
        == 202
    )
    assert time.monotonic() - began < 0.5
    # the user cannot be deleted while its server is stopping
    assert real_hub.api("DELETE", "/users/alice", token=real_hub.culler_token).status_code == 400

    real_hub.stop_server("alice")  # waits for the pending stop to finish
    assert real_hub.user("alice")["servers"] == {}  # type: ignore[index]
    assert time.monotonic() - began > 1.0


def test_stop_delay_is_read_when_the_stop_begins(real_hub: RealHub) -> None:
    real_hub.create_users(["alice", "bob"])
    real_hub.start_server("alice")
    real_hub.start_server("bob")
    real_hub.set_stop_delay(1.5)
    assert real_hub.api("DELETE", "/users/alice/server").status_code == 202

    real_hub.set_stop_delay(0)  # alice's stop keeps its delay; bob's stop is instant

    assert real_hub.api("DELETE", "/users/bob/server").status_code == 204
    assert server_model(real_hub, "alice")["pending"] == "stop"


def test_reset_leaves_an_empty_hub_quickly(real_hub: RealHub) -> None:
    real_hub.create_users(["alice", "bob", "carol"])
    real_hub.start_server("alice")
    real_hub.start_server("alice", "gpu")
    real_hub.start_server("bob")
    real_hub.add_to_group("team", ["alice", "bob"])
    real_hub.set_stop_delay(30)
    assert real_hub.api("DELETE", "/users/bob/server").status_code == 202  # bob: 30 s stop pending

    began = time.monotonic()
    real_hub.reset()
    elapsed = time.monotonic() - began

    assert elapsed < 3.0, "reset must cut the pending 30 s stop short"
    assert real_hub.users() == []
    assert group_names(real_hub) == []
    real_hub.create_users(["dave"])
    real_hub.start_server("dave")
    assert real_hub.api("DELETE", "/users/dave/server").status_code == 204  # delay back to 0


def test_paginated_listing(real_hub: RealHub, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f"user{i}" for i in range(5)]
    real_hub.create_users(names)

    page = real_hub.api(
        "GET", "/users?limit=2", headers={"Accept": PAGINATION_ACCEPT}, expect=(200,)
    ).json()
    assert [user["name"] for user in page["items"]] == names[:2]
    assert page["_pagination"]["total"] == 5
    assert page["_pagination"]["next"]["offset"] == 2
    plain = real_hub.api("GET", "/users?limit=2", expect=(200,)).json()
    assert isinstance(plain, list)  # no Accept header: a bare list, no page info

    monkeypatch.setattr(real_hub, "page_limit", 2)
    assert sorted(user["name"] for user in real_hub.users()) == names  # walked three pages


def test_scopes_of_the_service_tokens(real_hub: RealHub) -> None:
    real_hub.create_users(["alice", "bob"])
    real_hub.add_to_group("team", ["alice"])

    culler_view = real_hub.api("GET", "/users", token=real_hub.culler_token, expect=(200,)).json()
    assert sorted(user["name"] for user in culler_view) == ["alice", "bob"]
    assert "groups" in culler_view[0]  # admin:users includes read:users
    servers_only_view = real_hub.api(
        "GET", "/users", token=real_hub.servers_only_token, expect=(200,)
    ).json()
    assert "groups" not in servers_only_view[0]
    assert {"name", "last_activity", "servers"} <= set(servers_only_view[0])

    noscope = real_hub.api("GET", "/users", token=real_hub.noscope_token)
    assert noscope.status_code == 403
    assert "list:users" in noscope.json()["message"]

    assert (
        real_hub.api("DELETE", "/users/alice", token=real_hub.servers_only_token).status_code == 403
    )
    assert real_hub.api("DELETE", "/users/alice", token=real_hub.culler_token).status_code == 204
    assert real_hub.user("alice") is None


def test_delete_user_with_running_named_server_fails(real_hub: RealHub) -> None:
    """The hub stops only the default server on DELETE /users/{name}: a culler must stop
    named servers first (JupyterHub 6.1.1 answers 500 otherwise)."""
    real_hub.create_users(["alice"])
    real_hub.start_server("alice", "gpu")

    assert real_hub.api("DELETE", "/users/alice", token=real_hub.culler_token).status_code == 500
    assert server_model(real_hub, "alice", "gpu")["ready"] is True


def test_add_to_existing_group(real_hub: RealHub) -> None:
    real_hub.create_users(["alice", "bob"])
    real_hub.add_to_group("team", ["alice"])
    real_hub.add_to_group("team", ["bob"])

    group = real_hub.api("GET", f"/groups/{quote_segment('team')}", expect=(200,)).json()
    assert sorted(group["users"]) == ["alice", "bob"]


def test_missing_proxy_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDLE_CULL_CHP", "/nonexistent/configurable-http-proxy")

    with pytest.raises(HarnessError, match="IDLE_CULL_CHP"):
        RealHub.start()


def proxy_pid(real_hub: RealHub) -> int:
    return int((real_hub.workdir / "jupyterhub-proxy.pid").read_text())


def is_running(pid: int) -> bool:
    """Alive and not a zombie (a zombie's cmdline is empty)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def test_config_overrides_and_clean_stop(hub_release: HubRelease) -> None:
    with RealHub.start(release=hub_release.name, api_page_default_limit=2) as second:
        second.create_users(["a", "b", "c"])
        page = second.api(
            "GET", "/users", headers={"Accept": PAGINATION_ACCEPT}, expect=(200,)
        ).json()
        assert page["_pagination"]["limit"] == 2
        assert len(page["items"]) == 2
        hub_pid, chp_pid, workdir = second.process.pid, proxy_pid(second), second.workdir
        assert is_running(chp_pid)

    assert second.process.returncode == 0  # graceful: the hub ran its own cleanup
    assert not is_running(hub_pid)
    assert not is_running(chp_pid)
    assert not workdir.exists()


def test_stop_kills_the_proxy_of_a_crashed_hub(hub_release: HubRelease) -> None:
    crashed = RealHub.start(release=hub_release.name)
    chp_pid = proxy_pid(crashed)
    os.kill(crashed.process.pid, signal.SIGKILL)
    crashed.process.wait()
    assert is_running(chp_pid)  # the proxy outlives its hub: it runs in its own session

    crashed.stop()

    assert not is_running(chp_pid)


def test_module_main_prints_exports_and_stops_on_sigterm(hub_release: HubRelease) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.realhub", f"--hub-release={hub_release.name}"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        exports = {}
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("# hub ready"):
                break
            key, _, value = line.removeprefix("export ").strip().partition("=")
            exports[key] = value
        url, token = exports["JUPYTERHUB_API_URL"], exports["JUPYTERHUB_API_TOKEN"]
        answer = requests.get(
            f"{url}/users", headers={"Authorization": f"token {token}"}, timeout=10
        )
        assert answer.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]
