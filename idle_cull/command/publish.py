"""Deliver a finished pass's report and metrics: stdout, a report file, node_exporter's
textfile collector, a Pushgateway.

Every delivery is attempted even when one fails; the caller decides what a failed one
does to the exit status (``app.run_and_report``).
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import TextIO

from idle_cull.command.settings import Settings
from idle_cull.errors import OutputError
from idle_cull.exits import ExitStatus
from idle_cull.output import files, metrics, render
from idle_cull.output.report import Report

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
    if settings.report == "json":
        steps.append(lambda: write_stdout(render.render_json(report, status)))
    elif settings.report == "text":
        steps.append(lambda: write_stdout(render.render_text(report, status)))
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


def write_stdout(text: str) -> None:
    """The report on stdout, or ``OutputError`` if it cannot be delivered there.

    A closed fd 1 (Python then has no ``sys.stdout``), a reader gone (``| head``: EPIPE)
    and a full disk (ENOSPC) are each a failed delivery, like a file that cannot be
    written. After a failure, fd 1 is pointed at ``/dev/null``: the interpreter flushes
    stdout again at exit and would otherwise print a second, unhandled error.
    """
    stream = sys.stdout
    if stream is None:
        raise OutputError("cannot write the report to stdout: it is closed")
    try:
        stream.write(text)
        stream.flush()
    except OSError as error:
        reason = "the reader closed the pipe" if error.errno == errno.EPIPE else error.strerror
        _silence(stream)
        raise OutputError(f"cannot write the report to stdout: {reason}") from None


def _silence(stream: TextIO) -> None:
    with suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
