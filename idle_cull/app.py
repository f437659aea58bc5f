"""One pass as a process: settings from options, the lock, signals, the pass, publishing
the report, and the mapping of every outcome and error to the exit status.

``cli`` imports this module only once a pass is really to run, which keeps ``--help``
and usage errors fast.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from idle_cull.config import Settings, TLSFiles, read_token
from idle_cull.errors import ConfigError, HubError
from idle_cull.hub import HubClient
from idle_cull.lock import LockHeld, exclusive_lock
from idle_cull.logs import configure_logging, hide_in_logs
from idle_cull.policy import Caps, CullLimits
from idle_cull.progress import Progress
from idle_cull.publish import check_outputs, publish
from idle_cull.report import ExitStatus, Report
from idle_cull.runner import PassControl, PassInterrupted, run_pass, utc_now

__all__ = ["build_settings", "execute", "run_command"]

log = logging.getLogger("idle_cull")


def run_command(options: dict[str, Any]) -> ExitStatus:
    """Everything the ``idle-cull`` command does once its options are parsed."""
    progress = configure_logging(options["log_level"], options["log_format"])
    if options["cull_every"]:
        log.warning(
            "--cull-every is ignored: idle-cull does one pass and exits; "
            "schedule it with a systemd timer, cron or a Kubernetes CronJob"
        )
    try:
        settings = build_settings(options, os.environ.get("JUPYTERHUB_API_TOKEN", ""))
        hide_in_logs(settings.token)
        check_outputs(settings)
    except ConfigError as error:
        log.error("%s", error)
        return ExitStatus.USAGE
    return execute(settings, progress)


def build_settings(options: dict[str, Any], env_token: str) -> Settings:
    """The one ``Settings`` of this pass, validated; raises ``ConfigError``."""
    token_file: Path | None = options["api_token_file"]
    token = read_token(token_file) if token_file else env_token.strip()
    tls = None
    if options["ssl_enabled"]:
        if not options["url"].startswith("https://"):
            raise ConfigError("--ssl-enabled needs an https:// --url")
        tls = TLSFiles.from_internal_certs(options["internal_certs_location"])
    limits = CullLimits(
        timeout=options["timeout"],
        max_age=options["max_age"],
        cull_users=options["cull_users"],
        cull_admin_users=options["cull_admin_users"],
        cull_default_servers=options["cull_default_servers"],
        cull_named_servers=options["cull_named_servers"],
        remove_named_servers=options["remove_named_servers"],
        exclude_users=tuple(options["exclude_user"]),
        exclude_groups=tuple(options["exclude_group"]),
        group_timeouts=tuple(options["group_timeout"]),
        profile_timeouts=tuple(options["profile_timeout"]),
        server_timeouts=tuple(options["server_timeout"]),
        user_timeout=options["user_timeout"],
        user_max_age=options["user_max_age"],
    )
    caps = Caps(max_culls=options["max_culls"], max_cull_fraction=options["max_cull_fraction"])
    return Settings(
        url=options["url"].rstrip("/"),
        token=token,
        limits=limits,
        concurrency=options["concurrency"],
        api_page_size=options["api_page_size"],
        request_timeout=options["request_timeout"],
        tls=tls,
        dry_run=options["dry_run"],
        caps=caps,
        clock=options["clock"],
        recheck=options["recheck"],
        recheck_after=options["recheck_after"],
        deadline=options["deadline"],
        lock_file=options["lock_file"],
        warn_within=options["warn_within"],
        report=options["report"],
        report_file=options["report_file"],
        report_kept=options["report_kept"],
        metrics_file=options["metrics_file"],
        pushgateway=options["pushgateway"],
    )


def execute(settings: Settings, progress: Progress | None = None) -> ExitStatus:
    """Run the pass and map its outcome to an exit status (the only place that does)."""
    described = " ".join(f"{k}={v}" for k, v in settings.describe().items() if v is not None)
    log.info("starting one pass: %s", described)
    try:
        with exclusive_lock(settings.lock_file) if settings.lock_file else nullcontext():
            return run_and_report(settings, progress or Progress(sys.stderr, enabled=False))
    except LockHeld as error:
        log.warning("%s", error)
        return ExitStatus.LOCKED
    except ConfigError as error:
        log.error("%s", error)
        return ExitStatus.USAGE


def run_and_report(settings: Settings, progress: Progress) -> ExitStatus:
    control = PassControl(settings.deadline)
    client = HubClient(
        settings.url,
        settings.token,
        request_timeout=settings.request_timeout,
        pool_size=settings.concurrency,
        tls=settings.tls,
        retry=settings.retry,
        give_up=control.stopped,
    )
    started = utc_now()
    try:
        with cancel_on_signals(control):
            report = run_pass(settings, client, control=control, progress=progress.update)
        status = report.exit_status()
    except PassInterrupted as error:
        log.error("%s", error)
        report, status = unfinished_report(settings, started, error), ExitStatus.ACTION_FAILED
    except HubError as error:
        log.error("%s", error)
        log.error("nothing was culled")
        report, status = unfinished_report(settings, started, error), ExitStatus.HUB_UNUSABLE
    finally:
        client.close()
        progress.close()
    if report.error is None:
        log.info("%s", report.summary_line())
    return publish(report, status, settings)


def unfinished_report(settings: Settings, started: datetime, error: Exception) -> Report:
    """A report for a pass that ended before acting, so metrics record the failure too."""
    return Report(
        hub_url=settings.url,
        started_at=started,
        finished_at=utc_now(),
        dry_run=settings.dry_run,
        clock=settings.clock,
        warn_within=settings.warn_within,
        error=str(error),
    )


@contextmanager
def cancel_on_signals(control: PassControl) -> Iterator[None]:
    """SIGTERM/SIGINT (systemd, Kubernetes, Ctrl-C) end the pass gracefully; a second one kills."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(signum: int, _frame: FrameType | None) -> None:
        received = signal.Signals(signum)
        signal.signal(received, previous[received])
        control.cancel(f"{received.name} received")

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
