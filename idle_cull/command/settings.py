"""One immutable ``Settings`` built once from the command line and environment.

Everything below the CLI receives this object (or a part of it) instead of reading
options or environment variables itself, so a pass is fully described by its settings.
Which option fills which field is declared once, in ``options.OPTIONS``:
``Settings.from_options`` and ``Settings.describe`` both follow that table.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from idle_cull.command.options import OPTIONS
from idle_cull.errors import ConfigError
from idle_cull.evidence.kernel_probe import KERNEL_PROBE_TIMEOUT, validate_proxy_url
from idle_cull.hub.retry import RetryPolicy
from idle_cull.hub.tls import TLSFiles
from idle_cull.rules.busy_kernels import ProbeLimits
from idle_cull.rules.policy import Caps, CullLimits
from idle_cull.rules.server_activity import CPU_WINDOW, ActivitySettings, NoSessions
from idle_cull.safe_files import NotRegularFile, read_regular
from idle_cull.safe_text import public_url
from idle_cull.urls import requestable_url

__all__ = ["RetryPolicy", "Settings", "TLSFiles", "read_token", "validate_hub_url"]


HUB_URL_EXAMPLE = "http://127.0.0.1:8081/hub/api"

# JupyterHub refuses shorter tokens (jupyterhub/orm.py, APIToken.min_length).
MIN_TOKEN_LENGTH = 8
MAX_TOKEN_FILE_BYTES = 16 * 1024  # a token is 32-64 characters; a file this big is not one

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActivitySource:
    """``--activity-source`` and the options of the server source (issue 24)."""

    activity_source: str = "hub"  # "server": each running server's own kernels and terminals
    cpu_threshold: float | None = None  # percent of one core; None: CPU is not evidence
    cpu_window: float = CPU_WINDOW
    no_sessions: str = "hub"  # a server without kernels or terminals: "hub" or "idle"

    @property
    def server(self) -> bool:
        return self.activity_source == "server"

    def reading(self) -> ActivitySettings:
        """How the server source reads and judges what it finds."""
        return ActivitySettings(
            cpu_threshold=self.cpu_threshold,
            cpu_window=self.cpu_window,
            no_sessions=NoSessions(self.no_sessions),
        )


def _characters(count: int) -> str:
    return f"{count} character" + ("" if count == 1 else "s")


def read_token(
    path: Path, option: str = "--api-token-file", what: str = "the service's API token"
) -> str:
    """A token from a file (systemd credential, Kubernetes secret), stripped: the API
    token (``--api-token-file``) or the proxy's (``--proxy-auth-token-file``).

    The file's content is never echoed back in an error, only its path. Only a regular
    file of at most ``MAX_TOKEN_FILE_BYTES`` is read (links are followed: Kubernetes
    mounts secrets through them), so a FIFO cannot block the pass nor ``/dev/zero`` fill
    its memory; a file others may read is worth a warning, as ssh gives for keys.
    """
    try:
        content, mode = read_regular(path, MAX_TOKEN_FILE_BYTES, follow=True)
        token = content.decode("utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"token file {path} does not exist: check {option}") from None
    except NotRegularFile as error:
        raise ConfigError(f"cannot read token file: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ConfigError(f"cannot read token file {path}: {reason}") from None
    if mode & stat.S_IROTH:
        log.warning(
            "token file %s is readable by every user (mode %o); make it 0600 or 0640",
            path,
            stat.S_IMODE(mode),
        )
    if not token:
        raise ConfigError(f"token file {path} is empty: put {what} in it")
    return token


@dataclass(frozen=True)
class Settings:
    """Everything one pass needs; built once by the CLI and passed down."""

    url: str
    token: str = field(repr=False)
    limits: CullLimits
    concurrency: int = 10
    api_page_size: int = 0
    request_timeout: float = 60.0
    tls: TLSFiles | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    dry_run: bool = False
    caps: Caps = field(default_factory=Caps)
    allow_unchecked_groups: bool = False  # group rules go on when the groups cannot be checked
    clock: str = "hub"  # "hub": the hub's Date header; "local": this machine's clock
    allow_clock_skew: bool = False  # with clock "hub": a large skew warns, does not refuse
    recheck: bool = True
    recheck_after: float = 30.0  # seconds after the listing started; before, no re-check
    deadline: float | None = None  # seconds for the whole pass
    lock_file: Path | None = None
    warn_within: float | None = None  # report servers this close to their idle limit
    report: str = "none"  # on stdout: "text", "json" or "none"
    report_file: Path | None = None  # the JSON report, written atomically
    report_kept: bool = False  # list kept servers and users in reports, not only count them
    metrics_file: Path | None = None  # Prometheus text format for node_exporter
    pushgateway: str | None = None  # Prometheus Pushgateway URL
    probe_kernels: bool = False  # ask servers about to be stopped whether a kernel is busy
    proxy_url: str | None = None  # the proxy's public origin, which the probes go through
    probe_via: str = "proxy"  # "route-target": straight to each server (proxy_routes)
    proxy_api_url: str = "http://127.0.0.1:8001"  # configurable-http-proxy's REST API
    proxy_auth_token: str = field(default="", repr=False)  # CONFIGPROXY_AUTH_TOKEN
    probe_timeout: float = KERNEL_PROBE_TIMEOUT  # per attempt; a probe makes at most two
    probe_limits: ProbeLimits = field(default_factory=ProbeLimits)
    activity: ActivitySource = field(default_factory=ActivitySource)
    state_dir: Path | None = None  # probe tokens kept between passes (--state-dir)
    postpone_limit: float = 0.0  # the longest a user's keep-alive file postpones; 0: off
    postpone_max_age: bool = False  # whether a keep-alive file postpones --max-age too
    postpone_timezone: str = "UTC"  # for times without a zone in keep-alive files
    notify_urls: tuple[str, ...] = ()  # apprise URLs that warn users of upcoming culls
    notify_template: Path | None = None  # title on the first line, body after it
    schedule_interval: float | None = None  # seconds between scheduled passes (--notify)

    def __post_init__(self) -> None:
        """The facts no option's value function can check: the URL (``urls``), a usable
        token, ``--probe-kernels`` and ``--postpone-limit`` with ``--proxy-url``, ``--notify``
        with its window and schedule, one limit per name. Every
        number, share and choice was checked once already by its option's type
        (``command.values``, ``click.Choice``), whatever its source."""
        validate_hub_url(self.url)
        _check_probe_options(self)
        _check_users_loop_options(self)
        _check_unique_names(self.limits)
        if not self.token:
            raise ConfigError(
                "no API token: set JUPYTERHUB_API_TOKEN or pass --api-token-file "
                "(see the README for the role to grant the token)"
            )
        if not self.token.isascii() or any(c.isspace() or not c.isprintable() for c in self.token):
            raise ConfigError(
                "the API token contains spaces, line breaks or non-ASCII characters; "
                "check the token file or JUPYTERHUB_API_TOKEN"
            )
        if len(self.token) < MIN_TOKEN_LENGTH:
            # The hub would refuse it anyway; and masking a one- or two-character token in
            # the logs would garble every word that contains it.
            raise ConfigError(
                f"the API token is {_characters(len(self.token))} long; JupyterHub's tokens "
                f"are at least {MIN_TOKEN_LENGTH}: check the token file or JUPYTERHUB_API_TOKEN"
            )

    @classmethod
    def from_options(
        cls,
        values: Mapping[str, Any],
        *,
        token: str,
        tls: TLSFiles | None = None,
        proxy_auth_token: str = "",
    ) -> Settings:
        """The settings from parsed option values (keyed by ``Option.dest``), validated.

        The tokens and the TLS files come from options that need reading files first,
        so the caller passes them in; every other field is filled from its option.
        """
        groups: dict[str, dict[str, Any]] = {
            "": {},
            "limits": {},
            "caps": {},
            "probe_limits": {},
            "activity": {},
        }
        for option in OPTIONS:
            if option.setting is None:
                continue
            group, _, name = option.setting.rpartition(".")
            value = values[option.dest]
            groups[group][name] = tuple(value) if option.multiple else value
        return cls(
            token=token,
            tls=tls,
            proxy_auth_token=proxy_auth_token,
            limits=CullLimits(**groups["limits"]),
            caps=Caps(**groups["caps"]),
            probe_limits=ProbeLimits(**groups["probe_limits"]),
            activity=ActivitySource(**groups["activity"]),
            **groups[""],
        )

    def describe(self) -> dict[str, object]:
        """The effective settings for the start-of-pass log line; the token is never included.

        One entry per option that fills a field, named as the field, in ``--help`` order,
        then ``ssl``: whether the TLS files of ``--ssl-enabled`` are in use.
        """
        described: dict[str, object] = {}
        for option in OPTIONS:
            if option.setting is None:
                continue
            value: Any = self
            for name in option.setting.split("."):
                value = getattr(value, name)
            described[option.setting.rpartition(".")[2]] = option.shown(value)
        described["ssl"] = self.tls is not None  # --ssl-enabled fills no field of its own
        return described


def _check_probe_options(settings: Settings) -> None:
    """``--probe-kernels`` and ``--activity-source=server`` need a usable ``--proxy-url``
    before anything is sent."""
    if settings.activity.activity_source not in ("hub", "server"):
        raise ConfigError(
            f"--activity-source must be hub or server, got {settings.activity.activity_source!r}"
        )
    if settings.activity.no_sessions not in ("hub", "idle"):
        raise ConfigError(
            f"--no-sessions must be hub or idle, got {settings.activity.no_sessions!r}"
        )
    threshold = settings.activity.cpu_threshold
    if threshold is not None and not 0 < threshold < 1e6:
        raise ConfigError(f"--cpu-threshold must be a positive percentage, got {threshold!r}")
    if not 0 < settings.activity.cpu_window <= 60:
        raise ConfigError("--cpu-window must be more than 0 and at most 60 seconds")
    if settings.probe_via not in ("proxy", "route-target"):
        raise ConfigError(f"--probe-via must be proxy or route-target, got {settings.probe_via!r}")
    if settings.activity.server:
        _check_where_probes_go(settings, "--activity-source=server")
    elif settings.probe_kernels:
        _check_where_probes_go(settings, "--probe-kernels")


def _check_where_probes_go(settings: Settings, flag: str) -> None:
    """What ``--probe-via`` needs: ``--proxy-url`` through the proxy; the proxy's API URL
    and its auth token at the route targets (the public URL is then not used)."""
    if settings.probe_via == "route-target":
        parts = requestable_url(settings.proxy_api_url, "--proxy-api-url", "http://proxy-api:8001")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ConfigError(
                "--proxy-api-url must not contain a user name, password, query or fragment: "
                "the proxy's auth token (CONFIGPROXY_AUTH_TOKEN) is what it checks"
            )
        token = settings.proxy_auth_token
        if not token:
            raise ConfigError(
                f"{flag} with --probe-via=route-target needs the proxy's auth token, to read "
                "its routing table: set CONFIGPROXY_AUTH_TOKEN (the token the hub and "
                "configurable-http-proxy share) or pass --proxy-auth-token-file"
            )
        if (
            not token.isascii()
            or any(c.isspace() or not c.isprintable() for c in token)
            or len(token) < MIN_TOKEN_LENGTH
        ):
            # Masking a one- or two-character token in the logs would garble every word.
            raise ConfigError(
                "the proxy's auth token contains spaces, line breaks or non-ASCII characters, "
                f"or is shorter than {MIN_TOKEN_LENGTH}: check CONFIGPROXY_AUTH_TOKEN or "
                "--proxy-auth-token-file"
            )
        return
    if not settings.proxy_url:
        raise ConfigError(
            f"{flag} needs --proxy-url, the proxy's public URL through which the "
            "servers are asked (e.g. http://proxy-public in zero-to-jupyterhub), or "
            "--probe-via=route-target"
        )
    validate_proxy_url(settings.proxy_url)


def _check_users_loop_options(settings: Settings) -> None:
    """``--postpone-limit`` reads through ``--proxy-url``; ``--notify`` warns once only on
    the grid of ``--schedule-interval``, within a ``--warn-within`` window at least that long."""
    if settings.postpone_limit:
        _check_where_probes_go(settings, "--postpone-limit")
    try:
        ZoneInfo(settings.postpone_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"--postpone-timezone {settings.postpone_timezone!r} is not a time zone name; "
            "use an IANA name such as UTC or Europe/Berlin"
        ) from None
    if not settings.notify_urls:
        return
    if not settings.warn_within:
        raise ConfigError("--notify needs --warn-within: how long before a cull to warn")
    if not settings.schedule_interval:
        raise ConfigError(
            "--notify needs --schedule-interval, how often the scheduler runs a pass (cron "
            "*/10: 10m), so that each upcoming cull is announced once"
        )
    if settings.warn_within < settings.schedule_interval:
        raise ConfigError(
            "--warn-within must be at least --schedule-interval, or a cull could fall "
            "between two passes unannounced"
        )


def _check_unique_names(limits: CullLimits) -> None:
    """Two limits for one group or profile would make the outcome depend on option order."""
    for option, pairs in (
        ("--group-timeout", limits.group_timeouts),
        ("--profile-timeout", limits.profile_timeouts),
        ("--server-timeout", limits.server_timeouts),
    ):
        names = [name for name, _ in pairs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigError(f"{option} is given more than once for {', '.join(repeated)}")


def validate_hub_url(url: str) -> None:
    """Reject URLs that cannot be a hub API before anything is sent."""
    parts = requestable_url(url, "--url", HUB_URL_EXAMPLE)
    if "@" in parts.netloc:
        # requests would send them as Basic auth instead of the token, and the hub
        # would reject "the token"; they would also sit in the process list.
        raise ConfigError(
            "--url must not contain a user or password (user:password@); the hub "
            "authenticates idle-cull by its API token alone"
        )
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ConfigError(
            f"--url {url!r} has a query string or fragment; give the bare API URL "
            "(e.g. http://hub:8081/hub/api)"
        )
    if not parts.path.rstrip("/").endswith("/hub/api"):
        raise ConfigError(
            f"--url {public_url(url)!r} does not end in /hub/api; the hub's REST API lives there "
            "(e.g. http://hub:8081/hub/api)"
        )
