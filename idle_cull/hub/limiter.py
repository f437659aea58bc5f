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
from dataclasses import dataclass

__all__ = ["InFlightLimiter", "LimiterTuning"]


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

    @property
    def limit(self) -> int:
        """Actions allowed in flight now: at least 1, at most the ceiling."""
        return int(self._limit)

    def probe_result(self, latency: float | None, in_flight: int, *, waiting: bool) -> None:
        """Adapt to one probe's latency (``None``: the probe failed, which counts as slow).

        ``waiting``: some actions have not started yet (otherwise the limit is not in use).
        """
        if latency is None or latency > self.tuning.slow:
            self._limit = max(1.0, self._limit * self.tuning.decrease)
        elif latency < self.tuning.quick and waiting and in_flight >= self.limit - 1:
            self._limit = min(float(self.ceiling), math.floor(self._limit) + 1.0)
        self.highest = max(self.highest, self.limit)

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
