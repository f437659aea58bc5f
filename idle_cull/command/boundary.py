"""One pass as a process: settings from options, the lock, signals, the pass, publishing
the report, and the exit status: the one exit boundary.

Every way the process ends goes through ``conclude``, which publishes what it can and
logs the summary line last, with the final status: a finished or interrupted pass, a
hub that cannot be used, a held lock, a configuration error, and click's own usage and
config-file errors (``end_of_usage_error``, called by ``cli``). The status of a finished
pass comes from its report (``Report.exit_status``); every exception is mapped by the
one table here, ``STATUS_OF_ERROR`` (``exit_status_for``); an undelivered report turns a
clean 0 into 5. A report of a pass that ended early is built in one place,
``ending_report``.

``cli`` imports this module only once a pass is really to run (or a usage error is to be
summarised), which keeps ``--help`` fast.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import click

from idle_cull.command.lock import exclusive_lock
from idle_cull.command.logs import configure_logging, hide_in_logs, mask_in_logs
from idle_cull.command.progress import Progress
from idle_cull.command.publish import check_outputs, publish
from idle_cull.command.settings import Settings, read_token
from idle_cull.errors import (
    ClocksDisagree,
    ConfigError,
    HubError,
    IdleCullError,
    LockHeld,
    OutputError,
    PassInterrupted,
)
from idle_cull.evidence.base import Evidence, EvidenceSource
from idle_cull.evidence.hub_record import HubRecord
from idle_cull.evidence.keep_alive import KeepAliveReader, KeepAliveSource, PostponeLimits
from idle_cull.evidence.kernel_api import PROBE_ATTEMPTS, KernelProbe, KernelsWithUserToken
from idle_cull.evidence.kernel_probe import KernelSource
from idle_cull.evidence.probe_tokens import STORED_LIFETIME, ProbeTokens, token_lifetime
from idle_cull.evidence.proxy_routes import Locator, RouteTargets, through_proxy
from idle_cull.evidence.server_activity import (
    ActivityWithUserToken,
    ServerActivityProbe,
    ServerActivitySource,
)
from idle_cull.evidence.token_state import TokenState, check_state_dir
from idle_cull.exits import ExitStatus
from idle_cull.hub.client import HubClient
from idle_cull.hub.limiter import SURVEY_STALLS
from idle_cull.hub.tls import TLSFiles
from idle_cull.output import files, render
from idle_cull.output.notify import MessageTemplate, Notifier
from idle_cull.output.report import Report
from idle_cull.preflight import managed_service_refusal
from idle_cull.runner import PassControl, run_pass, utc_now
from idle_cull.safe_files import read_regular
from idle_cull.safe_text import public_url, without_credentials

__all__ = [
    "STATUS_OF_ERROR",
    "build_settings",
    "conclude",
    "end_of_usage_error",
    "ending_report",
    "execute",
    "exit_status_for",
    "run_command",
]

log = logging.getLogger("idle_cull")

# The one table from an exception to an exit status: the first class that matches wins,
# so a subclass must come before its base (the tree is drawn in ``errors``). Click's
# usage errors, config-file errors and IDLE_CULL_* typos are all ClickExceptions.
STATUS_OF_ERROR: tuple[tuple[type[Exception], ExitStatus], ...] = (
    (LockHeld, ExitStatus.LOCKED),
    (ConfigError, ExitStatus.USAGE),
    (click.ClickException, ExitStatus.USAGE),
    (HubError, ExitStatus.HUB_UNUSABLE),
    (PassInterrupted, ExitStatus.ACTION_FAILED),
    (ClocksDisagree, ExitStatus.CLOCKS_DISAGREE),
    (OutputError, ExitStatus.OUTPUT_FAILED),
)

Delivery = Callable[[Report, ExitStatus], "OutputError | None"]


def exit_status_for(error: Exception) -> ExitStatus:
    """The exit status an error ends the process with; an unplaced one counts as failed."""
    for kind, status in STATUS_OF_ERROR:
        if isinstance(error, kind):
            return status
    return ExitStatus.ACTION_FAILED


def conclude(report: Report, status: ExitStatus, deliver: Delivery | None = None) -> ExitStatus:
    """The one ending: publish what can be published, then log the summary line.

    ``deliver`` sends the report and metrics where the settings say (``None``: nothing
    can or should be published); a delivery that fails turns a clean 0 into 5, and
    leaves any other status as it is. The summary comes last, after any error of a
    delivery, with the final status: the line that ends every run's log.
    """
    undelivered = deliver(report, status) if deliver is not None else None
    if undelivered is not None and status is ExitStatus.OK:
        status = exit_status_for(undelivered)
    log.info("%s", report.summary_line(status))
    return status


def ending_report(
    url: str,
    started: datetime,
    error: Exception | str,
    *,
    dry_run: bool,
    clock: str,
    warn_within: float | None = None,
) -> Report:
    """The report of a pass that ended before acting, so metrics record the failure too;
    the error's text loses any password of the URL it quotes."""
    return Report(
        hub_url=url,
        started_at=started,
        finished_at=utc_now(),
        dry_run=dry_run,
        clock=clock,
        warn_within=warn_within,
        error=without_credentials(str(error), url),
    )


def _fail(error: IdleCullError) -> ExitStatus:
    """Log an error that ends the process before a report exists, and map it."""
    log.log(logging.WARNING if isinstance(error, LockHeld) else logging.ERROR, "%s", error)
    return exit_status_for(error)


def end_of_usage_error(error: click.ClickException) -> ExitStatus:
    """A usage error, a config-file error or an ``IDLE_CULL_*`` typo, which click has
    already shown: the summary line still ends the log, as in every other ending.

    The options were never parsed, so logging is set up as by default (text, info), and
    nothing is published: where to would be an option.
    """
    configure_logging("info", "text")
    report = ending_report("", utc_now(), error.format_message(), dry_run=False, clock="hub")
    return conclude(report, exit_status_for(error))


def run_command(options: dict[str, Any]) -> ExitStatus:
    """Everything the ``idle-cull`` command does once its options are parsed."""
    started = utc_now()
    progress = configure_logging(options["log_level"], options["log_format"])
    # Messages that quote the URL (the hub client's errors) must not show its password.
    mask_in_logs(partial(without_credentials, url=options["url"]))
    if options.get("config") is not None:
        for level, line in options["config"].log_lines():
            log.log(level, "%s", line)
    if options["cull_every"]:
        log.warning(
            "--cull-every is ignored: idle-cull does one pass and exits; "
            "schedule it with a systemd timer, cron or a Kubernetes CronJob"
        )
    try:
        refusal = managed_service_refusal(os.environ)
        if refusal and not options["allow_managed_service"]:
            raise ConfigError(refusal)
        settings = build_settings(
            options,
            os.environ.get("JUPYTERHUB_API_TOKEN", ""),
            os.environ.get("CONFIGPROXY_AUTH_TOKEN", ""),
        )
        hide_in_logs(settings.token)
        if settings.probe_via == "route-target":
            hide_in_logs(settings.proxy_auth_token)
        check_outputs(settings)
        if settings.state_dir is not None:
            check_state_dir(settings.state_dir, settings.url)
    except ConfigError as error:
        return report_usage_error(options, started, error)
    return execute(settings, progress)


def report_usage_error(
    options: dict[str, Any], started: datetime, error: ConfigError
) -> ExitStatus:
    """Exit 2 still ends with a summary line and, when asked, a report, as every pass does.

    There are no valid settings to publish with: the report goes where the options ask,
    and metrics are not written (a file option may be the very thing that is wrong). The
    summary is logged last, after any error writing the report, as in every ending.
    """
    status = _fail(error)
    url = str(options["url"])
    report = ending_report(
        url, started, error, dry_run=bool(options["dry_run"]), clock=str(options["clock"])
    )
    return conclude(report, status, partial(_deliver_as_options_say, options))


def _deliver_as_options_say(
    options: dict[str, Any], report: Report, status: ExitStatus
) -> OutputError | None:
    """The report where the options ask, without settings; a failed write is logged and
    leaves the status (2) as it is."""
    if options["report"] == "json":
        click.echo(render.render_json(report, status), nl=False)
    elif options["report"] == "text":
        click.echo(render.render_text(report, status), nl=False)
    if options["report_file"]:
        try:
            files.write_atomically(options["report_file"], render.render_json(report, status))
        except OutputError as write_error:
            log.error("%s", write_error)
    return None


def build_settings(options: dict[str, Any], env_token: str, env_proxy_token: str = "") -> Settings:
    """The one ``Settings`` of this pass, validated; raises ``ConfigError``.

    Reads the token files and the TLS files; the other options fill their fields as
    ``options.OPTIONS`` declares. The tokens come from the environment
    (``JUPYTERHUB_API_TOKEN``, ``CONFIGPROXY_AUTH_TOKEN``) or a file, never from an option's
    value or a config file.
    """
    token_file: Path | None = options["api_token_file"]
    token = read_token(token_file) if token_file else env_token.strip()
    proxy_token_file: Path | None = options["proxy_auth_token_file"]
    proxy_token = env_proxy_token.strip()
    if proxy_token_file:
        option, what = "--proxy-auth-token-file", "the proxy's auth token"
        proxy_token = read_token(proxy_token_file, option, what)
    tls = None
    if options["ssl_enabled"]:
        if not options["url"].startswith("https://"):
            raise ConfigError("--ssl-enabled needs an https:// --url")
        tls = TLSFiles.from_internal_certs(options["internal_certs_location"])
    return Settings.from_options(options, token=token, tls=tls, proxy_auth_token=proxy_token)


def execute(settings: Settings, progress: Progress | None = None) -> ExitStatus:
    """Run the pass under its lock; the exit status of the pass, or of the error that
    kept it from running (lock held, lock file unusable)."""
    described = " ".join(f"{k}={v}" for k, v in settings.describe().items() if v is not None)
    log.info("starting one pass: %s", described)
    try:
        with exclusive_lock(settings.lock_file) if settings.lock_file else nullcontext():
            return run_and_report(settings, progress or Progress(sys.stderr, enabled=False))
    except LockHeld as error:
        # The summary still closes the log; the report and metrics are left to the pass
        # that holds the lock, which is still running and will write its own.
        status = _fail(error)
        return conclude(unfinished_report(settings, utc_now(), error), status)
    except ConfigError as error:  # an unusable lock file, or a group the hub does not have
        status = _fail(error)
        report = unfinished_report(settings, utc_now(), error)
        return conclude(report, status, partial(publish, settings=settings))  # 2 stays 2


def run_and_report(settings: Settings, progress: Progress) -> ExitStatus:
    """Run the pass and publish its report, also when listing failed or it was cut short.

    A pass that went well but whose report or metrics could not be delivered exits 5;
    a failed pass keeps its own status. The summary line comes after the deliveries, so
    that it ends the log and carries that final status.
    """
    notifier = users_notifier(settings)  # before anything is sent: a bad URL is exit 2
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
    # The probes never get settings.token: each sends a token of the probed server's
    # own user, which the hub mints for it (probe_tokens); ours goes only to --url.
    # Every probe finds its server through the one locator of --probe-via.
    locate = probe_locator(settings)
    keep_alive = (
        KeepAliveReader(
            locate,
            timeout=settings.probe_timeout,
            pool_size=settings.concurrency,
            give_up=control.stopped,
        )
        if settings.postpone_limit
        else None
    )
    sources: list[EvidenceSource] = [HubRecord()]
    closing: list[Callable[[], None]] = []
    tokens = probe_tokens(settings, client)
    probing = settings.activity.server or settings.probe_kernels or keep_alive is not None
    if settings.activity.server or settings.probe_kernels:
        source, close = _probe_source(settings, tokens, control, locate)
        sources.append(source)
        closing.append(close)
    if keep_alive is not None:
        limits = PostponeLimits(
            settings.postpone_limit, settings.postpone_max_age, ZoneInfo(settings.postpone_timezone)
        )
        sources.append(KeepAliveSource(keep_alive, tokens, limits, settings.limits.max_age))
        closing.append(keep_alive.close)
    started = utc_now()
    try:
        if probing:
            prepare_locator(locate, settings)
        with cancel_on_signals(control):
            report = run_pass(
                settings,
                client,
                control=control,
                progress=progress.update,
                evidence=Evidence(sources),
                notifier=notifier,
            )
        status = report.exit_status()
    except (PassInterrupted, HubError, ClocksDisagree) as error:
        report, status = unfinished_report(settings, started, error), exit_status_for(error)
        if isinstance(error, HubError) and control.stopped():
            # The deadline or a signal cut the retries short: the pass was ended early,
            # which is status 1 wherever it happens, not a hub that cannot be used.
            report.interrupted, status = control.reason, ExitStatus.ACTION_FAILED
        log.error("%s", with_nothing_culled(str(error)))
    finally:
        tokens.save()  # with --state-dir, for the next pass; never raises
        client.close()
        for close in closing:
            close()
        progress.close()
    report.mask(settings.token)
    report.mask(settings.proxy_auth_token)
    return conclude(report, status, partial(publish, settings=settings))


def probe_locator(settings: Settings) -> Locator:
    """Where every probe of a user's server goes (``--probe-via``): the one choice."""
    if settings.probe_via == "route-target":
        return RouteTargets(
            settings.proxy_api_url, settings.proxy_auth_token, timeout=settings.request_timeout
        )
    return through_proxy(settings.proxy_url or "")


def prepare_locator(locate: Locator, settings: Settings) -> None:
    """Say where the probes go; at the route targets, read the proxy's routing table
    now, once, before anything is listed or acted on (``RoutesUnavailable``: exit 3). A
    dry run sends nothing to any server, so it reads no table either."""
    if not isinstance(locate, RouteTargets):
        log.info("probes go through the proxy at %s", public_url(locate.proxy_url or ""))
        return
    api = public_url(locate.api_url)
    if settings.dry_run:
        log.info(
            "DRY RUN: probes would go to the servers' route targets, read from the proxy's "
            "API at %s; the routing table was not read",
            api,
        )
        return
    count = locate.load()
    log.info(
        "probes go to the servers' route targets (%d routes read from the proxy's API at %s), "
        "not through the proxy",
        count,
        api,
    )


def probe_tokens(settings: Settings, client: HubClient) -> ProbeTokens:
    """One token per probed user, for every probe and the keep-alive file: for this pass
    only, or with ``--state-dir`` minted for an hour and kept for the passes after it."""
    lifetime = token_lifetime(settings.probe_timeout, PROBE_ATTEMPTS)
    state = None
    if settings.state_dir is not None:
        lifetime = max(lifetime, STORED_LIFETIME)
        state = TokenState(settings.state_dir, settings.url)
    return ProbeTokens(
        client, lifetime, probe_seconds=settings.probe_timeout * PROBE_ATTEMPTS, state=state
    )


def _probe_source(
    settings: Settings, tokens: ProbeTokens, control: PassControl, locate: Locator
) -> tuple[EvidenceSource, Callable[[], None]]:
    """The source that probes servers, and how to close it.

    ``--activity-source=server`` asks every running server about its kernels, terminals
    and (with ``--cpu-threshold``) CPU, which includes what ``--probe-kernels`` asks the
    servers about to be stopped (a busy kernel, bounded by ``--busy-timeout``): one probe
    per server, never both.
    """
    if settings.activity.server:
        reader = ServerActivityProbe(
            locate,
            settings=settings.activity.reading(),
            timeout=settings.probe_timeout,
            pool_size=settings.concurrency + SURVEY_STALLS.cap,  # stalled probes hold sockets
            give_up=control.stopped,
        )
        activity = ServerActivitySource(
            ActivityWithUserToken(reader, tokens),
            settings=settings.activity.reading(),
            limit_of=lambda target: target.idle_limit,
            started_of=lambda target: target.started,
            busy_timeout=settings.probe_limits.busy_timeout,
        )
        return activity, reader.close
    kernels = KernelProbe(
        locate,
        timeout=settings.probe_timeout,
        pool_size=settings.concurrency,
        give_up=control.stopped,
    )
    prober = KernelsWithUserToken(kernels, tokens)
    source = KernelSource(prober, settings.probe_limits, settings.limits.max_age)
    return source, kernels.close


MAX_TEMPLATE_BYTES = 64 * 1024


def users_notifier(settings: Settings) -> Notifier | None:
    """The notifier of ``--notify``, its secrets masked in every log line from now on;
    ``ConfigError`` (exit 2) for a URL, a template or an extra that cannot work."""
    if not settings.notify_urls:
        return None
    template = MessageTemplate()
    if settings.notify_template is not None:
        template = read_template(settings.notify_template)
    notifier = Notifier(settings.notify_urls, template, zone=ZoneInfo(settings.postpone_timezone))
    mask_in_logs(notifier.mask)
    return notifier


def read_template(path: Path) -> MessageTemplate:
    """``--notify-template``: the title on the first line, the body after it."""
    try:
        content, _ = read_regular(path, MAX_TEMPLATE_BYTES, follow=True)
        text = content.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--notify-template {path}: cannot read it ({error})") from None
    title, _, body = text.partition("\n")
    if not title.strip() or not body.strip():
        raise ConfigError(
            f"--notify-template {path}: write the title on the first line and the body after it"
        )
    return MessageTemplate(title=title.strip(), body=body.lstrip("\n"))


def with_nothing_culled(message: str) -> str:
    """The error, saying once (and only once) that nothing was culled."""
    return message if "nothing was culled" in message else f"{message}; nothing was culled"


def unfinished_report(settings: Settings, started: datetime, error: Exception) -> Report:
    """``ending_report`` of these settings."""
    return ending_report(
        settings.url,
        started,
        error,
        dry_run=settings.dry_run,
        clock=settings.clock,
        warn_within=settings.warn_within,
    )


@contextmanager
def cancel_on_signals(control: PassControl) -> Iterator[None]:
    """SIGTERM/SIGINT (systemd, Kubernetes, Ctrl-C) end the pass gracefully; a second one kills."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    signals_seen: list[signal.Signals] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        received = signal.Signals(signum)
        if signals_seen:  # the second signal
            die_of(received)
        signals_seen.append(received)
        control.cancel(f"{received.name} received")

    for sig in previous:
        signal.signal(sig, handle)  # stays installed: PID 1 ignores a default SIGTERM
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def die_of(received: signal.Signals, *, exit_now: Callable[[int], None] = os._exit) -> None:
    """End the process at once, as the second SIGTERM/SIGINT promises.

    The default action (killed by the signal, which a supervisor can see) is tried
    first; as PID 1 (a container without an init) the kernel ignores a signal with the
    default action, so then the process exits with 128 + the signal's number, the
    status a shell reports for a process killed by it.
    """
    log.error(
        "%s received again: stopping at once, requests in flight are abandoned", received.name
    )
    logging.shutdown()
    signal.signal(received, signal.SIG_DFL)
    os.kill(os.getpid(), received)
    exit_now(128 + received)
