"""Prometheus metrics: parsed back with prometheus-client, written atomically, pushed."""

from __future__ import annotations

import math
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from idle_cull import __version__
from idle_cull.errors import ConfigError, MetricsUnavailable, OutputError, PushgatewayError
from idle_cull.models import Outcome
from idle_cull.output.metrics import (
    LAST_SUCCESS,
    MISSING_EXTRA,
    check_pushgateway_url,
    metrics_text,
    push_metrics,
    read_last_success,
    require_prometheus_client,
    write_metrics_file,
)
from idle_cull.output.report import ExitStatus, Report, Upcoming
from tests.support.records import NOW
from tests.support.reports import FAILED_STOP, dry_run_report, settled_report

ROOT = Path(__file__).parent.parent
START = NOW.timestamp()
END = START + 2.5


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a metrics text, by name and sorted labels, via the real parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[name, tuple(sorted(labels.items()))]


# ---------------------------------------------------------------------------------------
# The text format, parsed back


def test_parser_round_trip_of_every_metric() -> None:
    report = settled_report(FAILED_STOP)
    report.upcoming.append(Upcoming("carol", "", None, 3000, 3600, "--timeout"))
    report.rejected_records.append("user record without a name: {}")
    text = metrics_text(report, ExitStatus.ACTION_FAILED, previous_success=START - 600)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert all(name.startswith("idle_cull_") for name in families)
    assert {f.type for f in families.values()} == {"gauge"}
    assert all(f.documentation for f in families.values())
    assert value(text, "idle_cull_last_run_start_timestamp_seconds") == START
    assert value(text, "idle_cull_last_run_end_timestamp_seconds") == END
    assert value(text, "idle_cull_last_run_duration_seconds") == 2.5
    assert value(text, LAST_SUCCESS) == START - 600
    assert value(text, "idle_cull_last_run_exit_status") == 1
    assert value(text, "idle_cull_last_run_dry_run") == 0
    assert value(text, "idle_cull_last_run_users_listed") == 4
    assert value(text, "idle_cull_last_run_rejected_records") == 1
    assert value(text, "idle_cull_last_run_upcoming_servers") == 1
    assert value(text, "idle_cull_last_run_clock_skew_seconds") == 0.4
    assert value(text, "idle_cull_last_run_servers", outcome="stopped") == 1
    assert value(text, "idle_cull_last_run_servers", outcome="failed") == 1
    assert value(text, "idle_cull_last_run_servers", outcome="pending") == 0
    assert value(text, "idle_cull_last_run_servers", outcome="kept") == 1
    assert value(text, "idle_cull_last_run_servers", outcome="skipped") == 1
    assert value(text, "idle_cull_last_run_users", outcome="deleted") == 2
    assert value(text, "idle_cull_last_run_users", outcome="kept") == 2
    assert (
        value(
            text, "idle_cull_last_run_info", clock="hub", hub_version="5.2.1", version=__version__
        )
        == 1
    )


def test_every_outcome_is_a_series_even_at_zero() -> None:
    """Alerts on ``idle_cull_last_run_servers{outcome="failed"} > 0`` need the series."""
    text = metrics_text(Report(hub_url="http://h/hub/api", started_at=NOW), ExitStatus.HUB_UNUSABLE)
    servers = {
        dict(labels)["outcome"]: v
        for (name, labels), v in samples(text).items()
        if name == "idle_cull_last_run_servers"
    }
    users = {
        dict(labels)["outcome"]: v
        for (name, labels), v in samples(text).items()
        if name == "idle_cull_last_run_users"
    }
    assert set(servers) == {
        "stopped",
        "pending",
        "already_gone",
        "failed",
        "skipped",
        "not_attempted",
        "dry_run",
        "kept",
    }
    assert set(users) == {
        "deleted",
        "pending",
        "already_gone",
        "failed",
        "skipped",
        "not_attempted",
        "dry_run",
        "kept",
    }
    assert set(servers.values()) == set(users.values()) == {0}


def test_counts_match_report_counts() -> None:
    report = settled_report(
        {"server:bob/gpu": (Outcome.PENDING, 1, ""), "user:bob": (Outcome.SKIPPED, 0, "")}
    )
    text = metrics_text(report, ExitStatus.OK)
    for key, count in report.counts().items():
        kind, _, outcome = key.partition("_")
        assert value(text, f"idle_cull_last_run_{kind}s", outcome=outcome) == count, key


def test_unknown_end_and_skew_are_nan_not_missing() -> None:
    text = metrics_text(
        Report(hub_url="http://h/hub/api", started_at=NOW, clock="local"), ExitStatus.HUB_UNUSABLE
    )
    assert math.isnan(value(text, "idle_cull_last_run_end_timestamp_seconds"))
    assert math.isnan(value(text, "idle_cull_last_run_duration_seconds"))
    assert math.isnan(value(text, "idle_cull_last_run_clock_skew_seconds"))


@pytest.mark.parametrize(
    ("status", "previous", "expected"),
    [
        pytest.param(ExitStatus.OK, None, END, id="success-is-this-run"),
        pytest.param(ExitStatus.OK, START - 600, END, id="success-replaces-previous"),
        pytest.param(
            ExitStatus.ACTION_FAILED, START - 600, START - 600, id="failure-carries-previous"
        ),
        pytest.param(
            ExitStatus.CAP_EXCEEDED, START - 600, START - 600, id="refusal-carries-previous"
        ),
        pytest.param(ExitStatus.HUB_UNUSABLE, None, None, id="failure-without-previous-omits-it"),
    ],
)
def test_last_success(status: ExitStatus, previous: float | None, expected: float | None) -> None:
    text = metrics_text(settled_report(), status, previous_success=previous)
    assert samples(text).get((LAST_SUCCESS, ())) == expected


def test_a_dry_run_is_a_success_and_says_it_was_dry() -> None:
    text = metrics_text(dry_run_report(), ExitStatus.OK)
    assert value(text, LAST_SUCCESS) == END
    assert value(text, "idle_cull_last_run_dry_run") == 1
    assert value(text, "idle_cull_last_run_servers", outcome="dry_run") == 2
    assert value(text, "idle_cull_last_run_servers", outcome="stopped") == 0


def test_no_process_or_global_registry_metrics_leak_in() -> None:
    text = metrics_text(settled_report(), ExitStatus.OK)
    assert "process_" not in text
    assert "python_" not in text


# ---------------------------------------------------------------------------------------
# The textfile for node_exporter


def test_metrics_file_carries_the_last_success_over_failed_runs(tmp_path: Path) -> None:
    path = tmp_path / "idle_cull.prom"
    ok = settled_report()
    write_metrics_file(path, ok, ExitStatus.OK)
    assert read_last_success(path) == END
    later = settled_report(
        FAILED_STOP, started_at=NOW + timedelta(minutes=10), finished_at=NOW + timedelta(minutes=11)
    )
    write_metrics_file(path, later, ExitStatus.ACTION_FAILED)
    write_metrics_file(path, later, ExitStatus.ACTION_FAILED)
    text = path.read_text()
    assert value(text, LAST_SUCCESS) == END
    assert value(text, "idle_cull_last_run_exit_status") == 1
    assert (
        value(text, "idle_cull_last_run_end_timestamp_seconds")
        == (NOW + timedelta(minutes=11)).timestamp()
    )
    assert [p.name for p in tmp_path.iterdir()] == ["idle_cull.prom"]


@pytest.mark.parametrize(
    "previous",
    [
        pytest.param(None, id="no-previous-file"),
        pytest.param("this is { not prometheus\n", id="garbage"),
        pytest.param("idle_cull_last_success_timestamp_seconds NaN\n", id="nan"),
        pytest.param(b"\xff\xfe\x00binary", id="not-utf8"),
    ],
)
def test_an_unusable_previous_file_just_omits_last_success(
    tmp_path: Path, previous: str | bytes | None
) -> None:
    path = tmp_path / "idle_cull.prom"
    if isinstance(previous, str):
        path.write_text(previous)
    elif isinstance(previous, bytes):
        path.write_bytes(previous)
    write_metrics_file(path, settled_report(FAILED_STOP), ExitStatus.ACTION_FAILED)
    text = path.read_text()
    assert (LAST_SUCCESS, ()) not in samples(text)
    assert value(text, "idle_cull_last_run_exit_status") == 1


def test_a_file_not_named_prom_gets_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_metrics_file(tmp_path / "metrics.txt", settled_report(), ExitStatus.OK)
    assert "reads only *.prom files" in caplog.text


def test_an_unwritable_metrics_file_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=r"cannot write .*/file/x\.prom: Not a directory"):
        write_metrics_file(tmp_path / "file" / "x.prom", settled_report(), ExitStatus.OK)


# ---------------------------------------------------------------------------------------
# prometheus-client is optional


def test_without_prometheus_client_every_entry_point_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [
        m for m in sys.modules if m == "prometheus_client" or m.startswith("prometheus_client.")
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # makes the import fail
    report = settled_report()
    calls: list[Any] = [
        require_prometheus_client,
        lambda: metrics_text(report, ExitStatus.OK),
        lambda: write_metrics_file(tmp_path / "m.prom", report, ExitStatus.OK),
        lambda: push_metrics("http://127.0.0.1:9", report, ExitStatus.OK),
    ]
    for call in calls:
        with pytest.raises(MetricsUnavailable) as raised:
            call()
        assert str(raised.value) == MISSING_EXTRA
        assert isinstance(raised.value, ConfigError)  # exit status 2, before the pass
    # There is no idle-cull on a package index: the advice names what can be installed.
    assert "pip install 'prometheus-client>=0.16'" in MISSING_EXTRA
    assert "pip install 'idle-cull[metrics]'" not in MISSING_EXTRA
    assert list(tmp_path.iterdir()) == []


def test_prometheus_client_is_not_imported_at_start_up() -> None:
    code = (
        "import sys, idle_cull.command.cli, idle_cull.output.render, idle_cull.output.files, idle_cull.output.metrics; "
        "print('prometheus_client' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"


def test_the_install_advice_names_an_extra_that_brings_prometheus_client() -> None:
    """Following the advice in the error installs what is missing; a plain install does not."""
    # idle-cull is not on an index: the advice installs it from a checkout's path.
    advice = re.search(r"pip install '(?:\S*/)?([\w-]+)\[(\w+)\]'", MISSING_EXTRA)
    assert advice is not None, MISSING_EXTRA
    distribution, extra = advice.groups()
    brought = [
        r for r in metadata.requires(distribution) or [] if re.match(r"prometheus[-_]client\b", r)
    ]
    markers = [r.partition(";")[2].replace(" ", "") for r in brought]
    assert f'extra=="{extra}"' in markers, brought
    assert "" not in markers, brought


# ---------------------------------------------------------------------------------------
# Pushgateway


class Pushed(NamedTuple):
    method: str
    path: str
    content_type: str
    body: str


class Gateway(NamedTuple):
    url: str
    requests: list[Pushed]
    answer: list[tuple[int, bytes]]  # status and body for the next requests; default 200


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    """A Pushgateway stand-in on 127.0.0.1 that records every request."""
    recorded: list[Pushed] = []
    answers: list[tuple[int, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def handle_push(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length).decode("utf-8")
            recorded.append(
                Pushed(self.command, self.path, self.headers.get("Content-Type", ""), body)
            )
            status, text = answers.pop(0) if answers else (200, b"")
            self.send_response(status)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        do_PUT = do_POST = do_DELETE = handle_push

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Gateway(f"http://127.0.0.1:{server.server_address[1]}", recorded, answers)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_push_posts_the_metrics_to_the_job_group(gateway: Gateway) -> None:
    push_metrics(gateway.url, settled_report(), ExitStatus.OK)
    (pushed,) = gateway.requests
    assert pushed.method == "POST"  # replaces only the names pushed (see push_metrics)
    assert pushed.path == "/metrics/job/idle-cull"
    assert pushed.content_type.startswith("text/plain; version=0.0.4")
    assert value(pushed.body, "idle_cull_last_run_exit_status") == 0
    assert value(pushed.body, LAST_SUCCESS) == END
    assert pushed.body == metrics_text(settled_report(), ExitStatus.OK)


def test_a_failed_run_pushes_no_last_success_so_the_gateway_keeps_the_old_one(
    gateway: Gateway,
) -> None:
    push_metrics(gateway.url, settled_report(FAILED_STOP), ExitStatus.ACTION_FAILED)
    (pushed,) = gateway.requests
    assert LAST_SUCCESS not in pushed.body
    assert value(pushed.body, "idle_cull_last_run_exit_status") == 1


def test_a_trailing_slash_in_the_gateway_url_is_not_doubled(gateway: Gateway) -> None:
    push_metrics(gateway.url + "/", settled_report(), ExitStatus.OK)
    (pushed,) = gateway.requests
    assert pushed.path == "/metrics/job/idle-cull"


def test_a_refusing_gateway_is_a_pushgateway_error_with_its_reason(gateway: Gateway) -> None:
    gateway.answer.append(
        (400, b"pushed metrics are invalid or inconsistent with existing metrics")
    )
    with pytest.raises(
        PushgatewayError,
        match=r"Pushgateway at http://127\.0\.0\.1:\d+: HTTP 400 Bad Request: pushed metrics are invalid",
    ):
        push_metrics(gateway.url, settled_report(), ExitStatus.OK)


def test_an_unreachable_gateway_is_a_pushgateway_error(unused_port: int) -> None:
    with pytest.raises(
        PushgatewayError,
        match=rf"cannot push metrics to the Pushgateway at http://127\.0\.0\.1:{unused_port}: .*refused",
    ):
        push_metrics(f"http://127.0.0.1:{unused_port}", settled_report(), ExitStatus.OK, timeout=5)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param(
            "http://pusher:s3cret@127.0.0.1:9091",
            "must not contain a user or password",
            id="credentials",
        ),
        pytest.param("ftp://gateway:9091", "is not an http(s) URL", id="other-scheme"),
        pytest.param("gateway:9091", "is not an http(s) URL", id="no-scheme"),
        pytest.param("http://", "is not an http(s) URL", id="no-host"),
        pytest.param("http://gateway:9091 ", "contains spaces", id="trailing-space"),
    ],
)
def test_unusable_gateway_urls_are_config_errors_before_anything_is_sent(
    url: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        check_pushgateway_url(url)
    assert "s3cret" not in str(raised.value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        push_metrics(url, settled_report(), ExitStatus.OK, timeout=1)


def test_a_usable_gateway_url_passes_the_check() -> None:
    check_pushgateway_url("https://pushgateway.monitoring.svc:9091/")


def test_a_pushgateway_error_is_an_output_error() -> None:
    assert issubclass(PushgatewayError, OutputError)


@pytest.fixture
def unused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
