"""Prometheus metrics of the last pass: a textfile for node_exporter, or a Pushgateway push.

A batch job has no endpoint to scrape; Prometheus learns about it from a file that
node_exporter's textfile collector reads, or from a Pushgateway. Every value is a gauge
of the last run (counters would need the job to live between runs). ``prometheus-client``
is an optional extra, imported only here and only when metrics are asked for, so a
plain install starts without it. Nothing here receives the settings or the token.
"""

from __future__ import annotations

import errno
import logging
import math
import re
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from idle_cull import __version__
from idle_cull.errors import ConfigError, MetricsUnavailable, PushgatewayError
from idle_cull.models import as_utc
from idle_cull.output.files import write_atomically
from idle_cull.output.report import ExitStatus, Report, result_counts
from idle_cull.safe_files import NotRegularFile, read_regular
from idle_cull.safe_text import public_url
from idle_cull.transport import BoundedTransport, RequestBounds
from idle_cull.urls import requestable_url

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "LAST_SUCCESS",
    "MISSING_EXTRA",
    "PUSH_TIMEOUT",
    "check_pushgateway_url",
    "metrics_text",
    "push_metrics",
    "read_last_success",
    "require_prometheus_client",
    "write_metrics_file",
]

log = logging.getLogger(__name__)

MISSING_EXTRA = (
    "--metrics-file/--pushgateway need prometheus-client: install it into idle-cull's "
    "environment (pip install 'prometheus-client>=0.16'), or reinstall idle-cull with its "
    "metrics extra from a checkout (pip install '/path/to/idle-cull[metrics]')"
)
LAST_SUCCESS = "idle_cull_last_success_timestamp_seconds"
PUSH_JOB = "idle-cull"  # the Pushgateway group the metrics replace (job/idle-cull)
PUSH_TIMEOUT = 10.0  # seconds; a stuck gateway must not hold the next scheduled run
MAX_PUSH_ANSWER = 64 * 1024  # bytes; a gateway answers a push with a line at most
MAX_PREVIOUS_METRICS = 1024 * 1024  # bytes; ours is about 3 KB
NAN = float("nan")


def require_prometheus_client() -> None:
    """Fail early (``MetricsUnavailable``, a ``ConfigError``) when the extra is missing.

    The CLI calls this while validating options, so a missing extra is exit status 2
    before the hub is touched, not a surprise after a pass that culled servers.
    """
    try:
        import prometheus_client  # noqa: F401, PLC0415 (optional, imported on demand)
    except ImportError:
        raise MetricsUnavailable(MISSING_EXTRA) from None


def metrics_text(
    report: Report, exit_status: ExitStatus, *, previous_success: float | None = None
) -> str:
    """The Prometheus text format (0.0.4) of one pass, as node_exporter expects it.

    ``idle_cull_last_success_timestamp_seconds`` is this run's end when it succeeded,
    else ``previous_success`` (omitted when unknown), so "no success for an hour"
    stays alertable across failed runs.
    """
    require_prometheus_client()
    from prometheus_client import generate_latest  # noqa: PLC0415 (optional)

    success = _success_time(report) if exit_status is ExitStatus.OK else previous_success
    return generate_latest(_registry(report, exit_status, success)).decode("utf-8")


def write_metrics_file(path: Path, report: Report, exit_status: ExitStatus) -> None:
    """Atomically replace ``path`` with this pass's metrics (``OutputError`` if not).

    A failed run carries over the last success timestamp from the file it replaces.
    """
    require_prometheus_client()
    if path.suffix != ".prom":
        log.warning("node_exporter's textfile collector reads only *.prom files, not %s", path)
    previous = None if exit_status is ExitStatus.OK else read_last_success(path)
    write_atomically(path, metrics_text(report, exit_status, previous_success=previous))


def read_last_success(path: Path) -> float | None:
    """The last success timestamp in an earlier metrics file, or ``None``.

    A missing or unreadable file is not an error: the metric is then omitted until the
    next successful run writes it again.
    """
    require_prometheus_client()
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    try:
        # Not through a link, not blocking on a FIFO, not more than a metrics file holds.
        content, _mode = read_regular(path, MAX_PREVIOUS_METRICS, follow=False)
        text = content.decode("utf-8")
    except FileNotFoundError:
        return None
    except NotRegularFile as error:  # a FIFO, a device, or far too big
        log.warning("ignoring the previous metrics file: %s", error)
        return None
    except OSError as error:
        reason = "it is a symbolic link" if error.errno == errno.ELOOP else error.strerror
        log.warning("ignoring the previous metrics file %s: %s", path, reason)
        return None
    except UnicodeDecodeError:
        log.warning("ignoring the previous metrics file %s: not UTF-8", path)
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS and math.isfinite(sample.value):
                    return float(sample.value)
    except (ValueError, TypeError, IndexError):
        # Not the error's text: it can quote the file's first line.
        log.warning("ignoring the unparsable previous metrics file %s", path)
    return None


def push_metrics(
    url: str,
    report: Report,
    exit_status: ExitStatus,
    *,
    timeout: float = PUSH_TIMEOUT,
) -> None:
    """Push this pass's metrics to a Pushgateway (``POST /metrics/job/idle-cull``).

    POST replaces only the metric names pushed, and a failed run does not push the last
    success timestamp, so the gateway keeps the previous one: the pattern Prometheus
    documents for batch jobs. Raises ``PushgatewayError`` with the gateway's answer.
    """
    check_pushgateway_url(url)
    require_prometheus_client()
    from prometheus_client import pushadd_to_gateway  # noqa: PLC0415 (optional)

    success = _success_time(report) if exit_status is ExitStatus.OK else None
    registry = _registry(report, exit_status, success)
    where = f"the Pushgateway at {public_url(url)}"
    try:
        pushadd_to_gateway(
            url, job=PUSH_JOB, registry=registry, timeout=timeout, handler=_bounded_handler(where)
        )
    except (OSError, ValueError, HTTPException) as error:
        raise PushgatewayError(f"cannot push metrics to {where}: {_push_reason(error)}") from None


def _bounded_handler(where: str) -> Callable[..., Callable[[], None]]:
    """prometheus-client's push ``handler``, sending through ``BoundedTransport``.

    urllib's own handler follows redirects and bounds each socket read, not the push:
    a gateway that trickles its answer would hold the process, and the lock, for ever.
    """

    def handler(
        url: str, method: str, timeout: float, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        def push() -> None:
            bounds = RequestBounds.for_timeout(timeout, max_bytes=MAX_PUSH_ANSWER)
            transport = BoundedTransport(requests.Session(), bounds)
            try:
                response = transport.request(method, url, data=data, headers=dict(headers))
            finally:
                transport.close()
            status = response.status_code
            if 300 <= status < 400:
                location = public_url(response.headers.get("Location", "")) or "nowhere"
                raise PushgatewayError(
                    f"cannot push metrics to {where}: HTTP {status}, a redirect to "
                    f"{location!r}, which idle-cull never follows; check --pushgateway"
                )
            if status >= 400:
                body = response.content[:300].decode("utf-8", "replace").strip()
                raise PushgatewayError(
                    f"cannot push metrics to {where}: HTTP {status} {response.reason}"
                    + (f": {body}" if body else "")
                )

        return push

    return handler


def check_pushgateway_url(url: str) -> None:
    """Refuse a ``--pushgateway`` URL that cannot work, before the pass (``ConfigError``).

    Credentials in the URL are refused rather than used: they would sit in the process
    list and the scheduler's files, which is why the hub token is never an option either.
    """
    parts = requestable_url(url, "--pushgateway", "http://pushgateway:9091")
    if "@" in parts.netloc:
        raise ConfigError(
            "--pushgateway must not contain a user or password; "
            "put the Pushgateway behind a network policy instead"
        )


def _push_reason(error: Exception) -> str:
    """The gateway's own explanation when it gave one (it says which metric clashed)."""
    if isinstance(error, requests.ConnectionError):
        match = re.search(r"\[Errno -?\d+\] [^'\")]+", str(error))
        if match:
            return match.group()
    reason = getattr(error, "reason", None)
    return str(reason or error) or type(error).__name__


def _success_time(report: Report) -> float:
    return as_utc(report.finished_at or report.started_at).timestamp()


def _registry(
    report: Report, exit_status: ExitStatus, last_success: float | None
) -> CollectorRegistry:
    """A fresh registry (never the global one: no process metrics, no leftovers)."""
    from prometheus_client import CollectorRegistry, Gauge, Info  # noqa: PLC0415 (optional)

    registry = CollectorRegistry(auto_describe=True)

    def gauge(name: str, documentation: str, value: float) -> None:
        Gauge(f"idle_cull_{name}", documentation, registry=registry).set(value)

    end = as_utc(report.finished_at).timestamp() if report.finished_at else NAN
    gauge("last_run_start_timestamp_seconds", "When the last pass started.", _started(report))
    gauge("last_run_end_timestamp_seconds", "When the last pass ended (NaN: unknown).", end)
    gauge("last_run_duration_seconds", "How long the last pass took.", end - _started(report))
    if last_success is not None:
        gauge(
            "last_success_timestamp_seconds",
            "When a pass last ended with exit status 0 (dry runs included).",
            last_success,
        )
    gauge("last_run_exit_status", "Exit status of the last pass (see --help).", exit_status)
    gauge("last_run_dry_run", "1 if the last pass was a dry run.", report.dry_run)
    gauge("last_run_users_listed", "Users the last pass listed.", report.users_listed)
    gauge(
        "last_run_listing_incomplete",
        "1 if the hub listed fewer users than it counts, or did not paginate (nothing culled).",
        report.listing_incomplete is not None,
    )
    gauge(
        "last_run_rejected_records",
        "User records the last pass could not parse.",
        len(report.rejected_records),
    )
    gauge(
        "last_run_upcoming_servers",
        "Servers that cross their idle limit within --warn-within.",
        len(report.upcoming),
    )
    gauge(
        "last_run_clock_skew_seconds",
        "Hub clock minus this machine's clock (NaN: not measured).",
        NAN if report.skew_seconds is None else report.skew_seconds,
    )
    _outcome_gauges(registry, report)
    if report.probing:
        _probe_gauges(registry, report)
    if report.activity_source == "server":
        _activity_gauges(registry, report)
    if report.postponing:
        gauge(
            "last_run_postponed_servers",
            "Servers the last pass kept because their user's keep-alive file postponed the "
            "cull (--postpone-limit).",
            report.postponed_count(),
        )
    if report.notifying:
        _notification_gauges(registry, report)
    Info("idle_cull_last_run", "The last pass's versions and clock.", registry=registry).info(
        {"version": __version__, "hub_version": report.hub_version, "clock": report.clock}
    )
    return registry


def _started(report: Report) -> float:
    return as_utc(report.started_at).timestamp()


def _outcome_gauges(registry: CollectorRegistry, report: Report) -> None:
    """Servers and users by ``outcome``; every outcome present, 0 included.

    A series that only exists after the first failure makes ``rate`` and alerts on it
    unreliable, so all label values are always written.
    """
    from prometheus_client import Gauge  # noqa: PLC0415 (optional)

    for kind in ("server", "user"):
        gauge = Gauge(
            f"idle_cull_last_run_{kind}s",
            f"{kind.capitalize()}s the last pass considered, by outcome.",
            ["outcome"],
            registry=registry,
        )
        for outcome, count in result_counts(report, kind).items():
            gauge.labels(outcome=outcome).set(count)


def _activity_gauges(registry: CollectorRegistry, report: Report) -> None:
    """``--activity-source=server``: servers by what their own activity showed.

    ``{result="culled_hub_active"}`` is what the mode saves: servers stopped on their own
    evidence that the hub's record called active. ``{result="fell_back"}`` counts servers
    the hub's record decided for (a failed probe: alert when it is all of them).
    """
    from prometheus_client import Gauge  # noqa: PLC0415 (optional)

    gauge = Gauge(
        "idle_cull_last_run_activity",
        "Servers of the last pass by what their own activity showed (--activity-source="
        "server): probed, idle, protected_<kind>, fell_back, would_probe, culled_hub_active.",
        ["result"],
        registry=registry,
    )
    for result, count in report.activity_counts().items():
        gauge.labels(result=result).set(count)


def _probe_gauges(registry: CollectorRegistry, report: Report) -> None:
    """``--probe-kernels``: probes by what they found, and the servers they kept.

    ``{result="failed"}`` is the one to alert on: a failing probe keeps its server (by
    default), so a broken proxy URL or a missing scope would quietly stop all culling.
    """
    from prometheus_client import Gauge  # noqa: PLC0415 (optional)

    gauge = Gauge(
        "idle_cull_last_run_probes",
        "Kernel probes of the last pass (--probe-kernels): probed, busy, not_busy, failed; "
        "servers kept_busy and kept_failed; would_probe in a dry run.",
        ["result"],
        registry=registry,
    )
    for result, count in report.probe_counts().items():
        gauge.labels(result=result).set(count)


def _notification_gauges(registry: CollectorRegistry, report: Report) -> None:
    """``--notify``: warnings by outcome, every outcome present (0 included).

    ``{outcome="failed"}`` is the one to alert on: a failed warning is not retried, and
    the user it was for is not warned of that cull.
    """
    from prometheus_client import Gauge  # noqa: PLC0415 (optional)

    gauge = Gauge(
        "idle_cull_last_run_warnings",
        "Warnings to users of the last pass (--notify), by outcome: sent, failed, and "
        "would_send in a dry run.",
        ["outcome"],
        registry=registry,
    )
    for outcome, count in report.notification_counts().items():
        gauge.labels(outcome=outcome).set(count)
