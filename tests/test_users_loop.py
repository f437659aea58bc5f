"""Users in the loop, the options and the outputs (issue 25): what the command refuses,
what the settings line shows, and what the report and the metrics say.

The whole passes are in tests/integration/test_users_loop.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from idle_cull.command.boundary import read_template
from idle_cull.errors import ConfigError
from idle_cull.evidence.base import Target
from idle_cull.evidence.keep_alive import KeepAliveSource, PostponeLimits, postponed
from idle_cull.models import Outcome
from idle_cull.output import metrics
from idle_cull.output.notify import Delivery
from idle_cull.output.render import render_text, report_document
from idle_cull.output.report import Entry, ExitStatus, Report
from idle_cull.rules.evidence import Finding
from idle_cull.rules.policy import Action, ServerDecision
from idle_cull.rules.postponement import KeepAliveFile, Postponement, Reading
from tests.support.cli import run
from tests.support.reports import validate
from tests.support.settings import URL, settings

UTC = timezone.utc
NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--postpone-limit=8h"], "--postpone-limit needs --proxy-url", id="no-proxy"),
        pytest.param(
            ["--postpone-timezone=Mars/Olympus"], "is not a time zone name", id="bad-zone"
        ),
        pytest.param(["--notify=json://h/{user}"], "--notify needs --warn-within", id="no-window"),
        pytest.param(
            ["--notify=json://h/{user}", "--warn-within=15m"],
            "--notify needs --schedule-interval",
            id="no-interval",
        ),
        pytest.param(
            ["--notify=json://h/{user}", "--warn-within=5m", "--schedule-interval=10m"],
            "--warn-within must be at least --schedule-interval",
            id="window-shorter-than-interval",
        ),
        pytest.param(
            ["--notify=json://h/{token}", "--warn-within=15m", "--schedule-interval=5m"],
            "a notification URL has {token}",
            id="unknown-field-in-url",
        ),
        pytest.param(
            ["--notify=nosuchscheme://h/{user}", "--warn-within=15m", "--schedule-interval=5m"],
            "is not one apprise can send to",
            id="unknown-scheme",
        ),
    ],
)
def test_settings_that_cannot_work_are_exit_2_before_anything_is_sent(
    args: list[str], message: str
) -> None:
    result = run("--timeout=1h", *args)
    assert result.exit_code == 2, result.output + result.stderr
    assert message in result.stderr


def test_the_settings_line_shows_the_notification_urls_scheme_only() -> None:
    described = settings(
        notify_urls=("mailtos://culler:hunter2@smtp.test?to={user}@example.org",),
        warn_within=900.0,
        schedule_interval=300.0,
    ).describe()
    assert described["notify_urls"] == ["mailtos://..."]
    assert "hunter2" not in str(described)


def test_a_template_file_gives_the_title_and_the_body(tmp_path: Path) -> None:
    path = tmp_path / "warning.txt"
    path.write_text("Server {label} stops at {when}\n\nHi {user}, {postpone}\n")
    template = read_template(path)
    assert template.title == "Server {label} stops at {when}"
    assert template.body == "Hi {user}, {postpone}\n"
    path.write_text("only a title\n")
    with pytest.raises(ConfigError, match="write the title on the first line"):
        read_template(path)


# -- the source of evidence --------------------------------------------------------------------


class FakeReader:
    def __init__(self, reading: Reading | Exception) -> None:
        self.reading = reading
        self.asked: list[str | None] = []

    def read(self, url: str | None, token: object) -> Reading:
        self.asked.append(url)
        if isinstance(self.reading, Exception):
            raise self.reading
        return self.reading


def target(age: float = 60.0) -> Target:
    return Target("ann", "", "ann", "/user/ann/", NOW - timedelta(hours=2), age)


def source(reading: Reading | Exception, **limits: object) -> tuple[KeepAliveSource, FakeReader]:
    reader = FakeReader(reading)
    bounds = PostponeLimits(**{"limit": 8 * 3600.0, **limits})  # type: ignore[arg-type]
    return KeepAliveSource(reader, None, bounds, max_age=3600.0), reader  # type: ignore[arg-type]


def test_a_postponement_keeps_the_server_with_its_reason() -> None:
    keep, _ = source(Reading(KeepAliveFile("18:00", NOW - timedelta(minutes=5)), requests=2))
    finding = keep.gather(target(), NOW)
    assert finding.keep == "user postponed until 18:00 (limit 8h)"
    assert finding.attempts == 2
    found = postponed([finding])
    assert found is not None
    assert found.until == NOW.replace(hour=18)


def test_reading_that_raises_is_no_postponement_for_that_server_only() -> None:
    keep, _ = source(RuntimeError("boom"))
    finding = keep.gather(target(), NOW)
    assert finding.keep is None
    assert finding.failed == "not read: unexpected RuntimeError"


@pytest.mark.parametrize(("allowed", "wanted"), [(False, False), (True, True)])
def test_max_age_is_postponed_only_when_the_operator_says_so(allowed: bool, wanted: bool) -> None:
    keep, _ = source(Reading(None, "no keep-alive file"), max_age=allowed)
    assert keep.wanted(target(age=7200.0)) is wanted
    assert keep.wanted(target(age=60.0)) is True


def test_a_dry_run_reads_nothing() -> None:
    keep, reader = source(Reading(None, "no keep-alive file"))
    assert keep.would_gather(target()).keep is None
    assert reader.asked == []


# -- the report and the metrics ----------------------------------------------------------------


def users_loop_report() -> Report:
    decision = ServerDecision("ann", "", Action.STOP, "idle 2h >= 1h (--timeout)")
    kept = Postponement(NOW.replace(hour=18), "user postponed until 18:00 (limit 8h)")
    report = Report(hub_url=URL, started_at=NOW, now=NOW, finished_at=NOW, hub_version="6.1.1")
    report.entries.append(Entry("server", decision).settled(Outcome.SKIPPED, 2, kept.reason))
    report.findings = {("ann", ""): (Finding("keep-alive", keep=kept.reason, detail=kept),)}
    report.postponing = True
    report.notifying = True
    report.notifications = [
        Delivery("bob", "", "mailto://smtp.test/...", "sent"),
        Delivery("cy", "gpu", "json://hook.test/...", "failed", "HTTP 500"),
    ]
    return report


def test_the_report_shows_postponements_and_warnings_and_fits_the_schema() -> None:
    document = report_document(users_loop_report(), ExitStatus.OK)
    validate(document)
    (entry,) = document["entries"]
    assert entry["postponed"] == {
        "kept": True,
        "until": "2026-12-07T18:00:00.000Z",
        "reason": "user postponed until 18:00 (limit 8h)",
    }
    assert entry["detail"] == "user postponed until 18:00 (limit 8h)"
    assert document["counts"]["postponed"] == 1
    assert document["counts"]["notifications"] == {"sent": 1, "failed": 1, "would_send": 0}
    assert document["notifications"][1] == {
        "user": "cy",
        "server": "gpu",
        "target": "json://hook.test/...",
        "outcome": "failed",
        "detail": "HTTP 500",
    }
    line = users_loop_report().summary_line()
    assert "postponed=1 warnings_sent=1 warnings_failed=1" in line
    assert "user postponed until 18:00" in render_text(users_loop_report(), ExitStatus.OK)


def test_the_metrics_count_postponed_servers_and_warnings_by_outcome() -> None:
    text = metrics.metrics_text(users_loop_report(), ExitStatus.OK)
    assert "idle_cull_last_run_postponed_servers 1.0" in text
    assert 'idle_cull_last_run_warnings{outcome="failed"} 1.0' in text
    assert 'idle_cull_last_run_warnings{outcome="would_send"} 0.0' in text
