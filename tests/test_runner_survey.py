"""``--activity-source=server`` in-process: the pass's survey, its findings and the report.

The integration tests run this pass in subprocesses (unmeasured); these run it through
CliRunner against the emulated hub and ``responses`` answers for each server.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from idle_cull.hub.limiter import SURVEY_STALLS
from tests.support.cli import run
from tests.support.emulated_hub import URL, EmulatedHub, server_json, user_json
from tests.support.hostile_peer import HungServers
from tests.support.reports import validate

PROXY = "http://proxy.test"


def stamp(seconds_ago: float) -> str:
    moment = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    return moment.isoformat().replace("+00:00", "Z")


def running_user(name: str, *, idle: float, age: float = 86400) -> dict[str, Any]:
    """A user whose default server is ready, with the hub's record ``idle`` seconds old."""
    record = server_json(idle=idle, age=age)
    record["url"] = f"/user/{name}/"
    return user_json(name, idle=idle, servers=[record])


def answer_server(
    hub: EmulatedHub,
    name: str,
    *,
    kernels: object = (),
    terminals: object = (),
    status: int = 200,
) -> None:
    base = f"{PROXY}/user/{name}/api"
    hub.get(f"{base}/kernels", json=list(kernels) if status == 200 else {}, status=status)  # type: ignore[call-overload]
    hub.get(f"{base}/terminals", json=list(terminals), status=200)  # type: ignore[call-overload]


def kernel(state: str, seconds_ago: float) -> dict[str, Any]:
    return {
        "id": "k1",
        "name": "python3",
        "last_activity": stamp(seconds_ago),
        "execution_state": state,
        "connections": 0,
    }


def survey(*args: str) -> Any:
    return run(
        "--timeout=1h", "--activity-source=server", f"--proxy-url={PROXY}", "--report-kept", *args
    )


def server_entry(report: dict[str, Any], user: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        e for e in report["entries"] if e["kind"] == "server" and e["user"] == user
    )
    return found


def test_an_idle_server_with_a_fresh_hub_record_is_stopped_and_a_busy_one_kept(
    emulated_hub: EmulatedHub,
) -> None:
    """The hub says both were active a minute ago (an open tab); the servers say ann's
    kernel is busy and bob's went quiet 2 hours ago: bob is stopped, ann kept."""
    emulated_hub.serve_users("ready", [running_user("ann", idle=60), running_user("bob", idle=60)])
    answer_server(emulated_hub, "ann", kernels=[kernel("busy", 7200)])
    answer_server(emulated_hub, "bob", kernels=[kernel("idle", 7200)])
    emulated_hub.answer_stop("bob")
    result = survey("--report=json")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == [f"{URL}/users/bob/server"]
    # each server was asked with its own user's minted token
    assert sorted(user for user, _ in emulated_hub.mint_requests) == ["ann", "bob"]
    report = json.loads(result.stdout)
    validate(report)
    bob, ann = server_entry(report, "bob"), server_entry(report, "ann")
    assert bob["outcome"] == "stopped"
    assert (bob["activity"]["found"], bob["activity"]["source"]) == ("idle", "server")
    assert bob["activity"]["idle_since"] is not None
    assert ann["outcome"] != "stopped"
    assert ann["activity"]["found"] == "protected_busy_kernel"
    assert "busy" in ann["activity"]["reason"]
    counts = report["counts"]["activity"]
    assert counts["probed"] == 2
    assert counts["idle"] == 1
    assert counts["protected_busy_kernel"] == 1
    assert counts["culled_hub_active"] == 1
    assert counts["would_probe"] == 0


def test_a_failed_probe_leaves_the_fresh_hub_record_to_decide(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [running_user("ann", idle=60)])
    answer_server(emulated_hub, "ann", status=404)
    result = survey("--report=json")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == []
    report = json.loads(result.stdout)
    validate(report)
    counts = report["counts"]["activity"]
    assert (counts["fell_back"], counts["idle"], counts["culled_hub_active"]) == (1, 0, 0)
    assert server_entry(report, "ann")["activity"]["found"] == "fell_back"


def test_a_dry_run_surveys_nothing_and_says_what_it_would_probe(
    emulated_hub: EmulatedHub,
) -> None:
    emulated_hub.serve_users("ready", [running_user("ann", idle=7200)])
    result = survey("--report=json", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert not [c for c in emulated_hub.calls if (c.request.url or "").startswith(PROXY)]
    assert emulated_hub.mint_requests == []
    assert emulated_hub.deleted_urls() == []
    report = json.loads(result.stdout)
    validate(report)
    counts = report["counts"]["activity"]
    assert (counts["would_probe"], counts["probed"]) == (1, 0)
    assert server_entry(report, "ann")["activity"]["found"] == "would_probe"


@pytest.mark.parametrize("report_format", ["text"])
def test_the_text_report_names_the_survey(emulated_hub: EmulatedHub, report_format: str) -> None:
    emulated_hub.serve_users("ready", [running_user("ann", idle=60)])
    answer_server(emulated_hub, "ann", kernels=[kernel("busy", 7200)])
    result = survey(f"--report={report_format}")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == []
    assert "protected" in result.stdout + result.stderr


def test_the_recheck_judges_on_the_survey_and_skips_what_is_neither_ready_nor_included(
    emulated_hub: EmulatedHub,
) -> None:
    """With the re-check due at once, bob's fresh hub record (active a minute ago) is
    judged on what his server measured, so he is still stopped; carl's server is not
    ready and dan is excluded: neither is asked anything."""
    pending = running_user("carl", idle=7200)
    pending["servers"][""]["ready"] = False
    emulated_hub.serve_users(
        "ready",
        [running_user("bob", idle=60), pending, running_user("dan", idle=7200)],
    )
    answer_server(emulated_hub, "bob", kernels=[kernel("idle", 7200)])
    emulated_hub.answer_stop("bob")
    result = survey("--report=json", "--recheck-after=0", "--exclude-user=dan")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == [f"{URL}/users/bob/server"]
    assert [user for user, _ in emulated_hub.mint_requests] == ["bob"]
    assert [c.request.url for c in emulated_hub.calls if f"{URL}/users/bob" == c.request.url]
    report = json.loads(result.stdout)
    validate(report)
    assert server_entry(report, "bob")["outcome"] == "stopped"
    assert report["counts"]["activity"]["probed"] == 1


def test_a_protected_server_is_kept_with_its_reason_though_the_hub_calls_it_idle(
    emulated_hub: EmulatedHub,
) -> None:
    """The hub's record is 2 hours old, so the rules plan a stop; the survey's finding
    (a busy kernel) is reused at the stop and keeps the server, saying why."""
    emulated_hub.serve_users("ready", [running_user("ann", idle=7200)])
    answer_server(emulated_hub, "ann", kernels=[kernel("busy", 7200)])
    result = survey("--report=json", "--no-recheck")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == []
    report = json.loads(result.stdout)
    validate(report)
    ann = server_entry(report, "ann")
    assert ann["outcome"] == "skipped"
    assert "protected" in ann["detail"]
    assert "busy" in ann["detail"]
    assert [user for user, _ in emulated_hub.mint_requests] == ["ann"]  # asked once


def test_a_refused_probe_token_falls_back_to_the_hub_record(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [running_user("ann", idle=60)])
    emulated_hub.mint_refusals["ann"] = (403, {"status": 403, "message": "no"})
    result = survey("--report=json")
    assert result.exit_code == 0, result.stderr
    assert not [c for c in emulated_hub.calls if (c.request.url or "").startswith(PROXY)]
    report = json.loads(result.stdout)
    validate(report)
    activity = server_entry(report, "ann")["activity"]
    assert activity["found"] == "fell_back"
    assert "no probe token" in activity["reason"]


def test_a_failed_second_metrics_call_leaves_cpu_unmeasured(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [running_user("bob", idle=60)])
    answer_server(emulated_hub, "bob", kernels=[kernel("idle", 7200)])
    metrics = f"{PROXY}/user/bob/api/metrics/v1"
    emulated_hub.get(metrics, json={"rss": 1, "cpu_percent": 0.0})
    emulated_hub.get(metrics, json={"message": "boom"}, status=500)
    emulated_hub.answer_stop("bob")
    result = survey("--report=json", "--cpu-threshold=50", "--cpu-window=0.1")
    assert result.exit_code == 0, result.stderr
    assert len([c for c in emulated_hub.calls if (c.request.url or "").startswith(metrics)]) == 2
    report = json.loads(result.stdout)
    validate(report)
    # CPU could not be measured: the kernels' evidence alone decides (idle 2h)
    assert server_entry(report, "bob")["outcome"] == "stopped"


def test_a_garbled_recheck_record_keeps_the_surveyed_server(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [running_user("bob", idle=60)], recheck=False)
    emulated_hub.get(f"{URL}/users/bob", json={"name": "bob", "servers": 5})
    answer_server(emulated_hub, "bob", kernels=[kernel("idle", 7200)])
    result = survey("--report=json", "--recheck-after=0")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == []
    report = json.loads(result.stdout)
    validate(report)
    bob = server_entry(report, "bob")
    assert (bob["outcome"], bob["activity"]["found"]) == ("skipped", "idle")
    assert bob["detail"].startswith("re-check: ")


def test_servers_that_never_answer_fall_back_without_holding_the_hubs_slots(
    emulated_hub: EmulatedHub,
) -> None:
    """Issue 24's "must not take minutes because some are unreachable": eight servers
    accept the probe's connection and never answer; two answer. Each hung probe waits
    once (no retry of a timeout) and, after a second, stops counting against the hub's
    slots (``StallRelease``), so more hung probes are out at once than --concurrency
    allows, within the cap; the answered servers are judged on what they said, the hung
    ones on the hub's record, with a reason naming the timeout. The old survey held at
    most --concurrency probes and asked each hung server twice."""
    hung = [f"hung{i}" for i in range(8)]
    users = [running_user(name, idle=60) for name in hung]
    users += [running_user("idle", idle=60), running_user("busy", idle=60)]
    emulated_hub.serve_users("ready", users)
    emulated_hub.answer_stop("idle")
    answers = {"idle": [kernel("idle", 7200)], "busy": [kernel("busy", 7200)]}
    with HungServers(answers, hung) as servers:
        emulated_hub.add_passthru(servers.url)
        result = run(
            "--timeout=1h",
            "--activity-source=server",
            f"--proxy-url={servers.url}",
            "--report-kept",
            "--report=json",
            "--concurrency=2",
            "--probe-timeout=1.5",
        )
        most, sent = servers.most_waiting, servers.hung_requests
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    validate(report)
    assert emulated_hub.deleted_urls() == [f"{URL}/users/idle/server"]
    assert server_entry(report, "idle")["activity"]["found"] == "idle"
    assert server_entry(report, "busy")["activity"]["found"] == "protected_busy_kernel"
    for name in hung:
        entry = server_entry(report, name)
        assert entry["outcome"] == "kept", entry  # the hub's record: active a minute ago
        assert entry["activity"]["found"] == "fell_back", entry
        assert "no answer within 1.5s" in entry["activity"]["reason"], entry
    assert sent == len(hung)  # one request each: a timeout is not retried
    assert 2 < most <= 2 + SURVEY_STALLS.cap
