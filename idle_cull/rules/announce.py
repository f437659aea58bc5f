"""Which upcoming culls to announce in this pass, so that each user hears of one once.

idle-cull keeps no state between passes, so "already warned" cannot be remembered; it is
computed. A server's predicted cull time (its last activity plus its idle limit) does not
move while it stays idle, and neither does the moment its warning window opens
(``cull_at - window``). The scheduler runs a pass every ``interval`` seconds; pass times
are rounded down to that grid (``floor(now / interval) * interval``, the time the pass
was scheduled for), and a pass announces exactly the culls whose window opened since the
previous grid point, ``(slot - interval, slot]``. Every opening falls in exactly one such
slot, so with one pass per slot each cull is announced once, whatever the jitter of the
passes inside their slot.

What this cannot promise (docs/how-to/users-in-the-loop.md says it to operators):

- a slot without a pass (the scheduler skipped it, the hub was down, the lock was held,
  a pass ran past its slot's end) announces nothing for the culls whose window opened in
  it: a missed warning;
- two passes in one slot (a manual run, a timer not on the grid) announce those culls
  twice: a doubled warning;
- a user who is active again and then idle again gets a new cull time, and a new warning
  for it; that is a new cull, not a repeat.

The grid is counted from the Unix epoch, so an interval that divides a day (10m, 15m,
1h) with a calendar schedule (cron ``*/10``, systemd ``OnCalendar=*:0/10``) puts one pass
in each slot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from idle_cull.rules.policy import Upcoming

__all__ = ["Notice", "announce_now", "cull_time", "notices_due", "slot_of"]


@dataclass(frozen=True)
class Notice:
    """One upcoming cull to tell a user about: which server, when, and why."""

    user: str
    server: str  # "" for the default server
    cull_at: datetime
    idle_seconds: float
    limit_seconds: float
    rule: str  # the limit that applies, e.g. "--timeout" or "profile gpu"

    @property
    def label(self) -> str:
        return self.user if not self.server else f"{self.user}/{self.server}"


def cull_time(upcoming: Upcoming, now: datetime) -> datetime:
    """When the server is stopped if it stays idle: its last activity plus its limit.

    Counted from the record, not from ``now``, so every pass predicts the same moment.
    """
    if upcoming.last_activity is not None:
        return upcoming.last_activity + timedelta(seconds=upcoming.limit_seconds)
    return now + timedelta(seconds=upcoming.seconds_left)


def slot_of(now: datetime, interval: float) -> float:
    """The grid point (epoch seconds) this pass belongs to: the time it was scheduled for."""
    return math.floor(now.timestamp() / interval) * interval


def announce_now(cull_at: datetime, now: datetime, window: float, interval: float) -> bool:
    """Whether the warning window of a cull at ``cull_at`` opened in this pass's slot.

    ``window`` is ``--warn-within``, ``interval`` the scheduling interval (both seconds,
    positive). The window must be at least the interval, or a cull could fall between two
    passes unannounced; the options check that.
    """
    slot = slot_of(now, interval)
    opens = cull_at.timestamp() - window
    return slot - interval < opens <= slot and cull_at > now


def notices_due(
    upcoming: Iterable[Upcoming], now: datetime, window: float, interval: float
) -> list[Notice]:
    """The notices this pass sends: the upcoming culls whose window opened in its slot."""
    due: list[Notice] = []
    for item in upcoming:
        cull_at = cull_time(item, now)
        if announce_now(cull_at, now, window, interval):
            due.append(
                Notice(
                    user=item.user,
                    server=item.server,
                    cull_at=cull_at,
                    idle_seconds=item.idle_seconds,
                    limit_seconds=item.limit_seconds,
                    rule=item.rule,
                )
            )
    return due
