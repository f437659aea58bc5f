"""``--activity-source=server`` in the metrics: servers by what their own activity
showed, every result a series (0 included), so an alert on ``fell_back`` works from the
first pass."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from idle_cull.output.metrics import metrics_text
from idle_cull.output.report import ExitStatus
from idle_cull.rules.evidence import Finding
from tests.support.reports import settled_report


def activity_series(text: str) -> dict[str, float]:
    return {
        s.labels["result"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "idle_cull_last_run_activity"
    }


def test_servers_by_what_their_activity_showed_every_result_present() -> None:
    report = settled_report(
        activity_source="server", findings={("alice", ""): (Finding("server"),)}
    )
    series = activity_series(metrics_text(report, ExitStatus.OK))
    assert series == {result: float(n) for result, n in report.activity_counts().items()}
    assert series["would_probe"] == 1
    assert series["fell_back"] == 0


def test_no_activity_series_when_the_hub_decides() -> None:
    assert activity_series(metrics_text(settled_report(), ExitStatus.OK)) == {}
