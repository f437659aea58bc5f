"""The ``idle-cull`` command: options and environment in, one pass, exit status out.

This module owns the command line, logging to stderr, and the mapping of outcomes and
errors to exit statuses. It makes no HTTP requests and no culling decisions itself.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from idle_cull import __version__
from idle_cull.config import Settings, TLSFiles, read_token
from idle_cull.durations import parse_duration
from idle_cull.errors import ConfigError, HubError
from idle_cull.hub import HubClient
from idle_cull.lock import LockHeld, exclusive_lock
from idle_cull.logs import configure_logging
from idle_cull.policy import Caps, CullLimits
from idle_cull.progress import Progress
from idle_cull.publish import check_outputs, publish
from idle_cull.report import ExitStatus, Report
from idle_cull.runner import PassControl, PassInterrupted, run_pass, utc_now

__all__ = ["cli", "main"]

log = logging.getLogger("idle_cull")
F = TypeVar("F", bound=Callable[..., Any])

# Upstream's boolean flags; each accepts --flag, --flag=true|false and --no-flag.
BOOLEAN_FLAGS = (
    "dry-run",
    "recheck",
    "cull-users",
    "cull-admin-users",
    "remove-named-servers",
    "cull-default-servers",
    "cull-named-servers",
    "ssl-enabled",
)

EXIT_STATUS_HELP = """\b
Exit status:
  0   pass finished; every action succeeded, is pending, or nothing was to do
  1   pass finished, but some stop or delete failed after retries
  2   usage or configuration error (nothing was sent to the hub)
  3   users could not be listed (unreachable, 401/403, 5xx, garbage): nothing culled
  4   the plan exceeded --max-culls or --max-cull-fraction: nothing culled
  5   the pass went well, but the report or metrics could not be written or pushed
  75  another pass holds --lock-file: this one did nothing (EX_TEMPFAIL)
The deadline or SIGTERM/SIGINT ends a pass early with status 1.
"""


class Duration(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """Seconds, or human units: 600, 90m, 2h, 30d."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(str(value), what=param.opts[0] if param else "duration")
        except ConfigError as error:
            self.fail(str(error), param, ctx)


class NamedDuration(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """``NAME=DURATION`` pairs such as ``gpu=2h`` for the per-group/profile/server limits."""

    name = "name=duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, float]:
        if isinstance(value, tuple):
            return value
        name, sep, duration = str(value).rpartition("=")
        option = param.opts[0] if param else "option"
        if not sep or not name:
            self.fail(f"{value!r} is not NAME=DURATION (e.g. gpu=2h)", param, ctx)
        try:
            return name, parse_duration(duration, what=f"{option} {name}")
        except ConfigError as error:
            self.fail(str(error), param, ctx)


class UpstreamCompatibleCommand(click.Command):
    """Accept the spellings of upstream command lines before click parses them.

    Upstream (tornado options) also took ``--cull_users`` and operators write
    ``--no-cull-users``; both become the canonical ``--cull-users[=false]`` here.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, [normalize_argument(arg) for arg in args])


def normalize_argument(arg: str) -> str:
    if not arg.startswith("--") or arg == "--":
        return arg
    name, sep, value = arg[2:].partition("=")
    name = name.replace("_", "-")
    if name.startswith("no-") and name[3:] in BOOLEAN_FLAGS and not sep:
        return f"--{name[3:]}=false"
    return f"--{name}{sep}{value}"


def boolean_flag(name: str, default: bool, help_text: str) -> Callable[[F], F]:
    return click.option(
        f"--{name}",
        type=click.BOOL,
        is_flag=False,
        flag_value=True,
        default=default,
        show_default=True,
        metavar="[=true|false]",
        help=f"{help_text} Also --no-{name}.",
    )


@click.command(
    cls=UpstreamCompatibleCommand,
    epilog=EXIT_STATUS_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--url",
    envvar="JUPYTERHUB_API_URL",
    show_envvar=True,
    default="http://127.0.0.1:8081/hub/api",
    show_default=True,
    help="The JupyterHub API URL (ends in /hub/api).",
)
@click.option(
    "--timeout",
    type=Duration(),
    default="600",
    show_default=True,
    help="Stop servers idle for at least this long (seconds, or 90m, 2h, 1d).",
)
@click.option(
    "--max-age",
    type=Duration(),
    default="0",
    show_default=True,
    help="Also stop servers older than this even if active; 0 turns it off.",
)
@boolean_flag(
    "cull-users",
    False,
    "Delete users whose servers are all gone and who are idle or too old "
    "(for temporary users, as with tmpnb).",
)
@boolean_flag(
    "cull-admin-users", True, "With --cull-users, whether admin users may be deleted too."
)
@boolean_flag(
    "remove-named-servers",
    False,
    "Remove named servers after stopping them (BinderHub with named servers).",
)
@boolean_flag("cull-default-servers", True, "Whether default servers are culled.")
@boolean_flag("cull-named-servers", True, "Whether named servers are culled.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Most requests in flight to the hub at once.",
)
@click.option(
    "--api-page-size",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Users per page when listing; 0 uses the hub's default page size.",
)
@boolean_flag(
    "ssl-enabled", False, "The hub API uses JupyterHub's internal SSL (client certificate and CA)."
)
@click.option(
    "--internal-certs-location",
    type=click.Path(path_type=Path),
    default="internal-ssl",
    show_default=True,
    help="Directory of JupyterHub's internal-ssl certificates (with --ssl-enabled).",
)
@click.option(
    "--api-token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="JUPYTERHUB_API_TOKEN_FILE",
    show_envvar=True,
    help="Read the API token from this file (systemd credential, Kubernetes "
    "secret) instead of the JUPYTERHUB_API_TOKEN environment variable.",
)
@click.option(
    "--request-timeout",
    type=Duration(),
    envvar="JUPYTERHUB_REQUEST_TIMEOUT",
    show_envvar=True,
    default="60",
    show_default=True,
    help="Longest wait for one answer from the hub.",
)
@click.option(
    "--cull-every",
    type=Duration(),
    default="0",
    metavar="SECONDS",
    help="Accepted for upstream compatibility and ignored: this tool does one pass; "
    "the systemd timer, cron or CronJob decides how often.",
)
@click.option(
    "--exclude-user",
    multiple=True,
    metavar="PATTERN",
    help="Never stop this user's servers nor delete the user (shell glob; repeatable).",
)
@click.option(
    "--exclude-group",
    multiple=True,
    metavar="GROUP",
    help="Never touch members of this group (repeatable; needs read:users:groups).",
)
@click.option(
    "--group-timeout",
    type=NamedDuration(),
    multiple=True,
    help="Idle limit for members of GROUP, e.g. instructors=6h (repeatable); a user in "
    "several groups gets the longest.",
)
@click.option(
    "--profile-timeout",
    type=NamedDuration(),
    multiple=True,
    help="Idle limit for servers started with this profile (user_options['profile']), "
    "e.g. gpu=2h (repeatable); beats server and group limits.",
)
@click.option(
    "--server-timeout",
    type=NamedDuration(),
    multiple=True,
    help="Idle limit for named servers whose name matches the glob, e.g. 'gpu-*=1h' "
    "(repeatable; first match wins).",
)
@click.option(
    "--user-timeout",
    type=Duration(),
    default=None,
    help="With --cull-users: delete users idle this long (default: --timeout).",
)
@click.option(
    "--user-max-age",
    type=Duration(),
    default=None,
    help="With --cull-users: delete users older than this (default: --max-age).",
)
@boolean_flag(
    "dry-run",
    False,
    "List, decide and report, but send no request that changes anything.",
)
@click.option(
    "--max-culls",
    type=click.IntRange(min=0),
    default=None,
    help="Act on nothing (exit 4) if the pass plans more stops plus deletions than this.",
)
@click.option(
    "--max-cull-fraction",
    type=click.FloatRange(0, 1),
    default=None,
    help="Act on nothing (exit 4) if the pass plans to stop more than this share (0-1) "
    "of the running servers it saw. Off by default: see the README.",
)
@click.option(
    "--clock",
    type=click.Choice(["hub", "local"]),
    default="hub",
    show_default=True,
    help="Measure idleness on the hub's clock (its Date header; it stamps last_activity) "
    "or on this machine's.",
)
@boolean_flag(
    "recheck",
    True,
    "Fetch each user afresh just before acting, and skip it if it became active.",
)
@click.option(
    "--lock-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Hold a flock on this file during the pass; if another pass holds it, exit 75.",
)
@click.option(
    "--deadline",
    type=Duration(),
    default=None,
    help="Start no new action after this long (seconds or 10m); unfinished actions are "
    "reported as not attempted and the exit status is 1.",
)
@click.option(
    "--warn-within",
    type=Duration(),
    default=None,
    help="Also report the servers that will cross their idle limit within this long, "
    "so their users can be warned (e.g. 15m).",
)
@click.option(
    "--report",
    type=click.Choice(["text", "json", "none"]),
    default="none",
    show_default=True,
    help="Write a report of the pass to stdout: a summary for people, or the JSON "
    "document described in the README.",
)
@click.option(
    "--report-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the JSON report to this file, atomically.",
)
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write Prometheus metrics for node_exporter's textfile collector (atomically; "
    "needs idle-cull[metrics]).",
)
@click.option(
    "--pushgateway",
    default=None,
    metavar="URL",
    help="Push the same metrics to a Prometheus Pushgateway (needs idle-cull[metrics]).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Logs on stderr as text, or as JSON lines for log shippers.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
    help="Least severe log level written to stderr.",
)
@click.version_option(__version__, prog_name="idle-cull")
@click.pass_context
def cli(ctx: click.Context, /, **options: Any) -> None:
    """Do one pass over a JupyterHub: stop idle servers (and, if asked, delete idle
    users), then exit with a status a scheduler can act on.

    The API token comes from JUPYTERHUB_API_TOKEN or --api-token-file, never from the
    command line. Logs go to stderr. Run it from a systemd timer, cron or a Kubernetes
    CronJob; see the README for the scopes the token needs.
    """
    progress = configure_logging(options["log_level"], options["log_format"])
    if options["cull_every"]:
        log.warning(
            "--cull-every is ignored: idle-cull does one pass and exits; "
            "schedule it with a systemd timer, cron or a Kubernetes CronJob"
        )
    try:
        settings = build_settings(options, os.environ.get("JUPYTERHUB_API_TOKEN", ""))
        check_outputs(settings)
    except ConfigError as error:
        log.error("%s", error)
        ctx.exit(ExitStatus.USAGE)
    ctx.exit(execute(settings, progress))


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
        deadline=options["deadline"],
        lock_file=options["lock_file"],
        warn_within=options["warn_within"],
        report=options["report"],
        report_file=options["report_file"],
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


def main() -> None:
    cli(prog_name="idle-cull")
