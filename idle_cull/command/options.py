"""Every command-line option, declared once in ``OPTIONS``.

An ``Option`` says everything about one option: its long name, how its text is parsed,
its default and help, whether it is a boolean or repeatable, its environment variable,
and which ``Settings`` field it fills. From that one table come the click options, the
boolean spellings ``normalize_argument`` accepts, ``Settings.from_options``, the
start-of-pass settings line (``Settings.describe``) and the docs' options page. Anything else
that needs every option (an environment variable per option, config-file keys named as
the long options, a generated config file) should iterate the same table.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from idle_cull.command.values import Count, Duration, HubURL, NamedDuration, Share
from idle_cull.hub.pages import MAX_LISTING_OFFSET
from idle_cull.safe_text import public_url

__all__ = [
    "BOOLEAN_OPTIONS",
    "ENV_PREFIX",
    "MAX_CONCURRENCY",
    "NOT_OPTION_VARIABLES",
    "OPTIONS",
    "Option",
    "UpstreamCompatibleCommand",
    "cull_options",
    "nearest",
    "normalize_argument",
    "unknown_variables",
]

F = TypeVar("F", bound=Callable[..., Any])

ENV_PREFIX = "IDLE_CULL"  # every option can also be set as IDLE_CULL_<NAME>

# The IDLE_CULL_* variables that are not an option's, and who sets them: the one list of
# them. Every other IDLE_CULL_* variable is refused (``unknown_variables``), so that a typo
# (TIMOUT for TIMEOUT) cannot leave its setting at the default unnoticed. The repository's
# own harness names are here because a developer's shell may hold them while running
# idle-cull by hand (``python -m tests.support.realhub`` prints export lines); the names
# the harness sets only for the hub it starts never reach idle-cull and are not listed.
NOT_OPTION_VARIABLES: Mapping[str, str] = {
    "IDLE_CULL_ARGS": "extra flags the systemd unit adds to its command line",
    "IDLE_CULL_ADMIN_TOKEN": "exported by python -m tests.support.realhub",
    "IDLE_CULL_SERVERS_ONLY_TOKEN": "exported by python -m tests.support.realhub",
    "IDLE_CULL_HUB_DIR": "exported by python -m tests.support.realhub",
    "IDLE_CULL_CHP": "the test harness's configurable-http-proxy (tests/support/realhub.py)",
    "IDLE_CULL_FAULT_TABLE": "where tests/integration/test_faults.py appends its tallies",
    "IDLE_CULL_BENCH_UPSTREAM": "the upstream release scripts/bench compares with",
}

# The most requests in flight (--concurrency); each is a thread and a pooled connection to
# the hub (and one to the proxy with --probe-kernels), and urllib3 fills its pool's slots
# up front, so an unbounded value once took 4.7 GB and ignored SIGTERM. 100 is beyond any
# use: the hub serves every request on one event loop and is the wall at about 25-30 stops
# a second on 2 cores, and it answers even a slow stop within its slow_stop_timeout (10s),
# so 100 in flight keep at least 10 stops a second going; the pass's limiter (limiter.py)
# usually stays far below. It also keeps the 2 x 100 sockets far under the common limit
# of 1024 open files, with the survey's 100 stalled probes (hub.limiter.StallRelease) too.
MAX_CONCURRENCY = 100
# A page or a cap larger than the longest listing a pass reads means nothing (and a
# 300-digit page size would be sent to the hub as is).
MAX_USERS = MAX_LISTING_OFFSET


def _as_is(value: Any) -> object:
    return value


def _schemes_only(urls: tuple[str, ...]) -> list[str]:
    """Notification URLs for the settings line: the scheme only (the rest may be secret)."""
    return [url.partition("://")[0] + "://..." for url in urls]


def _joined(values: tuple[str, ...]) -> str | None:
    return ",".join(values) or None


def _public_or_none(url: str | None) -> str | None:
    return None if url is None else public_url(url)


def _pairs(pairs: tuple[tuple[str, float], ...]) -> str | None:
    return ",".join(f"{name}={seconds:g}" for name, seconds in pairs) or None


@dataclass(frozen=True)
class Option:
    """One option of the ``idle-cull`` command; ``name`` is the long name without ``--``."""

    name: str
    help: str
    type: click.ParamType | None = None  # type: ignore[type-arg,unused-ignore]  # None: text
    default: Any = None
    boolean: bool = False  # takes --x, --x=true|false, --no-x (and upstream's --x_name)
    multiple: bool = False  # repeatable; the setting receives a tuple
    envvar: str | None = None
    metavar: str | None = None
    show_default: bool = True  # in --help, when there is a default
    # The ``Settings`` field it fills, as a path ("dry_run", "limits.timeout",
    # "caps.max_culls"); None for the options ``app`` reads itself (token file, TLS, logs).
    setting: str | None = None
    shown: Callable[[Any], object] = _as_is  # the value as the settings line shows it

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def dest(self) -> str:
        """The keyword click passes the value as."""
        return self.name.replace("-", "_")

    @property
    def envvars(self) -> tuple[str, ...]:
        """Its environment variables, first found wins: upstream's or JupyterHub's name
        (if any), then ``IDLE_CULL_<NAME>``, which every option has (Kubernetes
        ConfigMaps, systemd EnvironmentFiles)."""
        own = f"{ENV_PREFIX}_{self.dest.upper()}"
        return (self.envvar, own) if self.envvar else (own,)

    def click_option(self) -> Callable[[F], F]:
        """The click declaration; booleans take a value so ``--x=false`` works."""
        if self.boolean:
            return click.option(
                self.flag,
                type=click.BOOL,
                is_flag=False,
                flag_value=True,
                default=self.default,
                show_default=True,
                metavar="[=true|false]",
                envvar=list(self.envvars),
                show_envvar=True,
                help=f"{self.help} Also --no-{self.name}.",
            )
        extra: dict[str, Any] = {"envvar": list(self.envvars), "show_envvar": True}
        if self.type is not None:
            extra["type"] = self.type
        if self.metavar is not None:
            extra["metavar"] = self.metavar
        if self.show_default and self.default is not None:
            extra["show_default"] = True
        return click.option(
            self.flag, default=self.default, multiple=self.multiple, help=self.help, **extra
        )


class UpstreamCompatibleCommand(click.Command):
    """Accept the spellings of upstream command lines before click parses them.

    Upstream (tornado options) also took ``--cull_users`` and operators write
    ``--no-cull-users``; both become the canonical ``--cull-users[=false]`` here.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, [normalize_argument(arg) for arg in args])


def normalize_argument(arg: str) -> str:
    """``--x_name`` becomes ``--x-name``; ``--no-x`` becomes ``--x=false`` for booleans."""
    if not arg.startswith("--") or arg == "--":
        return arg
    name, sep, value = arg[2:].partition("=")
    name = name.replace("_", "-")
    if name.startswith("no-") and name[3:] in _BOOLEAN_NAMES and not sep:
        return f"--{name[3:]}=false"
    return f"--{name}{sep}{value}"


def nearest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to a misspelt ``word``, if one is close: the one hint for an
    unknown config-file key and an unknown environment variable alike."""
    found = difflib.get_close_matches(word, list(candidates), n=1)
    return found[0] if found else None


def unknown_variables(environ: Mapping[str, str], known: Collection[str]) -> str | None:
    """The one-line refusal of the ``IDLE_CULL_*`` variables in ``environ`` that are not in
    ``known`` (the command's environment variables and ``NOT_OPTION_VARIABLES``), each with
    the nearest known name; ``None`` when there is none.

    A config file's typo is an error; an environment typo (Kubernetes ConfigMaps, systemd
    EnvironmentFiles) must be one too, or a misspelt ``..._TIMOUT=1h`` runs at 10 minutes.
    """
    prefix = f"{ENV_PREFIX}_"
    unknown = sorted(n for n in environ if n.startswith(prefix) and n not in known)
    if not unknown:
        return None
    suffixes = {name.removeprefix(prefix): name for name in known if name.startswith(prefix)}
    problems = []
    for name in unknown:
        near = nearest(name.removeprefix(prefix), suffixes)
        problems.append(name + (f" (did you mean {suffixes[near]}?)" if near else ""))
    return (
        f"unknown environment variable{'s' if len(unknown) > 1 else ''} {', '.join(problems)}: "
        f"{prefix}* variables set idle-cull's options ({prefix}<OPTION>, see --help), and a "
        "misspelt one would leave its setting at the default; rename or unset it"
    )


def cull_options(command: F) -> F:
    """Every option of the ``idle-cull`` command, in the order ``--help`` lists them."""
    for option in reversed(OPTIONS):
        command = option.click_option()(command)
    return command


OPTIONS: tuple[Option, ...] = (
    Option(
        "url",
        envvar="JUPYTERHUB_API_URL",
        default="http://127.0.0.1:8081/hub/api",
        help="The JupyterHub API URL (ends in /hub/api).",
        setting="url",
        type=HubURL(),
        shown=public_url,
    ),
    Option(
        "timeout",
        type=Duration(),
        default="600",
        help="Stop servers idle for at least this long (seconds, or 90m, 2h, 1d).",
        setting="limits.timeout",
    ),
    Option(
        "max-age",
        type=Duration(),
        default="0",
        help="Also stop servers older than this even if active; 0 turns it off.",
        setting="limits.max_age",
    ),
    Option(
        "cull-users",
        help="Delete users whose servers are all gone and who are idle or too old "
        "(for temporary users, as with tmpnb).",
        boolean=True,
        default=False,
        setting="limits.cull_users",
    ),
    Option(
        "cull-admin-users",
        help="With --cull-users, whether admin users may be deleted too.",
        boolean=True,
        default=True,
        setting="limits.cull_admin_users",
    ),
    Option(
        "remove-named-servers",
        help="Remove named servers after stopping them (BinderHub with named servers).",
        boolean=True,
        default=False,
        setting="limits.remove_named_servers",
    ),
    Option(
        "cull-default-servers",
        help="Whether default servers are culled.",
        boolean=True,
        default=True,
        setting="limits.cull_default_servers",
    ),
    Option(
        "cull-named-servers",
        help="Whether named servers are culled.",
        boolean=True,
        default=True,
        setting="limits.cull_named_servers",
    ),
    Option(
        "concurrency",
        type=Count(1, MAX_CONCURRENCY, why=" (the hub serves one request at a time anyway)"),
        default=10,
        help="Most requests in flight to the hub at once (1 to 100); fewer while the hub is slow "
        "to answer others (see docs/explanation/kind-to-the-hub.md). With "
        "--activity-source=server, up to 100 more probes of servers that have not answered "
        "for a while may wait beside them: they cost the hub nothing while they wait.",
        setting="concurrency",
    ),
    Option(
        "api-page-size",
        type=Count(0, MAX_USERS, why=" (the longest listing a pass reads)"),
        default=0,
        help="Users per page when listing; 0 uses the hub's default page size.",
        setting="api_page_size",
    ),
    Option(
        "ssl-enabled",
        help="The hub API uses JupyterHub's internal SSL (client certificate and CA).",
        boolean=True,
        default=False,
    ),
    Option(
        "internal-certs-location",
        type=click.Path(path_type=Path),
        default="internal-ssl",
        help="Directory of JupyterHub's internal-ssl certificates (with --ssl-enabled).",
    ),
    Option(
        "api-token-file",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="JUPYTERHUB_API_TOKEN_FILE",
        help="Read the API token from this file (systemd credential, Kubernetes "
        "secret) instead of the JUPYTERHUB_API_TOKEN environment variable.",
    ),
    Option(
        "request-timeout",
        type=Duration(positive=True),
        envvar="JUPYTERHUB_REQUEST_TIMEOUT",
        default="60",
        help="Longest one request may take, the whole answer included; connecting and the "
        "TLS handshake get at most 10s of it.",
        setting="request_timeout",
    ),
    Option(
        "cull-every",
        type=Duration(),
        default="0",
        metavar="SECONDS",
        help="Accepted for upstream compatibility and ignored: this tool does one pass; "
        "the systemd timer, cron or CronJob decides how often.",
        show_default=False,
    ),
    Option(
        "exclude-user",
        multiple=True,
        metavar="PATTERN",
        help="Never stop this user's servers nor delete the user (shell glob; repeatable).",
        setting="limits.exclude_users",
        shown=_joined,
    ),
    Option(
        "exclude-group",
        multiple=True,
        metavar="GROUP",
        help="Never touch members of this group (repeatable; needs read:users:groups, and "
        "read:groups:name to check that the group exists).",
        setting="limits.exclude_groups",
        shown=_joined,
    ),
    Option(
        "group-timeout",
        type=NamedDuration(),
        multiple=True,
        help="Idle limit for members of GROUP, e.g. instructors=6h (repeatable); a user in "
        "several groups gets the longest.",
        setting="limits.group_timeouts",
        shown=_pairs,
    ),
    Option(
        "allow-unchecked-groups",
        help="Go on when the groups --exclude-group and --group-timeout name cannot be "
        "checked (the token lacks read:groups:name), with a warning. A misspelt group then "
        "protects nobody; without this such a pass exits 3 before listing.",
        boolean=True,
        default=False,
        setting="allow_unchecked_groups",
    ),
    Option(
        "profile-timeout",
        type=NamedDuration(),
        multiple=True,
        help="Idle limit for servers started with this profile (user_options['profile']), "
        "e.g. gpu=2h (repeatable); beats server and group limits.",
        setting="limits.profile_timeouts",
        shown=_pairs,
    ),
    Option(
        "server-timeout",
        type=NamedDuration(),
        multiple=True,
        help="Idle limit for named servers whose name matches the glob, e.g. 'gpu-*=1h' "
        "(repeatable; first match wins).",
        setting="limits.server_timeouts",
        shown=_pairs,
    ),
    Option(
        "user-timeout",
        type=Duration(),
        help="With --cull-users: delete users idle this long (default: --timeout).",
        setting="limits.user_timeout",
    ),
    Option(
        "user-max-age",
        type=Duration(),
        help="With --cull-users: delete users older than this (default: --max-age).",
        setting="limits.user_max_age",
    ),
    Option(
        "dry-run",
        help="List, decide and report, but send no request that changes anything.",
        boolean=True,
        default=False,
        setting="dry_run",
    ),
    Option(
        "max-culls",
        type=Count(0, MAX_USERS, why=" (the longest listing a pass reads)"),
        help="Act on nothing (exit 4) if the pass plans more stops plus deletions than this.",
        setting="caps.max_culls",
    ),
    Option(
        "max-cull-fraction",
        type=Share(),
        help="Act on nothing (exit 4) if the pass plans to stop more than this share (0-1) "
        "of the running servers it saw. Off by default: see docs/explanation/safety-rails.md.",
        setting="caps.max_cull_fraction",
    ),
    Option(
        "clock",
        type=click.Choice(["hub", "local"]),
        default="hub",
        help="Measure idleness on the hub's clock (its Date header; it stamps last_activity) "
        "or on this machine's. On the hub's clock, a pass whose two clocks disagree by "
        "more than a quarter of the smallest idle limit (5s to 5m) culls nothing (exit 6) "
        "unless --allow-clock-skew.",
        setting="clock",
    ),
    Option(
        "allow-clock-skew",
        help="With --clock=hub, measure on the hub's clock even when it and this machine's "
        "disagree beyond the tolerance: a warning instead of exit 6. Only for a hub whose "
        "Date header is known right while this machine's clock is not.",
        boolean=True,
        default=False,
        setting="allow_clock_skew",
    ),
    Option(
        "recheck",
        help="Fetch each user afresh just before acting, and skip it if it became active.",
        boolean=True,
        default=True,
        setting="recheck",
    ),
    Option(
        "recheck-after",
        type=Duration(),
        default="30",
        help="Re-check a server before stopping it only once the listing is this old (0: "
        "always); the hub learns of activity minutes late, so a younger listing is as "
        "fresh. Users are always re-checked before deletion.",
        setting="recheck_after",
    ),
    Option(
        "lock-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Hold a flock on this file during the pass; if another pass holds it, exit 75.",
        setting="lock_file",
    ),
    Option(
        "deadline",
        type=Duration(positive=True),
        help="Start no new action after this long (seconds or 10m); requests in flight are "
        "abandoned 5s later, unfinished actions are reported as not attempted and the exit "
        "status is 1.",
        setting="deadline",
    ),
    Option(
        "probe-kernels",
        help="Before stopping a server, ask it (where --probe-via says) whether a kernel is busy, "
        "and keep it while one is, up to --busy-timeout. Each probe sends a short-lived token "
        "of the server's own user, which the hub mints: needs the tokens scope and JupyterHub "
        "3.0 or later.",
        boolean=True,
        default=False,
        setting="probe_kernels",
    ),
    Option(
        "proxy-url",
        metavar="URL",
        help="With --probe-kernels (and --probe-via=proxy): the proxy's public URL, without a "
        "path (in zero-to-jupyterhub the proxy-public service, e.g. http://proxy-public).",
        setting="proxy_url",
        type=HubURL(),
        shown=_public_or_none,
    ),
    Option(
        "probe-via",
        type=click.Choice(["proxy", "route-target"]),
        default="proxy",
        help="Where every probe of a user's server goes (--activity-source=server, "
        "--probe-kernels, --postpone-limit): proxy, through --proxy-url, which records each "
        "answered probe as the server's activity and the hub copies it into last_activity; "
        "or route-target, straight to each server's own address as the proxy's routing "
        "table (--proxy-api-url, CONFIGPROXY_AUTH_TOKEN) names it, which records nothing. "
        "See docs/explanation/what-counts-as-activity.md.",
        setting="probe_via",
    ),
    Option(
        "proxy-api-url",
        metavar="URL",
        default="http://127.0.0.1:8001",
        help="With --probe-via=route-target: configurable-http-proxy's REST API, whose "
        "routing table is read once per pass with CONFIGPROXY_AUTH_TOKEN (in "
        "zero-to-jupyterhub http://proxy-api:8001).",
        setting="proxy_api_url",
        type=HubURL(),
        shown=public_url,
    ),
    Option(
        "proxy-auth-token-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="With --probe-via=route-target: read the proxy's auth token from this file "
        "instead of the CONFIGPROXY_AUTH_TOKEN environment variable.",
    ),
    Option(
        "busy-timeout",
        type=Duration(),
        default="1d",
        help="With --probe-kernels: the longest busy kernels (or failing probes) keep a "
        "server past its idle limit; 0 means no limit (--max-age still applies).",
        setting="probe_limits.busy_timeout",
    ),
    Option(
        "probe-timeout",
        type=Duration(positive=True),
        default="5",
        help="With --probe-kernels or --activity-source=server: the longest wait for one "
        "server's answer; --probe-kernels tries twice, the server-activity survey once.",
        setting="probe_timeout",
    ),
    Option(
        "probe-failure",
        type=click.Choice(["keep", "cull"]),
        default="keep",
        help="With --probe-kernels: what a probe without an answer (timeout, 404 from a "
        "non-Jupyter server, 5xx) means: keep the server this pass, or stop it.",
        setting="probe_limits.probe_failure",
    ),
    Option(
        "activity-source",
        type=click.Choice(["hub", "server"]),
        default="hub",
        help="Where a server's activity comes from: hub, the hub's last_activity (which an "
        "open browser tab keeps fresh), or server, each running server's own kernels and "
        "terminals, asked (--probe-via) with its user's token (a busy kernel, a "
        "terminal in use and, with --cpu-threshold, CPU keep it; a failed probe leaves the "
        "hub's record to decide). server includes what --probe-kernels checks.",
        setting="activity.activity_source",
    ),
    Option(
        "cpu-threshold",
        type=click.FloatRange(min=0, min_open=True),
        help="With --activity-source=server: keep a server whose processes used more than "
        "this much CPU (percent of one core) over --cpu-window; needs jupyter-resource-usage "
        "with track_cpu_percent in the server. Off unless set.",
        setting="activity.cpu_threshold",
    ),
    Option(
        "cpu-window",
        type=Duration(positive=True),
        default="2",
        help="With --cpu-threshold: how long CPU is measured over, per server.",
        setting="activity.cpu_window",
    ),
    Option(
        "no-sessions",
        type=click.Choice(["hub", "idle"]),
        default="hub",
        help="With --activity-source=server: a server with neither kernels nor terminals is "
        "judged on the hub's record (hub), or idle since it started (idle).",
        setting="activity.no_sessions",
    ),
    Option(
        "state-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Keep the probes' per-user tokens in this directory (one file per hub, mode "
        "0600; the directory is created 0700 and must be this user's own), so later passes "
        "reuse them for up to an hour instead of minting new ones: less work for the hub. "
        "Without it (the default) tokens live in memory for one pass.",
        setting="state_dir",
    ),
    Option(
        "warn-within",
        type=Duration(),
        help="Also report the servers that will cross their idle limit within this long, "
        "so their users can be warned (e.g. 15m).",
        setting="warn_within",
    ),
    Option(
        "postpone-limit",
        type=Duration(),
        default="0",
        help="Let users postpone the cull of their own server by writing an end time or a "
        "duration into keep-alive.txt in its root directory (echo 18:00 > ~/keep-alive.txt), "
        "for at most this long after they wrote it; read (--probe-via) with a token of "
        "the user's own. 0 (the default) turns it off.",
        setting="postpone_limit",
    ),
    Option(
        "postpone-max-age",
        help="With --postpone-limit: let a keep-alive file postpone --max-age too.",
        boolean=True,
        default=False,
        setting="postpone_max_age",
    ),
    Option(
        "postpone-timezone",
        metavar="ZONE",
        default="UTC",
        help="With --postpone-limit: the time zone of a time without one in a keep-alive file "
        "(18:00), an IANA name such as Europe/Berlin.",
        setting="postpone_timezone",
    ),
    Option(
        "notify",
        metavar="URL",
        multiple=True,
        help="Warn each user whose server --warn-within finds, once, through this apprise URL "
        "with {user} for the user's name, e.g. mailto://smtp.example.org?to={user}@example.org "
        "(repeatable; needs --schedule-interval and the notify extra).",
        setting="notify_urls",
        shown=_schemes_only,
    ),
    Option(
        "notify-template",
        type=click.Path(path_type=Path, dir_okay=False),
        help="With --notify: a file whose first line is the warning's title and the rest its "
        "body, with the fields {user} {server} {label} {when} {left} {idle} {limit} {rule} "
        "{postpone}.",
        setting="notify_template",
    ),
    Option(
        "schedule-interval",
        type=Duration(positive=True),
        help="With --notify: how often the scheduler runs a pass, on a grid counted from the "
        "epoch (cron */10: 10m); each pass warns of the culls whose --warn-within window "
        "opened since the previous one, so each is announced once.",
        setting="schedule_interval",
    ),
    Option(
        "report",
        type=click.Choice(["text", "json", "none"]),
        default="none",
        help="Write a report of the pass to stdout: a summary for people, or the JSON "
        "document of docs/reference/report-schema.md.",
        setting="report",
    ),
    Option(
        "report-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Also write the JSON report to this file, atomically.",
        setting="report_file",
    ),
    Option(
        "report-kept",
        help="List kept servers and users in the report too, each with the reason it was kept; "
        "otherwise they are only counted (they are nearly everyone on a big hub, and each "
        "listed one stays in memory until the report is written).",
        boolean=True,
        default=False,
        setting="report_kept",
    ),
    Option(
        "metrics-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Write Prometheus metrics for node_exporter's textfile collector (atomically; "
        "needs idle-cull[metrics]).",
        setting="metrics_file",
    ),
    Option(
        "pushgateway",
        metavar="URL",
        help="Push the same metrics to a Prometheus Pushgateway (needs idle-cull[metrics]).",
        setting="pushgateway",
    ),
    Option(
        "allow-managed-service",
        help="Run even when JupyterHub started this process as a managed service (only for "
        "a wrapper that loops between passes; see docs/how-to/scheduling.md).",
        boolean=True,
        default=False,
    ),
    Option(
        "log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        help="Logs on stderr as text, or as JSON lines for log shippers.",
    ),
    Option(
        "log-level",
        type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
        default="info",
        help="Least severe log level written to stderr; debug adds a line for every "
        "kept server and user, with the reason it was kept.",
    ),
)

BOOLEAN_OPTIONS = tuple(option for option in OPTIONS if option.boolean)
_BOOLEAN_NAMES = frozenset(option.name for option in BOOLEAN_OPTIONS)
