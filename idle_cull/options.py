"""The command-line options: upstream's flags with their spellings, and idle-cull's own.

Parsing turns text into typed values (durations, name=duration pairs, booleans in the
three spellings operators use); ``cli.build_settings`` turns the values into Settings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from idle_cull.durations import parse_duration
from idle_cull.errors import ConfigError

__all__ = [
    "EXIT_STATUS_HELP",
    "UpstreamCompatibleCommand",
    "cull_options",
    "normalize_argument",
]

F = TypeVar("F", bound=Callable[..., Any])

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


def cull_options(command: F) -> F:
    """Every option of the ``idle-cull`` command, in the order ``--help`` lists them."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--url",
        envvar="JUPYTERHUB_API_URL",
        show_envvar=True,
        default="http://127.0.0.1:8081/hub/api",
        show_default=True,
        help="The JupyterHub API URL (ends in /hub/api).",
    ),
    click.option(
        "--timeout",
        type=Duration(),
        default="600",
        show_default=True,
        help="Stop servers idle for at least this long (seconds, or 90m, 2h, 1d).",
    ),
    click.option(
        "--max-age",
        type=Duration(),
        default="0",
        show_default=True,
        help="Also stop servers older than this even if active; 0 turns it off.",
    ),
    boolean_flag(
        "cull-users",
        False,
        "Delete users whose servers are all gone and who are idle or too old "
        "(for temporary users, as with tmpnb).",
    ),
    boolean_flag(
        "cull-admin-users", True, "With --cull-users, whether admin users may be deleted too."
    ),
    boolean_flag(
        "remove-named-servers",
        False,
        "Remove named servers after stopping them (BinderHub with named servers).",
    ),
    boolean_flag("cull-default-servers", True, "Whether default servers are culled."),
    boolean_flag("cull-named-servers", True, "Whether named servers are culled."),
    click.option(
        "--concurrency",
        type=click.IntRange(min=1),
        default=10,
        show_default=True,
        help="Most requests in flight to the hub at once.",
    ),
    click.option(
        "--api-page-size",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Users per page when listing; 0 uses the hub's default page size.",
    ),
    boolean_flag(
        "ssl-enabled",
        False,
        "The hub API uses JupyterHub's internal SSL (client certificate and CA).",
    ),
    click.option(
        "--internal-certs-location",
        type=click.Path(path_type=Path),
        default="internal-ssl",
        show_default=True,
        help="Directory of JupyterHub's internal-ssl certificates (with --ssl-enabled).",
    ),
    click.option(
        "--api-token-file",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="JUPYTERHUB_API_TOKEN_FILE",
        show_envvar=True,
        help="Read the API token from this file (systemd credential, Kubernetes "
        "secret) instead of the JUPYTERHUB_API_TOKEN environment variable.",
    ),
    click.option(
        "--request-timeout",
        type=Duration(),
        envvar="JUPYTERHUB_REQUEST_TIMEOUT",
        show_envvar=True,
        default="60",
        show_default=True,
        help="Longest wait for one answer from the hub.",
    ),
    click.option(
        "--cull-every",
        type=Duration(),
        default="0",
        metavar="SECONDS",
        help="Accepted for upstream compatibility and ignored: this tool does one pass; "
        "the systemd timer, cron or CronJob decides how often.",
    ),
    click.option(
        "--exclude-user",
        multiple=True,
        metavar="PATTERN",
        help="Never stop this user's servers nor delete the user (shell glob; repeatable).",
    ),
    click.option(
        "--exclude-group",
        multiple=True,
        metavar="GROUP",
        help="Never touch members of this group (repeatable; needs read:users:groups).",
    ),
    click.option(
        "--group-timeout",
        type=NamedDuration(),
        multiple=True,
        help="Idle limit for members of GROUP, e.g. instructors=6h (repeatable); a user in "
        "several groups gets the longest.",
    ),
    click.option(
        "--profile-timeout",
        type=NamedDuration(),
        multiple=True,
        help="Idle limit for servers started with this profile (user_options['profile']), "
        "e.g. gpu=2h (repeatable); beats server and group limits.",
    ),
    click.option(
        "--server-timeout",
        type=NamedDuration(),
        multiple=True,
        help="Idle limit for named servers whose name matches the glob, e.g. 'gpu-*=1h' "
        "(repeatable; first match wins).",
    ),
    click.option(
        "--user-timeout",
        type=Duration(),
        default=None,
        help="With --cull-users: delete users idle this long (default: --timeout).",
    ),
    click.option(
        "--user-max-age",
        type=Duration(),
        default=None,
        help="With --cull-users: delete users older than this (default: --max-age).",
    ),
    boolean_flag(
        "dry-run",
        False,
        "List, decide and report, but send no request that changes anything.",
    ),
    click.option(
        "--max-culls",
        type=click.IntRange(min=0),
        default=None,
        help="Act on nothing (exit 4) if the pass plans more stops plus deletions than this.",
    ),
    click.option(
        "--max-cull-fraction",
        type=click.FloatRange(0, 1),
        default=None,
        help="Act on nothing (exit 4) if the pass plans to stop more than this share (0-1) "
        "of the running servers it saw. Off by default: see the README.",
    ),
    click.option(
        "--clock",
        type=click.Choice(["hub", "local"]),
        default="hub",
        show_default=True,
        help="Measure idleness on the hub's clock (its Date header; it stamps last_activity) "
        "or on this machine's.",
    ),
    boolean_flag(
        "recheck",
        True,
        "Fetch each user afresh just before acting, and skip it if it became active.",
    ),
    click.option(
        "--recheck-after",
        type=Duration(),
        default="30",
        show_default=True,
        help="Re-check only once the listing is this old (0: before every action); the "
        "hub itself learns of activity minutes late, so a younger listing is as fresh.",
    ),
    click.option(
        "--lock-file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Hold a flock on this file during the pass; if another pass holds it, exit 75.",
    ),
    click.option(
        "--deadline",
        type=Duration(),
        default=None,
        help="Start no new action after this long (seconds or 10m); unfinished actions are "
        "reported as not attempted and the exit status is 1.",
    ),
    click.option(
        "--warn-within",
        type=Duration(),
        default=None,
        help="Also report the servers that will cross their idle limit within this long, "
        "so their users can be warned (e.g. 15m).",
    ),
    click.option(
        "--report",
        type=click.Choice(["text", "json", "none"]),
        default="none",
        show_default=True,
        help="Write a report of the pass to stdout: a summary for people, or the JSON "
        "document described in the README.",
    ),
    click.option(
        "--report-file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Also write the JSON report to this file, atomically.",
    ),
    boolean_flag(
        "report-kept",
        False,
        "List kept servers and users in the report too, each with the reason it was kept; "
        "otherwise they are only counted (they are nearly everyone on a big hub, and each "
        "listed one stays in memory until the report is written).",
    ),
    click.option(
        "--metrics-file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Write Prometheus metrics for node_exporter's textfile collector (atomically; "
        "needs idle-cull[metrics]).",
    ),
    click.option(
        "--pushgateway",
        default=None,
        metavar="URL",
        help="Push the same metrics to a Prometheus Pushgateway (needs idle-cull[metrics]).",
    ),
    click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Logs on stderr as text, or as JSON lines for log shippers.",
    ),
    click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
        default="info",
        show_default=True,
        help="Least severe log level written to stderr; debug adds a line for every "
        "kept server and user, with the reason it was kept.",
    ),
]
