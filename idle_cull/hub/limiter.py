"""How many actions a pass keeps in flight: as many as the hub can take without making
everyone else wait.

JupyterHub serves every request on one event loop. While it *waits* (a KubeSpawner stop
waits seconds for a pod), more stops in flight finish the pass sooner and cost nobody
anything; while it *computes* (instant stops), every stop in flight beyond one or two
only queues on that loop, in front of users logging in and single-user servers checking
their tokens. No fixed ``--concurrency`` is right for both, so the pass measures the
hub's responsiveness as it goes: every 200 ms the runner times a cheap, unauthenticated
``GET /hub/api/`` (what any other request waits for), and this limiter turns those
timings into a limit, additive increase and multiplicative decrease as in TCP:

- a quick probe (the loop had room) raises the limit by one, but only when the limit is
  in use (actions are waiting, and all slots but at most one are taken: pacing fills
  the last one): a pass that cannot fill its slots learns nothing about the hub;
- a slow probe (others are waiting) cuts it by a quarter, down to one;
- in between, it holds.

``--concurrency`` stays the ceiling: never more requests in flight than that.

Starts are also paced, spread evenly over the typical action's duration (limit L, actions
taking T seconds: one start every T / L seconds at most). Without pacing, stops that all
take the same time (a spawner's fixed grace period) start and finish in lockstep, and the
hub gets their work in bursts of L at once.

The class is a pure state machine: every input carries its own time, nothing here sleeps,
locks or touches the network, so the arithmetic is tested without a hub or a clock. The
runner calls it from the one thread that dispatches actions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SURVEY_STALLS", "SURVEY_TUNING", "InFlightLimiter", "LimiterTuning", "StallRelease"]


@dataclass(frozen=True)
class LimiterTuning:
    """The limiter's constants; the defaults come from the hub-impact benchmark.

    ``quick`` and ``slow`` are probe latencies in seconds: below ``quick`` the hub had room,
    above ``slow`` others were waiting. ``probe_every`` is how often the runner probes
    while actions are in flight, ``smoothing`` the weight of a new action duration in the
    moving average that sets the pacing.
    """

    quick: float = 0.005
    slow: float = 0.030
    decrease: float = 0.75
    probe_every: float = 0.2
    smoothing: float = 0.2


class InFlightLimiter:
    """The number of actions that may be in flight, adapted to the hub's probe latency."""

    def __init__(self, ceiling: int, tuning: LimiterTuning | None = None, initial: int = 1) -> None:
        if ceiling < 1:
            raise ValueError(f"the ceiling must be at least 1, got {ceiling}")
        self.ceiling = ceiling
        self.tuning = tuning or LimiterTuning()
        self._limit = float(min(max(initial, 1), ceiling))
        self._typical: float | None = None  # moving average of action durations, seconds
        self._last_start: float | None = None
        self._next_probe: float | None = None
        self.highest = int(self._limit)
        self._last_latency: float | None = None
        self._probed = False

    @property
    def limit(self) -> int:
        """Actions allowed in flight now: at least 1, at most the ceiling."""
        return int(self._limit)

    def probe_result(self, latency: float | None, in_flight: int, *, waiting: bool) -> None:
        """Adapt to one probe's latency (``None``: the probe failed, which counts as slow).

        ``waiting``: some actions have not started yet (otherwise the limit is not in use).
        """
        self._probed, self._last_latency = True, latency
        if latency is None or latency > self.tuning.slow:
            self._limit = max(1.0, self._limit * self.tuning.decrease)
        elif latency < self.tuning.quick and waiting and in_flight >= self.limit - 1:
            self._limit = min(float(self.ceiling), math.floor(self._limit) + 1.0)
        self.highest = max(self.highest, self.limit)

    @property
    def hub_slow(self) -> bool:
        """Whether the latest probe was slow (or failed): others are waiting on the hub."""
        if not self._probed:
            return False
        return self._last_latency is None or self._last_latency > self.tuning.slow

    @property
    def typical(self) -> float | None:
        """The moving average of action durations, seconds (``None`` before the first)."""
        return self._typical

    def probe_due(self, now: float) -> bool:
        """Whether the runner should probe now; the first call schedules the first probe."""
        if self._next_probe is None:
            self._next_probe = now + self.tuning.probe_every
            return False
        if now < self._next_probe:
            return False
        self._next_probe = now + self.tuning.probe_every
        return True

    def until_probe(self, now: float) -> float:
        """Seconds until the next probe is due (0 if it is)."""
        if self._next_probe is None:
            return self.tuning.probe_every
        return max(self._next_probe - now, 0.0)

    def action_finished(self, seconds: float) -> None:
        """Fold one action's duration into the average that paces starts."""
        seconds = max(seconds, 0.0)
        if self._typical is None:
            self._typical = seconds
        else:
            weight = self.tuning.smoothing
            self._typical = (1 - weight) * self._typical + weight * seconds

    @property
    def spacing(self) -> float:
        """The shortest time between two starts: the typical duration over the limit."""
        if self._typical is None:
            return 0.0
        return self._typical / self.limit

    def wait_before_start(self, now: float, in_flight: int) -> float | None:
        """Seconds to wait before the next start (0: start now); ``None``: no slot is free."""
        if in_flight >= self.limit:
            return None
        if self._last_start is None or not in_flight:
            return 0.0  # pacing spreads what is in flight; with nothing, there is no burst
        return max(self._last_start + self.spacing - now, 0.0)

    def started(self, now: float) -> None:
        self._last_start = now


@dataclass(frozen=True)
class StallRelease:
    """When a probe of a user's server stops holding one of the hub's slots.

    The survey of ``--activity-source=server`` runs its probes under an ``InFlightLimiter``
    because each costs the hub a token mint and, in the single-user server, a token
    check. A probe of a server that never answers (a deleted pod, a hung server) costs
    the hub nothing while it waits: it has its token, and the server is not asking the
    hub anything. Left in its slot it only stalls the pass (a 5 s ``--probe-timeout`` per
    such server, at most ``--concurrency`` of them at a time). So a probe that has run
    ``after`` seconds (``floor``, or ``factor`` times the typical probe's duration if
    that is longer) is *released*: it no longer counts against the limit, and another
    probe may start in its place. It still runs to its own whole-answer deadline.

    Released only while the hub answers the limiter's probes within its slow mark: when
    the hub itself is slow, a long probe may be waiting on the hub (its token check
    queued behind others), and releasing it would add load exactly when there is too
    much. Never more than ``cap`` released probes at once: each is a thread and a socket,
    so a pass keeps at most ``--concurrency + cap`` of either (100 + 100 at the largest
    ``--concurrency``: well under the common limit of 1024 open files). With U
    unreachable servers the survey then takes about U x ``--probe-timeout`` / ``cap``
    seconds more than it would without them, instead of U x ``--probe-timeout`` /
    ``--concurrency``.

    Pure arithmetic: the caller gives the ages of the probes still counted.
    """

    cap: int = 100
    floor: float = 1.0  # seconds: 10-40x a probe of a healthy server on a busy 2-core hub
    factor: float = 10.0

    def after(self, typical: float | None) -> float:
        """Seconds after which a probe counts as stalled, given the typical duration."""
        return max(self.floor, self.factor * (typical or 0.0))

    def due(
        self, ages: Sequence[float], released: int, typical: float | None, *, hub_slow: bool
    ) -> int:
        """How many of the probes still counted (their ``ages``, seconds) to release now:
        those older than ``after``, oldest first, within the cap (``released`` already
        are)."""
        if hub_slow:
            return 0
        limit = self.after(typical)
        stalled = sum(1 for age in ages if age >= limit)
        return max(0, min(stalled, self.cap - released))

    def next_check(
        self, ages: Sequence[float], released: int, typical: float | None, *, hub_slow: bool
    ) -> float | None:
        """Seconds until the oldest of the probes still counted (``ages``) becomes due;
        ``None`` when there is nothing to wake up for: no such probe, the cap reached,
        or the hub slow (the next responsiveness probe wakes the dispatcher then)."""
        if not ages or hub_slow or released >= self.cap:
            return None
        return max(self.after(typical) - max(ages), 0.0)


# The survey's pacing (issue 24). A probe costs the hub a mint and a token check, about
# 10 ms of its CPU in two short requests, where a stop is one longer one, so the marks
# were measured again on the emulated fleet of ``tests/benchmarks/server_activity.py``
# (README section 7; 2,000 servers, --concurrency 10, 9 passes over two runs): quick/slow
# at 5/30 ms, 10/40 and 20/60 took the same time within the noise (23-27 s on a quiet
# machine), and 5/30 kept others' p99 lowest under load (42 ms against 58-59). What had
# held the survey to one probe at a time was not the marks but a limiter never asked
# (``runner.in_flight``'s ``probe_after_start``). So the survey keeps the actions' marks,
# as a constant of its own that a later measurement can move without touching them.
SURVEY_TUNING = LimiterTuning(quick=0.005, slow=0.030)
SURVEY_STALLS = StallRelease()
