"""The JSON report against its schema and the text summary (``idle_cull.output.render``)."""

from __future__ import annotations

import ast
import inspect
import json
import logging
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from idle_cull.command.settings import Settings
from idle_cull.hub.client import HubClient
from idle_cull.hub.retry import RetryPolicy
from idle_cull.models import Outcome
from idle_cull.output import files, metrics, render
from idle_cull.output.render import public_url, render_json, render_text, report_document
from idle_cull.output.report import Entry, ExitStatus, Report, Upcoming
from idle_cull.rules.policy import Action, CullLimits, ServerDecision, UserDecision
from idle_cull.runner import run_pass
from tests.support.emulated_hub import URL as FAKE_URL
from tests.support.emulated_hub import EmulatedHub
from tests.support.emulated_hub import server_json as fake_server
from tests.support.emulated_hub import user_json as fake_user
from tests.support.records import NOW
from tests.support.reports import (
    FAILED_STOP,
    HOUR,
    SCHEMA,
    base_report,
    dry_run_report,
    settled_report,
    validate,
)

URL = "http://hub.test:8081/hub/api"


def kept_counted_report() -> Report:
    """As a default pass makes it: kept servers and users counted, without entries."""
    report = settled_report()
    report.entries[:] = [e for e in report.entries if e.result != "kept"]
    report.kept_listed = False
    report.servers_kept_unlisted = 40
    report.users_kept_unlisted = 41
    return report


def refused_report() -> Report:
    report = settled_report(cap_exceeded="4 culls planned, more than --max-culls=1")
    refusal = "refused: 4 culls planned, more than --max-culls=1"
    report.entries[:] = [
        e.settled(Outcome.NOT_ATTEMPTED, 0, refusal) if e.outcome else e for e in report.entries
    ]
    return report


def upcoming_report() -> Report:
    report = settled_report()
    report.upcoming += [
        Upcoming("erin", "", NOW - timedelta(seconds=3300), 3300, HOUR, "--timeout"),
        Upcoming("carol", "gpu", NOW - timedelta(seconds=3000), 3000, HOUR, "profile gpu"),
    ]
    return report


REPORTS = [
    pytest.param(settled_report, ExitStatus.OK, id="stopped-and-deleted"),
    pytest.param(lambda: settled_report(FAILED_STOP), ExitStatus.ACTION_FAILED, id="failed-stop"),
    pytest.param(
        lambda: settled_report(
            {
                "server:bob/gpu": (Outcome.PENDING, 1, "the hub is still stopping it"),
                "user:bob": (Outcome.SKIPPED, 0, "server(s) 'gpu' not stopped yet"),
            }
        ),
        ExitStatus.OK,
        id="pending-stop-skips-deletion",
    ),
    pytest.param(
        lambda: settled_report({"server:alice": (Outcome.GONE, 1, "")}),
        ExitStatus.OK,
        id="already-gone",
    ),
    pytest.param(dry_run_report, ExitStatus.OK, id="dry-run"),
    pytest.param(refused_report, ExitStatus.CAP_EXCEEDED, id="refused"),
    pytest.param(
        lambda: settled_report(interrupted="--deadline of 5m passed"),
        ExitStatus.ACTION_FAILED,
        id="interrupted",
    ),
    pytest.param(upcoming_report, ExitStatus.OK, id="upcoming"),
    pytest.param(
        lambda: base_report(rejected_records=["user record without a name: {}"]),
        ExitStatus.OK,
        id="rejected-record",
    ),
    pytest.param(
        lambda: Report(hub_url=URL, started_at=NOW),
        ExitStatus.HUB_UNUSABLE,
        id="hub-unusable-bare-report",
    ),
    pytest.param(
        lambda: base_report(clock="local", skew_seconds=None, hub_version=""),
        ExitStatus.OK,
        id="local-clock-empty-hub",
    ),
    pytest.param(kept_counted_report, ExitStatus.OK, id="kept-counted-not-listed"),
]


# ---------------------------------------------------------------------------------------
# JSON document


def test_the_schema_file_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(("make", "status"), REPORTS)
def test_document_matches_the_schema(make: Any, status: ExitStatus) -> None:
    report = make()
    document = json.loads(render_json(report, status))
    validate(document)
    assert document["schema"] == "idle-cull-report"
    assert document["schema_version"] == 2
    assert document["exit_status"] == int(status)
    assert document["exit_status_name"] == status.name.lower()


@pytest.mark.parametrize(("make", "status"), REPORTS)
def test_counts_agree_with_entries_and_report_counts(make: Any, status: ExitStatus) -> None:
    report = make()
    document = report_document(report, status)
    for kind in ("server", "user"):
        by_outcome = document["counts"][f"{kind}s"]
        for outcome, number in by_outcome.items():
            listed = [
                e for e in document["entries"] if e["kind"] == kind and e["outcome"] == outcome
            ]
            unlisted = getattr(report, f"{kind}s_kept_unlisted") if outcome == "kept" else 0
            assert len(listed) + unlisted == number, (kind, outcome)
            assert report.counts().get(f"{kind}_{outcome}", 0) == number, (kind, outcome)
    assert document["counts"]["users_listed"] == report.users_listed
    assert document["counts"]["upcoming"] == len(document["upcoming"])


def test_a_schema_violation_is_caught() -> None:
    """The schema is strict enough to notice drift (here: an undocumented field)."""
    document = report_document(settled_report(), ExitStatus.OK)
    document["entries"][0]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


def test_entry_fields() -> None:
    report = settled_report(FAILED_STOP)
    entries = {
        (e["kind"], e["label"]): e
        for e in report_document(report, ExitStatus.ACTION_FAILED)["entries"]
    }
    assert entries["server", "bob/gpu"] == {
        "kind": "server",
        "user": "bob",
        "server": "gpu",
        "label": "bob/gpu",
        "decision": "stop",
        "reason": "idle 2h30m >= 1h (--timeout)",
        "outcome": "failed",
        "detail": "HTTP 500 after 5 attempts: Internal Server Error",
        "error": "HTTP 500 after 5 attempts: Internal Server Error",
        "attempts": 5,
        "last_activity": "2026-11-26T09:30:00.000Z",
        "idle_seconds": 9000.0,
        "age_seconds": 900.0,
    }
    assert entries["server", "alice"]["server"] == ""  # the default server, as the hub names it
    assert entries["user", "alice"]["server"] is None
    assert entries["user", "alice"]["outcome"] == "deleted"
    assert entries["server", "carol"]["outcome"] == "kept"
    assert entries["server", "carol"]["decision"] == "keep"
    assert entries["server", "dave"]["outcome"] == "skipped"
    assert entries["server", "dave"]["decision"] == "skip"


def test_header_fields() -> None:
    document = report_document(settled_report(), ExitStatus.OK)
    assert document["hub"] == {"url": URL, "version": "5.2.1"}
    assert document["started_at"] == "2026-11-26T12:00:00.000Z"
    assert document["finished_at"] == "2026-11-26T12:00:02.500Z"
    assert document["duration_seconds"] == 2.5
    assert document["clock"] == "hub"
    assert document["clock_skew_seconds"] == 0.4
    assert document["dry_run"] is False
    assert document["error"] is None


def test_entries_are_sorted_whatever_the_completion_order() -> None:
    report = settled_report()
    shuffled = replace(report, entries=random.Random(7).sample(report.entries, len(report.entries)))
    assert render_json(shuffled, ExitStatus.OK) == render_json(report, ExitStatus.OK)
    labels = [(e["kind"], e["label"]) for e in report_document(report, ExitStatus.OK)["entries"]]
    assert labels == sorted(labels, key=lambda kl: (kl[0] != "server", kl[1]))


def test_times_are_utc_with_z_whatever_the_input_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    report = base_report(
        started_at=datetime(2026, 11, 26, 14, 0, tzinfo=plus_two), finished_at=None, now=None
    )
    document = report_document(report, ExitStatus.OK)
    assert document["started_at"] == "2026-11-26T12:00:00.000Z"
    assert document["finished_at"] is None
    assert document["duration_seconds"] is None
    naive = report_document(base_report(started_at=datetime(2026, 1, 1, 8, 30)), ExitStatus.OK)
    assert naive["started_at"] == "2026-01-01T08:30:00.000Z"


def test_unknown_and_non_finite_seconds_become_null() -> None:
    decision = ServerDecision(
        "x", "", Action.KEEP, "no timestamps", idle_seconds=None, age_seconds=float("nan")
    )
    report = base_report(entries=[Entry("server", decision)], skew_seconds=float("inf"))
    document = json.loads(render_json(report, ExitStatus.OK))
    validate(document)
    assert document["entries"][0]["idle_seconds"] is None
    assert document["entries"][0]["age_seconds"] is None
    assert document["entries"][0]["last_activity"] is None
    assert document["clock_skew_seconds"] is None


def test_upcoming_entries_soonest_first_with_the_time_they_cross() -> None:
    document = report_document(upcoming_report(), ExitStatus.OK)
    assert document["upcoming"] == [
        {
            "user": "erin",
            "server": "",
            "label": "erin",
            "last_activity": "2026-11-26T11:05:00.000Z",
            "idle_seconds": 3300.0,
            "limit_seconds": 3600.0,
            "seconds_left": 300.0,
            "crosses_limit_at": "2026-11-26T12:05:00.000Z",
            "rule": "--timeout",
        },
        {
            "user": "carol",
            "server": "gpu",
            "label": "carol/gpu",
            "last_activity": "2026-11-26T11:10:00.000Z",
            "idle_seconds": 3000.0,
            "limit_seconds": 3600.0,
            "seconds_left": 600.0,
            "crosses_limit_at": "2026-11-26T12:10:00.000Z",
            "rule": "profile gpu",
        },
    ]


def test_pass_error_and_warn_within_are_reported() -> None:
    report = base_report()
    assert report_document(report, ExitStatus.OK)["warn_within_seconds"] is None
    report.error = "hub unreachable"
    report.warn_within = 900.0
    document = report_document(report, ExitStatus.HUB_UNUSABLE)
    validate(document)
    assert document["error"] == "hub unreachable"
    assert document["warn_within_seconds"] == 900.0
    assert "ERROR: hub unreachable" in render_text(report, ExitStatus.HUB_UNUSABLE)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(URL, URL, id="plain"),
        pytest.param(
            "https://svc:s3cret@hub.test/hub/api", "https://***@hub.test/hub/api", id="userinfo"
        ),
        pytest.param(
            "http://:s3cret@hub.test:8081/hub/api",
            "http://***@hub.test:8081/hub/api",
            id="password-only",
        ),
    ],
)
def test_urls_lose_their_credentials(url: str, shown: str) -> None:
    assert public_url(url) == shown
    report = base_report(hub_url=url)
    assert "s3cret" not in render_json(report, ExitStatus.OK) + render_text(report, ExitStatus.OK)


# ---------------------------------------------------------------------------------------
# Text summary


def test_text_lists_actions_and_skips_and_counts_kept() -> None:
    text = render_text(settled_report(FAILED_STOP), ExitStatus.ACTION_FAILED)
    lines = text.splitlines()
    assert lines[0] == f"idle-cull pass over {URL} (JupyterHub 5.2.1)"
    assert "took 2.5s" in lines[1]
    assert lines[1].endswith("idleness measured on the hub's clock")  # a 0.4 s skew is rounding
    servers = lines.index(next(line for line in lines if line.startswith("servers:")))
    assert lines[servers].startswith("servers: 1 failed, 1 stopped, 1 skipped, 1 kept")
    assert lines[servers + 1].split() == ["RESULT", "SERVER", "IDLE", "AGE", "TRIES", "WHY"]
    # Failures come first, with the hub's error after the reason.
    assert lines[servers + 2].split()[:5] == ["failed", "bob/gpu", "2h30m", "15m", "5"]
    assert lines[servers + 2].endswith(
        "idle 2h30m >= 1h (--timeout); HTTP 500 after 5 attempts: Internal Server Error"
    )
    assert lines[servers + 3].split()[:2] == ["stopped", "alice"]
    assert lines[servers + 4].split()[:2] == ["skipped", "dave"]
    assert " carol " not in text.split("users:")[0]  # kept: counted, not listed
    assert (
        lines[-1]
        == "exit status 1: some stop or delete failed after retries, or the pass was cut short"
    )
    assert "users listed: 4" in lines[-2]


def test_text_stays_short_with_thousands_of_kept_servers() -> None:
    kept = [
        Entry(
            "server",
            ServerDecision(
                f"user{i}", "", Action.KEEP, "idle 1m < 1h (--timeout)", idle_seconds=60.0
            ),
        )
        for i in range(5000)
    ]
    report = base_report(entries=kept, users_listed=5000)
    text = render_text(report, ExitStatus.OK)
    assert len(text.splitlines()) < 12
    assert "servers: 5000 kept" in text
    report.kept_listed = True  # --report-kept: the pass listed them, so the text does too
    assert len(render_text(report, ExitStatus.OK).splitlines()) > 5000


def test_text_counts_kept_ones_that_have_no_entry() -> None:
    text = render_text(kept_counted_report(), ExitStatus.OK)
    assert (
        "servers: 2 stopped, 1 skipped, 40 kept (kept ones not listed; --report-kept lists them)"
        in text
    )
    assert "users: 2 deleted, 41 kept (kept ones not listed; --report-kept lists them)" in text
    assert " carol " not in text


def test_text_of_a_dry_run_says_what_would_happen() -> None:
    text = render_text(dry_run_report(), ExitStatus.OK)
    assert "DRY RUN: nothing was changed" in text
    assert "would stop" in text
    assert "would delete" in text
    assert "--dry-run" not in text.split("DRY RUN")[1]  # the per-entry detail is not repeated


def test_text_of_a_refused_plan_says_so_once() -> None:
    text = render_text(refused_report(), ExitStatus.CAP_EXCEEDED)
    assert "REFUSED: 4 culls planned, more than --max-culls=1; nothing was culled" in text
    assert text.count("--max-culls=1") == 1
    assert "not attempted" in text
    assert "exit status 4:" in text


def test_text_upcoming_and_rejected_sections() -> None:
    report = upcoming_report()
    report.rejected_records.append("user 'x': created is not a timestamp: 5")
    text = render_text(report, ExitStatus.OK)
    upcoming = text.split("about to cross their idle limit (2):\n")[1].splitlines()
    assert upcoming[0].split() == ["SERVER", "IDLE", "LIMIT", "LEFT", "RULE"]
    assert upcoming[1].split() == ["erin", "55m", "1h", "5m", "--timeout"]
    assert upcoming[2].split() == ["carol/gpu", "50m", "1h", "10m", "profile", "gpu"]
    assert "rejected records (1), not judged:\n  - user 'x': created is not a timestamp: 5" in text


def test_text_of_a_pass_that_listed_nothing() -> None:
    text = render_text(Report(hub_url=URL, started_at=NOW), ExitStatus.HUB_UNUSABLE)
    assert "did not finish" in text
    assert "servers: none running" in text
    assert "users:" not in text.split("servers: none running")[1].split("users listed")[0]
    assert text.endswith(f"exit status 3: {ExitStatus.HUB_UNUSABLE.meaning}\n")
    assert "users could not be listed" in text


def test_names_cannot_forge_lines_or_escape_sequences_in_the_text() -> None:
    forged = "eve\nsummary: all fine\x1b[2J"
    decision = ServerDecision(
        forged, "", Action.STOP, "idle 2h >= 1h (--timeout)", idle_seconds=7200.0
    )
    report = base_report(
        entries=[Entry("server", decision).settled(Outcome.FAILED, 1, "boom\r\nok")]
    )
    text = render_text(report, ExitStatus.ACTION_FAILED)
    assert "\x1b" not in text
    assert "\r" not in text
    assert not any(line.startswith("summary:") for line in text.splitlines())
    assert "eve\\nsummary: all fine\\x1b[2J" in text
    assert json.loads(render_json(report, ExitStatus.ACTION_FAILED))["entries"][0]["user"] == forged


# ---------------------------------------------------------------------------------------
# The token cannot reach a report


def test_no_output_function_can_receive_settings_or_a_token() -> None:
    for module in (render, files, metrics):
        for name in module.__all__:
            function = getattr(module, name)
            if callable(function):
                parameters = inspect.signature(function).parameters
                assert not {"token", "settings"} & set(parameters), f"{module.__name__}.{name}"
        tree = ast.parse(Path(module.__file__ or "").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "idle_cull.command.settings" not in imported, module.__name__


def test_user_decision_entries_have_no_server() -> None:
    decision = UserDecision("old", Action.DELETE, "user idle 2h >= 1h (--timeout)")
    report = base_report(entries=[Entry("user", decision).settled(Outcome.GONE, 2)])
    (entry,) = report_document(report, ExitStatus.OK)["entries"]
    assert entry["server"] is None
    assert entry["outcome"] == "already_gone"
    assert entry["attempts"] == 2


def test_the_token_never_reaches_a_report_a_metric_or_a_log_line(
    emulated_hub: EmulatedHub, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A whole pass with failures, retries and refusals, rendered every way there is."""
    token = "tok-9f8e7d6c5b4a39281706"
    emulated_hub.serve_users(
        "ready",
        [
            fake_user("idle", idle=7200, servers=[fake_server(idle=7200)]),
            fake_user("broken", idle=7200, servers=[fake_server(idle=7200)]),
            fake_user("slow", idle=7200, servers=[fake_server(idle=7200)]),
            fake_user("busy", servers=[fake_server(idle=5)]),
        ],
    )
    emulated_hub.serve_users("inactive", [fake_user("forbidden", idle=7200)])
    emulated_hub.answer_stop("idle", status=204)
    emulated_hub.answer_stop(
        "broken", status=500, json={"status": 500, "message": "Internal Server Error"}
    )
    emulated_hub.answer_stop("slow", status=202)
    emulated_hub.answer_user_deletion("idle", status=204)
    emulated_hub.answer_user_deletion(
        "forbidden",
        status=403,
        json={
            "status": 403,
            "message": "Action is not authorized with current scopes; requires any of [delete:users]",
        },
    )
    settings = Settings(
        url=FAKE_URL, token=token, limits=CullLimits(timeout=HOUR, cull_users=True), clock="local"
    )
    client = HubClient(
        FAKE_URL,
        token,
        retry=RetryPolicy(attempts=2, initial_wait=0, max_wait=0),
        sleep=lambda _: None,
    )
    caplog.set_level(logging.DEBUG)
    try:
        report = run_pass(settings, client)
    finally:
        client.close()
    report.upcoming.append(Upcoming("busy", "", None, 3500, HOUR, "--timeout"))
    status = report.exit_status()
    assert status is ExitStatus.ACTION_FAILED
    assert {"server_failed", "server_stopped", "server_pending", "user_failed"} <= set(
        report.counts()
    )
    metrics_file = tmp_path / "idle-cull.prom"
    metrics.write_metrics_file(metrics_file, report, status)
    rendered = [
        render_json(report, status),
        render_text(replace(report, kept_listed=True), status),
        metrics.metrics_text(report, status),
        metrics_file.read_text(),
        caplog.text,
        report.summary_line(),
    ]
    for text in rendered:
        assert token not in text
        assert token[4:16] not in text  # not even a fragment


@pytest.mark.parametrize(
    ("skew", "shown"),
    [
        pytest.param(0.4, "idleness measured on the hub's clock", id="rounding"),
        pytest.param(-1.9, "idleness measured on the hub's clock", id="rounding-negative"),
        pytest.param(
            5,
            "idleness measured on the hub's clock (this machine's clock is 5s behind the hub's)",
            id="behind",
        ),
        pytest.param(
            -90,
            "idleness measured on the hub's clock (this machine's clock is 1m30s ahead of the hub's)",
            id="ahead",
        ),
    ],
)
def test_text_shows_the_skew_only_when_meaningful(skew: float, shown: str) -> None:
    report = base_report(skew_seconds=skew)
    assert render_text(report, ExitStatus.OK).splitlines()[1].endswith(shown)
