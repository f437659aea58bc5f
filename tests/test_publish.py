"""Report and metrics delivery wired through the CLI: stdout, files, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from prometheus_client.parser import text_string_to_metric_families

from tests.support.cli import run
from tests.support.emulated_hub import TOKEN, URL, EmulatedHub, server_json, user_json
from tests.support.reports import validate

H = 3600


def metric(path: Path, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    raise AssertionError(f"{name} not in {path}")


def test_json_report_on_stdout_logs_on_stderr(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [user_json("ann", servers=[server_json(idle=2 * H)])])
    emulated_hub.answer_stop("ann", status=204)
    result = run("--timeout=1h", "--report=json", "--warn-within=10m")
    assert result.exit_code == 0
    document = json.loads(result.stdout)  # stdout is the document and nothing else
    validate(document)
    assert document["warn_within_seconds"] == 600
    assert [(e["user"], e["outcome"]) for e in document["entries"]] == [("ann", "stopped")]
    assert "summary:" in result.stderr
    assert "summary:" not in result.stdout


@pytest.mark.parametrize("report_kept", [False, True], ids=["kept-counted", "report-kept"])
def test_kept_servers_are_counted_and_listed_only_when_asked(
    emulated_hub: EmulatedHub, tmp_path: Path, report_kept: bool
) -> None:
    """A big hub's report (and memory) must not grow with every server that is fine."""
    busy = [user_json(name, servers=[server_json(idle=60)]) for name in ("bob", "cid")]
    emulated_hub.serve_users("ready", [user_json("ann", servers=[server_json(idle=2 * H)]), *busy])
    emulated_hub.answer_stop("ann", status=204)
    metrics = tmp_path / "idle_cull.prom"
    asked = ["--report-kept"] if report_kept else []
    result = run(
        "--timeout=1h", "--report=json", f"--metrics-file={metrics}", "--log-level=debug", *asked
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    validate(document)
    assert document["entries_include_kept"] is report_kept
    assert document["counts"]["servers"]["kept"] == 2
    assert document["counts"]["servers"]["stopped"] == 1
    listed = sorted((e["user"], e["outcome"]) for e in document["entries"])
    assert listed == [
        ("ann", "stopped"),
        *([("bob", "kept"), ("cid", "kept")] if report_kept else []),
    ]
    assert metric(metrics, "idle_cull_last_run_servers", outcome="kept") == 2
    assert "server_kept=2" in result.stderr
    assert (
        "keep server bob: idle 1m < 1h (--timeout)" in result.stderr
    )  # the debug log says why, always


def test_text_report(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [user_json("ann", servers=[server_json(idle=2 * H)])])
    emulated_hub.answer_stop("ann", status=204)
    result = run("--timeout=1h", "--report=text")
    assert result.exit_code == 0
    assert "ann" in result.stdout
    assert "INFO" not in result.stdout


def test_no_report_by_default(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [])
    assert run("--timeout=1h").stdout == ""


def test_report_file_and_metrics_file(emulated_hub: EmulatedHub, tmp_path: Path) -> None:
    emulated_hub.serve_users("ready", [user_json("ann", servers=[server_json(idle=2 * H)])])
    emulated_hub.answer_stop("ann", status=204)
    report, metrics = tmp_path / "report.json", tmp_path / "idle_cull.prom"
    result = run("--timeout=1h", f"--report-file={report}", f"--metrics-file={metrics}")
    assert result.exit_code == 0, result.stderr
    validate(json.loads(report.read_text()))
    assert metric(metrics, "idle_cull_last_run_exit_status") == 0
    assert metric(metrics, "idle_cull_last_run_users_listed") == 1
    assert TOKEN not in report.read_text() + metrics.read_text()


def test_a_failed_listing_still_reports_and_records_metrics(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    emulated_hub.get(
        f"{URL}/users",
        status=403,
        json={"status": 403, "message": "Missing or invalid credentials."},
    )
    report, metrics = tmp_path / "report.json", tmp_path / "idle_cull.prom"
    result = run(
        "--timeout=1h", f"--report-file={report}", f"--metrics-file={metrics}", "--report=json"
    )
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    validate(document)
    assert "does not accept the API token" in document["error"]
    assert document["exit_status"] == 3
    assert metric(metrics, "idle_cull_last_run_exit_status") == 3


def test_unwritable_output_is_a_configuration_error_before_contacting_the_hub(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run("--timeout=1h", f"--report-file={blocker}/report.json")
    assert result.exit_code == 2
    assert "--report-file" in result.stderr
    assert len(emulated_hub.calls) == 0


def test_a_failed_push_exits_5_after_a_good_pass(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [])
    gateway = "http://127.0.0.1:9"  # discard port: nothing listens there
    emulated_hub.add_passthru(gateway)
    result = run("--timeout=1h", f"--pushgateway={gateway}")
    assert result.exit_code == 5, result.stderr
    assert "ERROR" in result.stderr


@pytest.mark.parametrize("url", ["pushgateway:9091", "ftp://gw:9091"])
def test_bad_pushgateway_url_is_a_configuration_error(emulated_hub: EmulatedHub, url: str) -> None:
    result = run("--timeout=1h", f"--pushgateway={url}")
    assert result.exit_code == 2
    assert len(emulated_hub.calls) == 0


DISCARD = "http://127.0.0.1:9"  # a Pushgateway URL nothing listens at


@pytest.mark.parametrize(
    ("args", "arrange", "status"),
    [
        pytest.param([f"--pushgateway={DISCARD}"], "", 5, id="good-pass-push-failed"),
        pytest.param(
            [f"--pushgateway={DISCARD}", "--exclude-group=nosuch"], "no-group", 2, id="no-group"
        ),
        pytest.param([f"--pushgateway={DISCARD}"], "no-token", 3, id="hub-refused-token"),
        pytest.param(["--report-file=/nonexistent/dir/report.json"], "", 2, id="usage-error"),
    ],
)
def test_the_summary_line_ends_the_log_after_any_delivery_error(
    emulated_hub: EmulatedHub, args: list[str], arrange: str, status: int
) -> None:
    """Issue 23.7: the docs say the ``summary:`` line ends the log; an error delivering the
    report or metrics came after it, and the summary said exit=0 for a run that exits 5."""
    emulated_hub.add_passthru(DISCARD)
    emulated_hub.serve_users("ready", [])
    if arrange == "no-group":
        emulated_hub.missing_groups.add("nosuch")
    if arrange == "no-token":
        emulated_hub.replace(responses.GET, f"{URL}/user", status=403, json={"status": 403})
    result = run("--timeout=1h", *args)
    assert result.exit_code == status, result.stderr
    lines = result.stderr.splitlines()
    assert any(" ERROR " in line for line in lines)
    assert "summary: " in lines[-1]
    assert lines[-1].endswith(f" exit={status}")
    assert sum("summary: " in line for line in lines) == 1
