"""Server activity as evidence (issue 24): what a probe of a server read, and what it means.

The data a probe of a single-user server brings back (``evidence.server_activity`` reads
it) and the pure verdict on it: how long the server has been idle by its own kernels and
terminals, what work protects it now (a busy kernel, CPU above a threshold), or why the
hub's record must decide (a failed probe; a server without kernels or terminals, unless
``NoSessions.IDLE``). No I/O and no clock: the activity, ``now``, the server's start and
the limit come in, a finding with the sentence for the log and the report comes out.

The timestamps are the server's clock. A server whose clock is behind this machine's
would look idle for longer than it is, so the probe compares the kernel list's ``Date``
header with this machine's clock, and ``on_this_clock`` corrects a difference beyond the
header's resolution (and the reason says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum

from idle_cull.durations import SKEW_WORTH_MENTIONING, format_duration

__all__ = [
    "CPU_WINDOW",
    "PROTECTIONS",
    "ActivityFinding",
    "ActivitySettings",
    "Cpu",
    "KernelSeen",
    "NoSessions",
    "ServerActivity",
    "TerminalSeen",
    "clock_note",
    "judge_activity",
    "on_this_clock",
]

# what can protect a server, as ActivityFinding.protected_by names it
PROTECTIONS = ("busy_kernel", "cpu", "kernel", "terminal", "started")
CPU_WINDOW = 2.0  # seconds between the two metrics calls: psutil compares with the last call


class NoSessions(str, Enum):
    """What a server with neither kernels nor terminals is (module docstring)."""

    HUB = "hub"  # the hub's record decides (conservative default)
    IDLE = "idle"  # idle since the server started (SageMaker's reading)


@dataclass(frozen=True)
class KernelSeen:
    name: str  # kernel spec, e.g. python3
    last_activity: datetime  # its newest IOPub message (execution, output)
    busy: bool  # execution_state == "busy"
    connections: int  # open websockets: reported, never counted as activity


@dataclass(frozen=True)
class TerminalSeen:
    name: str  # "1", "2", ...
    last_activity: datetime  # its newest input or output


@dataclass(frozen=True)
class Cpu:
    """``percent`` of one core (200 = two cores) over ``window`` seconds, or why none."""

    percent: float | None
    window: float
    missing: str | None = None  # why there is no figure


@dataclass(frozen=True)
class ServerActivity:
    """What one probe read from a server; ``failure`` set means the hub's record decides."""

    kernels: tuple[KernelSeen, ...] = ()
    terminals: tuple[TerminalSeen, ...] = ()
    terminals_enabled: bool = True  # False: /api/terminals answered 404
    cpu: Cpu | None = None  # None: not asked (no CPU threshold)
    failure: str | None = None
    attempts: int = 1  # requests sent to the server (retries and CPU readings included)
    seconds: float | None = None
    # How far the server's clock is behind this machine's (its Date header against this
    # machine's clock when the kernel list arrived), in seconds; None: no usable header.
    server_behind: float | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @classmethod
    def failed_with(cls, reason: str, attempts: int = 1) -> ServerActivity:
        return cls(failure=reason, attempts=attempts)


@dataclass(frozen=True)
class ActivitySettings:
    """How server evidence is read: the CPU threshold (percent of one core; ``None``:
    off), its window, and what a server without kernels or terminals is."""

    cpu_threshold: float | None = None
    cpu_window: float = CPU_WINDOW
    no_sessions: NoSessions = NoSessions.HUB


@dataclass(frozen=True)
class ActivityFinding:
    """What the server's own evidence says, in the seam's terms.

    ``idle_since`` is ``None`` when this source has no opinion and the hub's record must
    decide (``fell_back`` says why). ``working`` names work happening now (a busy kernel,
    CPU), which protects the server whatever the timestamps say; ``protected_by`` is the
    kind of work that keeps it (``busy_kernel``, ``cpu``, ``kernel``, ``terminal``) or
    ``None`` when it is idle for the limit.
    """

    source: str  # "server", or "hub" when the hub's record decides
    idle_since: datetime | None
    reason: str
    working: str | None = None
    protected_by: str | None = None
    fell_back: str | None = None  # a failed probe or a server without sessions
    busy_since: datetime | None = field(default=None, compare=False)
    hub_called_active: bool = False  # the hub's record was within the limit at the probe

    @property
    def word(self) -> str:
        """The report's word: ``idle``, ``protected_<kind>``, or ``fell_back``."""
        if self.fell_back is not None:
            return "fell_back"
        return "idle" if self.protected_by is None else f"protected_{self.protected_by}"


def judge_activity(
    activity: ServerActivity,
    *,
    now: datetime,
    started: datetime | None,
    timeout: float,
    settings: ActivitySettings,
) -> ActivityFinding:
    """The server's idleness from its own evidence, against the limit ``timeout``.

    ``started`` is the hub's record of when the server started: idle time is never
    measured from before it. Busy kernels are reported as work with the time the oldest
    of them last sent a message; how long they may protect a server (``--busy-timeout``)
    is the rules' business, not this source's. The server's timestamps are first put on
    this machine's clock (``on_this_clock``), so ``now`` is this machine's.
    """
    if activity.failure is not None:
        return _fallback(f"probe failed ({activity.failure})")
    note = clock_note(activity)
    found = _judge_on_this_clock(on_this_clock(activity), now, started, timeout, settings)
    return replace(found, reason=found.reason + note) if note else found


def _judge_on_this_clock(
    activity: ServerActivity,
    now: datetime,
    started: datetime | None,
    timeout: float,
    settings: ActivitySettings,
) -> ActivityFinding:
    busy = [k for k in activity.kernels if k.busy]
    if busy:
        since = min(k.last_activity for k in busy)
        more = f" (+{len(busy) - 1} more busy)" if len(busy) > 1 else ""
        return ActivityFinding(
            source="server",
            idle_since=None,
            reason=f"protected: kernel {busy[0].name} busy since {since:%Y-%m-%dT%H:%M:%SZ}{more}",
            working="busy_kernel",
            protected_by="busy_kernel",
            busy_since=since,
        )
    cpu = _cpu_work(activity.cpu, settings.cpu_threshold)
    if cpu is not None:
        return ActivityFinding(
            source="server",
            idle_since=None,
            reason=f"protected: {cpu}",
            working="cpu",
            protected_by="cpu",
        )
    return _by_timestamps(activity, now, started, timeout, settings.no_sessions)


def on_this_clock(activity: ServerActivity) -> ServerActivity:
    """The server's timestamps moved onto this machine's clock, when the two disagree
    by more than the Date header's resolution: a server whose clock is behind would
    otherwise look idle for longer than it is."""
    behind = activity.server_behind
    if behind is None or abs(behind) < SKEW_WORTH_MENTIONING:
        return activity
    shift = timedelta(seconds=behind)
    return replace(
        activity,
        kernels=tuple(replace(k, last_activity=k.last_activity + shift) for k in activity.kernels),
        terminals=tuple(
            replace(t, last_activity=t.last_activity + shift) for t in activity.terminals
        ),
        server_behind=0.0,
    )


def clock_note(activity: ServerActivity) -> str:
    """``; the server's clock is 5m behind this machine's (corrected)`` when
    ``on_this_clock`` corrects for it, else an empty string."""
    behind = activity.server_behind
    if behind is None or abs(behind) < SKEW_WORTH_MENTIONING:
        return ""
    direction = "behind" if behind > 0 else "ahead of"
    return (
        f"; the server's clock is {format_duration(abs(behind))} {direction} "
        "this machine's (corrected)"
    )


def _fallback(why: str) -> ActivityFinding:
    return ActivityFinding(
        source="hub", idle_since=None, reason=f"{why}; the hub's record decides", fell_back=why
    )


def _cpu_work(cpu: Cpu | None, threshold: float | None) -> str | None:
    if threshold is None or cpu is None or cpu.percent is None or cpu.percent < threshold:
        return None
    return f"processes used {cpu.percent:.0f}% CPU over {format_duration(cpu.window)}"


def _by_timestamps(
    activity: ServerActivity,
    now: datetime,
    started: datetime | None,
    timeout: float,
    no_sessions: NoSessions,
) -> ActivityFinding:
    newest = _newest(activity)
    if newest is None:
        if no_sessions is NoSessions.HUB or started is None:
            return _fallback("no kernels or terminals")
        since, what, kind = started, "started, no kernels or terminals since", None
    else:
        since, what, kind = newest
        if started is not None and started > since:
            since = started
    idle = (now - since).total_seconds()
    ago = format_duration(max(idle, 0.0))
    if idle < timeout:
        return ActivityFinding(
            source="server",
            idle_since=since,
            reason=f"protected: {what} {ago} ago (< {format_duration(timeout)})",
            protected_by=kind or "started",
        )
    return ActivityFinding(
        source="server",
        idle_since=since,
        reason=f"idle {ago} (>= {format_duration(timeout)}) according to the server "
        f"(newest: {what})",
    )


def _newest(activity: ServerActivity) -> tuple[datetime, str, str] | None:
    """The newest kernel or terminal activity: (when, what it was, its kind)."""
    seen: list[tuple[datetime, str, str]] = [
        (k.last_activity, f"kernel {k.name} last sent a message", "kernel")
        for k in activity.kernels
    ]
    seen += [
        (t.last_activity, f"terminal {t.name} had input or output", "terminal")
        for t in activity.terminals
    ]
    return max(seen, key=lambda item: item[0], default=None)
