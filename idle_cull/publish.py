"""Deliver a finished pass's report and metrics: stdout, a report file, node_exporter's
textfile collector, a Pushgateway.

Every delivery is attempted even when one fails; the caller decides what a failed one
does to the exit status (``app.run_and_report``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import click

from idle_cull import files, metrics, render
from idle_cull.config import Settings
from idle_cull.errors import OutputError
from idle_cull.exits import ExitStatus
from idle_cull.report import Report

__all__ = ["check_outputs", "publish"]

log = logging.getLogger(__name__)


def check_outputs(settings: Settings) -> None:
    """Fail before anything is sent to the hub when a delivery cannot possibly work."""
    if settings.report_file:
        files.check_writable(settings.report_file, option="--report-file")
    if settings.metrics_file:
        files.check_writable(settings.metrics_file, option="--metrics-file")
    if settings.metrics_file or settings.pushgateway:
        metrics.require_prometheus_client()
    if settings.pushgateway:
        metrics.check_pushgateway_url(settings.pushgateway)


def publish(report: Report, status: ExitStatus, settings: Settings) -> OutputError | None:
    """Write the report and metrics; the first delivery that failed (each is logged)."""
    if settings.report == "json":
        click.echo(render.render_json(report, status), nl=False)
    elif settings.report == "text":
        click.echo(render.render_text(report, status), nl=False)
    first_failure: OutputError | None = None
    for deliver in _deliveries(report, status, settings):
        try:
            deliver()
        except OutputError as error:
            log.error("%s", error)
            first_failure = first_failure or error
    return first_failure


def _deliveries(report: Report, status: ExitStatus, settings: Settings) -> list[Callable[[], None]]:
    steps: list[Callable[[], None]] = []
    report_file, metrics_file, gateway = (
        settings.report_file,
        settings.metrics_file,
        settings.pushgateway,
    )
    if report_file:
        steps.append(
            lambda: files.write_atomically(report_file, render.render_json(report, status))
        )
    if metrics_file:
        steps.append(lambda: metrics.write_metrics_file(metrics_file, report, status))
    if gateway:
        steps.append(lambda: metrics.push_metrics(gateway, report, status))
    return steps
