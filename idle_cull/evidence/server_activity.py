"""Server activity: how long a server has been idle, measured from inside it (issue 24).

The hub's ``last_activity`` counts every authenticated API request a server answers, so a
browser tab left open (JupyterLab polls ``/api/kernels``, ``/api/sessions`` and
``/api/terminals`` every few seconds) keeps an idle server "active" for ever, while a
terminal job that prints nothing the hub sees is not protected at all. This source asks
the server itself, with a token of the server's own user (``probe_tokens``), and reads
only what users' work moves:

- ``GET {server}api/kernels``: each kernel's ``last_activity`` (its newest IOPub message:
  execution and output, never a poll) and ``execution_state`` (``busy`` now);
- ``GET {server}api/terminals``: each terminal's ``last_activity`` (input and output);
- optionally ``GET {server}api/metrics/v1`` twice, ``cpu_window`` seconds apart
  (jupyter-resource-usage with ``ResourceUseDisplay.track_cpu_percent``): the CPU its
  process tree used between the two calls; the first call only starts the measurement.

Every request carries ``no_track_activity=1`` (jupyter_server's ``APIHandler.finish``
would count it as activity otherwise) and goes through ``transport.BoundedTransport``:
a whole-answer deadline, a body cap, no redirects, at most one retry of a quick
transient failure (a reset connection, 429, 502/503/504). A timeout is not retried and
ends the probe: a server that did not answer within ``--probe-timeout`` is most often
gone or hung, and the hub's record decides for it (``server_api``; the pass's survey
also stops counting such a probe against the hub's slots: ``hub.limiter.StallRelease``).
Answers are parsed by pure functions that accept a real Jupyter answer and nothing else:
huge, nested or wrongly typed answers are failures, never exceptions.

What a failure means (never less evidence than the hub's record):

- no answer, a non-Jupyter server (RStudio, code-server: 404 or HTML), or an answer to
  ``/api/kernels`` that is not a kernel list: the probe failed, and the hub's record
  decides for that server;
- a 404 from ``/api/terminals`` only: the terminals extension is off, so no terminal can
  be running; the kernels decide. Any other terminal failure fails the probe: a terminal
  job that could not be seen must not be culled;
- ``/api/metrics/v1`` missing, or without ``cpu_percent``: no CPU evidence; noted, never
  a failure (CPU is extra protection, not something the hub's record ever had).

What the activity means (idle since when, what protects the server, when the hub's
record decides, the server's clock corrected for) is ``rules.server_activity``, pure.
``ServerActivitySource`` is this probe as a source of evidence (``evidence.base``).

The proxy: every request it forwards successfully is route activity
(configurable-http-proxy's ``configproxy.js``: ``updateLastActivity`` on each proxied
request's ``finish`` with a status below 300, and on any data; no opt-out), which the hub
copies into the server's ``last_activity`` at its next activity poll. So a probe through
the proxy makes the hub's record fresh again: harmless when this source decides, but it
is the record a failed probe falls back to. ``--probe-via=route-target``
(``evidence.proxy_routes``) avoids it where the operator allows the culler to read the
proxy's routing table: probes then go straight to each route's target, and the proxy
sees nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from idle_cull.errors import HubError
from idle_cull.evidence.base import Asks, Target
from idle_cull.evidence.probe_tokens import ExpectedServers, ProbeTarget, ProbeTokens
from idle_cull.evidence.proxy_routes import Locator, NoAddress
from idle_cull.evidence.server_api import Failed, Failure, ServerAPI
from idle_cull.models import RecordError, parse_timestamp
from idle_cull.rules.evidence import Finding
from idle_cull.rules.server_activity import (
    ActivityFinding,
    ActivitySettings,
    Cpu,
    KernelSeen,
    ServerActivity,
    TerminalSeen,
    judge_activity,
)
from idle_cull.transport import read_json

__all__ = [
    "MAX_ANSWER",
    "ActivityWithUserToken",
    "AnswerRefused",
    "ServerActivityProbe",
    "ServerActivitySource",
    "read_cpu_percent",
    "read_kernel_list",
    "read_terminal_list",
]

DEFAULT_SETTINGS = ActivitySettings()

log = logging.getLogger(__name__)

MAX_ANSWER = 1024 * 1024  # about 5,000 kernels or terminals: anything bigger is not a list
ATTEMPTS = 2  # one retry, for a dropped connection or a proxy hiccup (never a timeout)
MAX_NAME = 64  # kernel spec and terminal names are shortened to this in reasons


class AnswerRefused(ValueError):
    """An answer that is not what a Jupyter server sends; the text says what is wrong."""


# --- parsing: pure, total over every possible body --------------------------------------


def _items(body: bytes, what: str) -> list[Any]:
    try:
        models: Any = read_json(body)
    except ValueError:
        raise AnswerRefused("the answer is not JSON") from None
    if not isinstance(models, list):
        raise AnswerRefused(f"the answer is not a list of {what}")
    return models


def _stamp(model: dict[str, Any], what: str) -> datetime:
    try:
        stamp = parse_timestamp(model.get("last_activity"), field=f"{what} last_activity")
    except RecordError:
        stamp = None
    if stamp is None:
        raise AnswerRefused(f"a {what} in the answer has no readable last_activity")
    return stamp


def _name(value: object) -> str:
    return (value if isinstance(value, str) and value else "?")[:MAX_NAME]


def read_kernel_list(body: bytes) -> tuple[KernelSeen, ...]:
    """Kernels from ``/api/kernels``; raises ``AnswerRefused`` for anything else.

    Every kernel must have an ``execution_state`` and a readable ``last_activity``: a list
    that cannot say when each kernel was last used cannot say the server is idle.
    """
    kernels = []
    for model in _items(body, "kernels"):
        state = model.get("execution_state") if isinstance(model, dict) else None
        if not isinstance(state, str):
            raise AnswerRefused("a kernel in the answer has no execution_state")
        connections = model.get("connections")
        kernels.append(
            KernelSeen(
                name=_name(model.get("name")),
                last_activity=_stamp(model, "kernel"),
                busy=state == "busy",
                connections=connections if type(connections) is int else 0,
            )
        )
    return tuple(kernels)


def read_terminal_list(body: bytes) -> tuple[TerminalSeen, ...]:
    """Terminals from ``/api/terminals``; raises ``AnswerRefused`` for anything else."""
    terminals = []
    for model in _items(body, "terminals"):
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            raise AnswerRefused("a terminal in the answer has no name")
        terminals.append(
            TerminalSeen(name=_name(model["name"]), last_activity=_stamp(model, "terminal"))
        )
    return tuple(terminals)


def read_cpu_percent(body: bytes) -> float | None:
    """``cpu_percent`` from ``/api/metrics/v1``; ``None`` when CPU is not tracked there.

    Raises ``AnswerRefused`` when the answer is not a metrics object at all.
    """
    try:
        metrics: Any = read_json(body)
    except ValueError:
        raise AnswerRefused("the metrics answer is not JSON") from None
    if not isinstance(metrics, dict):
        raise AnswerRefused("the metrics answer is not an object")
    value = metrics.get("cpu_percent")
    if value is None:
        return None
    if type(value) not in (int, float) or not 0 <= value < 1e6:
        raise AnswerRefused("the metrics answer has an unusable cpu_percent")
    return float(value)


# --- the probe: I/O ---------------------------------------------------------------------


@dataclass
class _Exchange:
    """One probe's requests: how many were sent, and the kernel list's Date header."""

    sent: int = 0
    dates: list[tuple[str, datetime]] = field(default_factory=list)


class _Failed(Exception):
    def __init__(self, reason: str, *, status: int | None = None, timed_out: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.timed_out = timed_out  # the server did not answer in time: ask it nothing more


class ServerActivityProbe:
    """Reads a server's activity at its base URL (``http://proxy/user/ann/``); thread-safe.

    ``locate`` (``evidence.proxy_routes``: through the proxy, or at the route's target)
    turns the server to probe into that URL, or says why it cannot be probed safely;
    when it goes through the hub's proxy, the environment's proxy and CA bundle settings
    for that proxy are used, as for the kernel probe and the keep-alive file
    (``server_api.ServerAPI``).
    """

    def __init__(
        self,
        locate: Locator,
        *,
        settings: ActivitySettings = DEFAULT_SETTINGS,
        timeout: float = 5.0,
        pool_size: int = 10,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        give_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self._locate = locate
        self._settings = settings
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
        self._api = ServerAPI(
            locate.proxy_url,
            timeout=timeout,
            max_bytes=MAX_ANSWER,
            pool_size=pool_size,
            session=session,
            sleep=sleep,
            give_up=give_up,
            label="activity probe",
            retry_timeouts=False,
        )

    def close(self) -> None:
        self._api.close()

    def probe(self, target: ProbeTarget, token: Callable[[], str]) -> ServerActivity:
        """The activity of the server ``target`` names; never raises for anything the
        server does (``token``'s own errors propagate). ``token`` is asked for only once
        the server has an address the user's token may go to."""
        started = self._clock()
        base = self._locate(target)
        if isinstance(base, NoAddress):
            return ServerActivity.failed_with(base.reason, attempts=0)
        secret = token()
        exchange = _Exchange()
        try:
            activity = self._read(base, secret, exchange)
        except _Failed as error:
            activity = ServerActivity.failed_with(error.reason)
        seconds = round(self._clock() - started, 3)
        return replace(activity, attempts=exchange.sent, seconds=seconds)

    def _read(self, base: str, secret: str, exchange: _Exchange) -> ServerActivity:
        wants_cpu = self._settings.cpu_threshold is not None
        cpu_started = self._clock()
        first = self._cpu_first(base, secret, exchange) if wants_cpu else None
        body = self._get(base + "api/kernels", secret, exchange, dates=True)
        kernels = read_or_fail(body, read_kernel_list)
        try:
            body = self._get(base + "api/terminals", secret, exchange)
        except _Failed as error:
            if error.status != 404:
                raise _Failed(f"terminals: {error.reason}") from None
            terminals, enabled = (), False
        else:
            terminals, enabled = read_or_fail(body, read_terminal_list, "terminals: "), True
        cpu = None
        if wants_cpu:
            cpu = (
                first
                if first is not None
                else self._cpu_second(base, secret, exchange, cpu_started)
            )
        return ServerActivity(
            kernels=kernels,
            terminals=terminals,
            terminals_enabled=enabled,
            cpu=cpu,
            server_behind=_behind(exchange.dates),
        )

    def _cpu_first(self, base: str, secret: str, exchange: _Exchange) -> Cpu | None:
        """Starts the CPU measurement; a ``Cpu`` saying why there is none, or ``None``.

        A server that did not answer in time fails the probe here (``_Failed``): asking
        it for its kernels would only wait as long again."""
        window = self._settings.cpu_window
        try:
            percent = read_cpu_percent(self._get(base + "api/metrics/v1", secret, exchange))
        except _Failed as error:
            if error.timed_out:
                raise
            return Cpu(None, window, f"no jupyter-resource-usage metrics ({error.reason})")
        except AnswerRefused as error:
            return Cpu(None, window, str(error))
        if percent is None:
            return Cpu(None, window, "CPU not tracked (ResourceUseDisplay.track_cpu_percent)")
        return None

    def _cpu_second(self, base: str, secret: str, exchange: _Exchange, since: float) -> Cpu:
        window = self._settings.cpu_window
        self._sleep(max(0.0, since + window - self._clock()))
        measured = self._clock() - since
        try:
            percent = read_cpu_percent(self._get(base + "api/metrics/v1", secret, exchange))
        except (_Failed, AnswerRefused) as error:
            return Cpu(None, measured, f"second metrics call failed ({error})")
        return Cpu(percent, round(measured, 1), None if percent is not None else "no cpu_percent")

    def _get(self, url: str, secret: str, exchange: _Exchange, *, dates: bool = False) -> bytes:
        """The body of a 200 answer, with one retry of a quick transient failure; with ``dates``,
        the answer's Date header and this machine's clock at its arrival are kept."""
        path = _path(url)
        answer = self._api.get(
            url, secret, attempts=ATTEMPTS, describe=lambda status: _status_reason(status, path)
        )
        exchange.sent += answer.attempts
        if isinstance(answer, Failure):
            timed_out = answer.how is Failed.TIMEOUT
            raise _Failed(answer.reason, status=answer.status, timed_out=timed_out)
        if answer.status != 200:
            raise _Failed(_status_reason(answer.status, path), status=answer.status)
        if dates:
            exchange.dates.append((answer.headers.get("Date", ""), self._wall()))
        return answer.content


def read_or_fail(body: bytes, read: Callable[[bytes], Any], prefix: str = "") -> Any:
    """``read(body)``, with a refused answer as a failed probe."""
    try:
        return read(body)
    except AnswerRefused as error:
        raise _Failed(f"{prefix}{error}") from None


def _status_reason(status: int, path: str) -> str:
    endpoint = path.rsplit("/api/", 1)[-1]
    if status in (401, 403):
        return f"HTTP {status} from api/{endpoint}: the server refused its user's probe token"
    if status == 404:
        return f"HTTP 404: no api/{endpoint} (not a Jupyter server?)"
    if 300 <= status < 400:
        return f"HTTP {status} from api/{endpoint}: redirected (not followed)"
    return f"HTTP {status} from api/{endpoint}"


def _behind(dates: list[tuple[str, datetime]]) -> float | None:
    """Seconds the server's clock is behind this machine's, from its Date header."""
    if not dates:
        return None
    header, arrived = dates[-1]
    try:
        sent = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if sent.tzinfo is None:
        return None
    return round((arrived - sent).total_seconds(), 1)


def _path(url: str) -> str:
    return urlsplit(url).path


# --- the user's own token -----------------------------------------------------------------


class ActivityWithUserToken:
    """The probe with a token of the server's owner (``probe_tokens``), never the culler's:
    asked for only once the server has a usable address; a token that cannot be had fails
    that server's probe only."""

    def __init__(self, probe: ServerActivityProbe, tokens: ProbeTokens) -> None:
        self._probe = probe
        self._tokens = tokens

    def __call__(self, target: ProbeTarget) -> ServerActivity:
        try:
            return self._probe.probe(target, lambda: self._tokens.token_for(target))
        except HubError as error:
            return ServerActivity.failed_with(f"no probe token: {error}", attempts=0)


# --- the seam -------------------------------------------------------------------------------


class ServerActivitySource:
    """The server's own activity as a source of evidence (``evidence.base``); thread-safe.

    Asked about every running server (``Asks.RUNNING``) old enough to be idle under the
    smallest limit in use. Its ``Finding`` carries the idle time the server's kernels and
    terminals show (``idle_since``), keeps a server that protects itself (work now, or
    activity within its limit: the reason names the evidence), and says why the hub's
    record must decide when the probe failed or found nothing to measure (``failed``).
    A busy kernel keeps the server for at most ``busy_timeout`` seconds since its oldest
    busy kernel last sent a message (0: no limit), as ``--probe-kernels`` does.

    ``limit_of`` gives the idle limit that applies to a server (the rules know the
    per-group, per-profile and per-server limits); ``started_of`` the hub's start time.
    """

    name = "server"
    asks = Asks.RUNNING

    def __init__(
        self,
        prober: Callable[[ProbeTarget], ServerActivity],
        *,
        settings: ActivitySettings,
        limit_of: Callable[[Target], float | None],
        started_of: Callable[[Target], datetime | None],
        busy_timeout: float = 0.0,
    ) -> None:
        self._prober = prober
        self._settings = settings
        self._limit_of = limit_of
        self._started_of = started_of
        self._busy_timeout = busy_timeout
        self._expected = ExpectedServers()

    def wanted(self, target: Target) -> bool:
        """Only servers old enough to have been idle for their limit."""
        limit = self._limit_of(target)
        if not limit:
            return False
        return target.age_seconds is None or target.age_seconds >= limit

    def expect(self, targets: Sequence[Target]) -> None:
        self._expected.expect(targets)

    def would_gather(self, target: Target) -> Finding | None:
        """Dry run: nothing is sent; the report says the server would have been probed."""
        return Finding(self.name, detail="would_probe")

    def gather(self, target: Target, now: datetime) -> Finding:
        activity = self._activity(target)
        limit = self._limit_of(target) or 0.0
        found = judge_activity(
            activity,
            now=now,
            started=self._started_of(target),
            timeout=limit,
            settings=self._settings,
        )
        hub = target.last_activity
        if hub is not None and limit and (now - hub).total_seconds() < limit:
            found = replace(found, hub_called_active=True)
        level = logging.WARNING if activity.failed else logging.INFO
        log.log(level, "server activity of %s: %s", target.label, found.reason)
        return as_finding(self.name, found, activity, now, self._busy_timeout)

    def _activity(self, target: Target) -> ServerActivity:
        """The probe's result; any exception while probing is a failed probe of this
        server only (named by its type: its text may quote what a server sent)."""
        try:
            return self._prober(self._expected.target_for(target))
        except Exception as error:  # the structural boundary: one server, one decision
            return ServerActivity.failed_with(
                f"unexpected {type(error).__name__} while probing", attempts=0
            )


def as_finding(
    source: str,
    found: ActivityFinding,
    activity: ServerActivity,
    now: datetime,
    busy_timeout: float,
) -> Finding:
    """The seam's ``Finding`` for what the server's activity showed."""
    keep = found.reason if found.protected_by is not None else None
    if found.busy_since is not None and busy_timeout:
        busy_for = (now - found.busy_since).total_seconds()
        if busy_for >= busy_timeout:
            keep = None  # busy past --busy-timeout: the limit that bounds busy kernels
    return Finding(
        source,
        keep=keep,
        idle_since=found.idle_since,
        busy=found.working,
        failed=found.fell_back,
        attempts=activity.attempts,
        detail=found,
    )
