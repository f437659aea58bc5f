"""Deliver a finished pass's report and metrics: stdout, a report file, node_exporter's
textfile collector, a Pushgateway.

Every delivery is attempted even when one fails, and a failed delivery never hides the
pass's own status: it only turns a clean 0 into 5 (``OUTPUT_FAILED``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import click

from idle_cull import files, metrics, render
from idle_cull.config import Settings
from idle_cull.errors import OutputError
from idle_cull.report import ExitStatus, Report

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


def publish(report: Report, status: ExitStatus, settings: Settings) -> ExitStatus:
    """Write the report and metrics; return the exit status the process should end with."""
    if settings.report == "json":
        click.echo(render.render_json(report, status), nl=False)
    elif settings.report == "text":
        click.echo(render.render_text(report, status), nl=False)
    failed = False
    for deliver in _deliveries(report, status, settings):
        try:
            deliver()
        except OutputError as error:
            log.error("%s", error)
            failed = True
    if failed and status is ExitStatus.OK:
        return ExitStatus.OUTPUT_FAILED
    return status


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
