"""Busy kernels: what a probe of a server found, and the pure decision it leads to.

A kernel running a long computation that prints nothing sends no message, so neither the
single-user server nor the hub sees activity, and an idle culler stops it mid-work. With
``--probe-kernels`` a server the pass has decided to stop is asked first (``kernels.py``),
and this module decides what the answer means: keep it while a kernel is busy, for at
most ``--busy-timeout``; keep it when the probe failed (fail closed), unless
``--probe-failure=cull``; and never let either override ``--max-age``.

No I/O and no clock here: the probe's result, the server record, "now" and the limits
come in, a verdict with the sentence for the log and the report comes out.

Why the busy limit is not measured from the hub's ``last_activity`` alone: the probe goes
through the hub's proxy, and configurable-http-proxy counts every successful proxied
request as activity of the route, which the hub copies into the server's
``last_activity`` at its next activity poll (``no_track_activity`` only keeps the
single-user server's own record still; measured in ``tests/integration/test_kernels.py``).
So each probe of a busy server moves the hub's record, and a limit measured from it
alone would never run out. The busy kernels' own ``last_activity`` (the last message a
kernel sent: for a silent cell, the moment it started) is not moved by the probe; the
limit counts from the older of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from idle_cull.durations import format_duration

__all__ = [
    "BUSY",
    "BusyKernel",
    "ProbeLimits",
    "ProbeResult",
    "ProbeVerdict",
    "Verdict",
    "decide_probed",
    "probe_wanted",
]

BUSY = "busy"  # the only execution_state that protects a server ("starting" can stick)


@dataclass(frozen=True)
class ProbeLimits:
    """How far busy kernels and failed probes may protect a server from being stopped."""

    busy_timeout: float = 86400.0  # 0: no limit (--max-age still applies)
    probe_failure: str = "keep"  # --probe-failure: "cull" makes an unanswered probe mean "stop"

    @property
    def cull_on_failure(self) -> bool:
        return self.probe_failure == "cull"


@dataclass(frozen=True)
class BusyKernel:
    """A kernel that reported ``execution_state: busy``."""

    name: str  # its kernel spec, e.g. ``python3``
    since: datetime | None  # its last_activity: the last message it sent, if reported


@dataclass(frozen=True)
class ProbeResult:
    """What ``GET {server}/api/kernels`` answered: kernels, or why there was no answer."""

    kernels: int = 0  # how many kernels the server runs
    busy: tuple[BusyKernel, ...] = ()
    failure: str | None = None  # None: the server answered with its kernel list
    attempts: int = 1
    seconds: float | None = None  # how long the probe took, retries included

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @classmethod
    def failed_with(cls, reason: str, attempts: int = 1) -> ProbeResult:
        return cls(failure=reason, attempts=attempts)


class Verdict(str, Enum):
    """What the probe means for a server the pass decided to stop."""

    STOP = "stop"  # not busy, or protected long enough
    KEEP_BUSY = "busy"  # a kernel is busy: kept for this pass
    KEEP_FAILED = "failed"  # the probe failed: kept for this pass (fail closed)


@dataclass(frozen=True)
class ProbeVerdict:
    verdict: Verdict
    reason: str

    @property
    def keeps(self) -> bool:
        return self.verdict is not Verdict.STOP


def probe_wanted(age_seconds: float | None, max_age: float) -> bool:
    """Whether a server about to be stopped is worth probing: not when ``--max-age`` stops
    it, which busy kernels never override (and a probe would be a request for nothing)."""
    return not (max_age and age_seconds is not None and age_seconds >= max_age)


def decide_probed(
    probe: ProbeResult,
    last_activity: datetime | None,
    now: datetime,
    limits: ProbeLimits,
) -> ProbeVerdict:
    """Stop or keep a server the pass had decided to stop, given what its probe found.

    ``last_activity`` is the hub's record of the server (``started`` when it has none).
    Busy kernels protect it until ``busy_timeout`` has passed since the older of that
    record and the newest message of a busy kernel (see the module docstring); a failed
    probe protects it, under the same limit measured from the hub's record, unless
    failures are to be culled.
    """
    if probe.failure is not None:
        return _decide_failed(probe.failure, last_activity, now, limits)
    if not probe.busy:
        found = f"none of its {probe.kernels} kernel(s) busy" if probe.kernels else "no kernels"
        return ProbeVerdict(Verdict.STOP, found)
    described = describe_busy(probe.busy)
    since = busy_reference(probe.busy, last_activity)
    if since is None or not limits.busy_timeout:
        return ProbeVerdict(Verdict.KEEP_BUSY, f"{described}; kept while busy")
    protected = (now - since).total_seconds()
    if protected >= limits.busy_timeout:
        return ProbeVerdict(
            Verdict.STOP,
            f"{described}, but busy {_compared(protected, '>=', limits.busy_timeout)}",
        )
    return ProbeVerdict(
        Verdict.KEEP_BUSY, f"{described}; busy {_compared(protected, '<', limits.busy_timeout)}"
    )


def _decide_failed(
    failure: str, last_activity: datetime | None, now: datetime, limits: ProbeLimits
) -> ProbeVerdict:
    if limits.cull_on_failure:
        return ProbeVerdict(Verdict.STOP, f"probe failed ({failure}); --probe-failure=cull")
    if limits.busy_timeout and last_activity is not None:
        idle = (now - last_activity).total_seconds()
        if idle >= limits.busy_timeout:
            return ProbeVerdict(
                Verdict.STOP,
                f"probe failed ({failure}), and idle {_compared(idle, '>=', limits.busy_timeout)}",
            )
    return ProbeVerdict(
        Verdict.KEEP_FAILED, f"probe failed ({failure}); kept (--probe-failure=keep)"
    )


def busy_reference(busy: tuple[BusyKernel, ...], last_activity: datetime | None) -> datetime | None:
    """Since when busy kernels have protected the server, as far as known: the older of
    the hub's record and the newest message of a busy kernel (module docstring)."""
    sent = [kernel.since for kernel in busy if kernel.since is not None]
    candidates = [t for t in (last_activity, max(sent, default=None)) if t is not None]
    return min(candidates, default=None)


def describe_busy(busy: tuple[BusyKernel, ...]) -> str:
    """``kernel python3 busy since 2026-11-26T10:00:00Z`` (and ``+2 more``)."""
    dated = [(k.since, k) for k in busy if k.since is not None]
    first = min(dated, key=lambda pair: pair[0])[1] if dated else busy[0]
    since = f" since {first.since:%Y-%m-%dT%H:%M:%SZ}" if first.since else ""
    more = f" (+{len(busy) - 1} more busy)" if len(busy) > 1 else ""
    return f"kernel {first.name} busy{since}{more}"


def _compared(seconds: float, relation: str, limit: float) -> str:
    return f"{format_duration(seconds)} {relation} {format_duration(limit)} (--busy-timeout)"
