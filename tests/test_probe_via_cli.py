"""``--probe-via=route-target`` end to end in-process: CliRunner, the emulated hub, and
``responses`` answers for the proxy's API and for each server's own address.

What is checked: where the option may come from and what it refuses (exit 2, nothing
sent); that every probe goes to the target of the route JupyterHub wrote for that very
server and nowhere else (a route naming someone else, or none: no request, the hub's
record decides); that an unreadable routing table is exit 3 before anything is listed or
acted on; that a dry run reads no table; and that the proxy's token appears nowhere.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.cli import run
from tests.support.emulated_hub import URL, EmulatedHub, server_json, user_json
from tests.support.reports import validate

PROXY = "http://proxy.test"
PROXY_API = "http://proxy-api.test:8001"
ROUTES = f"{PROXY_API}/api/routes"
CHP_TOKEN = "chp-auth-token-5f4e3d2c1b0a"
TARGETS = {"ann": "http://10.0.0.5:8888", "bob": "http://10.0.0.6:8888"}
ROUTE_TARGET = ("--probe-via=route-target", f"--proxy-api-url={PROXY_API}")
WITH_TOKEN = {"CONFIGPROXY_AUTH_TOKEN": CHP_TOKEN}


def stamp(seconds_ago: float) -> str:
    moment = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    return moment.isoformat().replace("+00:00", "Z")


def running_user(name: str, *, idle: float) -> dict[str, Any]:
    record = server_json(idle=idle, age=86400)
    record["url"] = f"/user/{name}/"
    return user_json(name, idle=idle, servers=[record])


def idle_kernel() -> dict[str, Any]:
    return {
        "id": "k1",
        "name": "python3",
        "last_activity": stamp(7200),
        "execution_state": "idle",
        "connections": 0,
    }


def route(user: str, target: str, server_name: str = "") -> dict[str, Any]:
    """A route as JupyterHub writes it (``proxy.add_user``) and CHP lists it."""
    return {
        "user": user,
        "server_name": server_name,
        "jupyterhub": True,
        "target": target,
        "last_activity": stamp(30),
    }


def answer_at_target(hub: EmulatedHub, name: str) -> None:
    base = f"{TARGETS[name]}/user/{name}/api"
    hub.get(f"{base}/kernels", json=[idle_kernel()])
    hub.get(f"{base}/terminals", json=[])


def requested(hub: EmulatedHub, prefix: str) -> list[str]:
    return [c.request.url or "" for c in hub.calls if (c.request.url or "").startswith(prefix)]


def survey(*args: str, env: dict[str, str] | None = None) -> Any:
    result = run(
        "--timeout=1h",
        "--activity-source=server",
        "--report-kept",
        "--report=json",
        *args,
        env=WITH_TOKEN if env is None else env,
    )
    assert CHP_TOKEN not in result.stdout + result.stderr
    return result


def entry(report: dict[str, Any], user: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in report["entries"] if e["user"] == user)
    return found


# --- the options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        pytest.param(
            ["--probe-via=elsewhere"], WITH_TOKEN, "'elsewhere' is not one of", id="unknown"
        ),
        pytest.param(
            list(ROUTE_TARGET),
            {},
            "needs the proxy's auth token, to read its routing table: set CONFIGPROXY_AUTH_TOKEN",
            id="no-token",
        ),
        pytest.param(
            list(ROUTE_TARGET),
            {"CONFIGPROXY_AUTH_TOKEN": "short"},
            "shorter than 8",
            id="short-token",
        ),
        pytest.param(
            ["--probe-via=route-target", "--proxy-api-url=proxy-api:8001"],
            WITH_TOKEN,
            "--proxy-api-url 'proxy-api:8001' is not an http(s) URL",
            id="no-scheme",
        ),
        pytest.param(
            ["--probe-via=route-target", "--proxy-api-url=http://u:p@proxy-api:8001"],
            WITH_TOKEN,
            "must not contain a user name, password",
            id="credentials",
        ),
        pytest.param(
            ["--probe-via=proxy"],
            WITH_TOKEN,
            "--activity-source=server needs --proxy-url",
            id="proxy-way-needs-the-public-url",
        ),
    ],
)
def test_bad_route_options_are_usage_errors_before_anything_is_sent(
    emulated_hub: EmulatedHub, args: list[str], env: dict[str, str], message: str
) -> None:
    result = survey(*args, env=env)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert len(emulated_hub.calls) == 0
    assert "Traceback" not in result.stderr


def serve_ann(hub: EmulatedHub) -> None:
    hub.serve_users("ready", [running_user("ann", idle=60)])
    hub.get(ROUTES, json={"/user/ann": route("ann", TARGETS["ann"])})
    answer_at_target(hub, "ann")
    hub.answer_stop("ann")


def test_the_options_may_come_from_the_environment(emulated_hub: EmulatedHub) -> None:
    serve_ann(emulated_hub)
    env = {
        **WITH_TOKEN,
        "IDLE_CULL_PROBE_VIA": "route-target",
        "IDLE_CULL_PROXY_API_URL": PROXY_API,
    }
    result = survey(env=env)
    assert result.exit_code == 0, result.stderr
    assert requested(emulated_hub, ROUTES) == [ROUTES]
    assert emulated_hub.deleted_urls() == [f"{URL}/users/ann/server"]


def test_the_options_may_come_from_a_config_file_and_the_token_from_a_file(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    serve_ann(emulated_hub)
    token_file = tmp_path / "chp-token"
    token_file.write_text(CHP_TOKEN + "\n")
    token_file.chmod(0o600)
    config = tmp_path / "idle-cull.toml"
    config.write_text(
        f'probe-via = "route-target"\nproxy-api-url = "{PROXY_API}"\n'
        f'proxy-auth-token-file = "{token_file}"\n'
    )
    result = survey(f"--config={config}", env={})
    assert result.exit_code == 0, result.stderr
    (call,) = [c for c in emulated_hub.calls if c.request.url == ROUTES]
    assert call.request.headers["Authorization"] == f"token {CHP_TOKEN}"


def test_a_missing_token_file_is_a_usage_error_naming_its_option(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    result = survey(*ROUTE_TARGET, f"--proxy-auth-token-file={tmp_path / 'nope'}", env={})
    assert result.exit_code == 2
    assert "check --proxy-auth-token-file" in result.stderr
    assert len(emulated_hub.calls) == 0


# --- a pass at the route targets ---------------------------------------------------------


def test_every_probe_goes_to_its_own_routes_target_and_nowhere_else(
    emulated_hub: EmulatedHub,
) -> None:
    """ann's route is ann's: probed at its target and stopped (the hub called it active a
    minute ago). bob's route names mallory and cid has none: no request to either, their
    probes fell back to the hub's record, which keeps them. Nothing went through the
    proxy, and the proxy's token went to its API only."""
    emulated_hub.serve_users(
        "ready", [running_user(name, idle=60) for name in ("ann", "bob", "cid")]
    )
    emulated_hub.get(
        ROUTES,
        json={
            "/": {"jupyterhub": True, "hub": True, "target": "http://hub:8081"},
            "/user/ann": route("ann", TARGETS["ann"]),
            "/user/bob": route("mallory", TARGETS["bob"]),
        },
    )
    answer_at_target(emulated_hub, "ann")
    answer_at_target(emulated_hub, "bob")  # answers, were it asked: it must not be
    emulated_hub.answer_stop("ann")
    result = survey(*ROUTE_TARGET, "--log-level=debug")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == [f"{URL}/users/ann/server"]
    assert requested(emulated_hub, TARGETS["bob"]) == []
    assert requested(emulated_hub, PROXY) == []
    probes = requested(emulated_hub, TARGETS["ann"])
    assert len(probes) == 2
    assert all(url.endswith("?no_track_activity=1") for url in probes)
    assert [
        c.request.headers.get("Authorization")
        for c in emulated_hub.calls
        if c.request.url == ROUTES
    ] == [f"token {CHP_TOKEN}"]
    assert sorted(user for user, _ in emulated_hub.mint_requests) == ["ann"]  # none for bob, cid
    assert "probes go to the servers' route targets (3 routes read" in result.stderr
    report = json.loads(result.stdout)
    validate(report)
    bob, cid = entry(report, "bob"), entry(report, "cid")
    assert (bob["activity"]["found"], cid["activity"]["found"]) == ("fell_back", "fell_back")
    assert "names another server" in bob["activity"]["reason"]
    assert "the proxy has no route for /user/cid/" in cid["activity"]["reason"]
    assert report["counts"]["activity"]["fell_back"] == 2


def test_the_kernel_probe_goes_to_the_route_target_too(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [running_user("ann", idle=7200)])
    emulated_hub.get(ROUTES, json={"/user/ann": route("ann", TARGETS["ann"])})
    kernels = f"{TARGETS['ann']}/user/ann/api/kernels"
    emulated_hub.get(kernels, json=[{**idle_kernel(), "execution_state": "busy"}])
    result = run("--timeout=1h", "--probe-kernels", *ROUTE_TARGET, env=WITH_TOKEN)
    assert result.exit_code == 0, result.stderr
    assert requested(emulated_hub, kernels) == [f"{kernels}?no_track_activity=1"]
    assert emulated_hub.deleted_urls() == []  # kept: a busy kernel
    assert CHP_TOKEN not in result.stderr


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param({"status": 403, "json": {}}, "refused the token (HTTP 403)", id="403"),
        pytest.param(
            {"body": requests.ConnectionError("refused")}, "(ConnectionError)", id="refused"
        ),
        pytest.param(
            {"body": b"<html>hello</html>", "content_type": "text/html"}, "is not JSON", id="html"
        ),
        pytest.param({"json": {"version": "5.3.0"}}, "no route with a target", id="not-chp"),
    ],
)
def test_an_unreadable_routing_table_is_exit_3_before_anything(
    emulated_hub: EmulatedHub, answer: dict[str, Any], message: str
) -> None:
    emulated_hub.serve_users("ready", [running_user("ann", idle=7200)])
    emulated_hub.get(ROUTES, **answer)
    emulated_hub.answer_stop("ann")
    result = survey(*ROUTE_TARGET)
    assert result.exit_code == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1
    assert message in errors[0]
    assert "nothing was culled" in errors[0]
    assert "Traceback" not in result.stderr
    assert [c.request.url for c in emulated_hub.calls] == [ROUTES]  # nothing else at all
    report = json.loads(result.stdout)
    assert message in report["error"]


def test_a_dry_run_reads_no_routing_table_and_sends_nothing_to_any_server(
    emulated_hub: EmulatedHub,
) -> None:
    serve_ann(emulated_hub)
    result = survey(*ROUTE_TARGET, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert requested(emulated_hub, PROXY_API) == []
    assert requested(emulated_hub, TARGETS["ann"]) == []
    assert "DRY RUN: probes would go to the servers' route targets" in result.stderr
    assert entry(json.loads(result.stdout), "ann")["activity"]["found"] == "would_probe"


def test_through_the_proxy_the_pass_says_so_and_reads_no_table(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [running_user("ann", idle=60)])
    emulated_hub.get(f"{PROXY}/user/ann/api/kernels", json=[idle_kernel()])
    emulated_hub.get(f"{PROXY}/user/ann/api/terminals", json=[])
    emulated_hub.answer_stop("ann")
    result = survey(f"--proxy-url={PROXY}")
    assert result.exit_code == 0, result.stderr
    assert "probes go through the proxy at http://proxy.test" in result.stderr
    assert requested(emulated_hub, PROXY_API) == []
