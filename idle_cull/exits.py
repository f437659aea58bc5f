"""The exit statuses: each one's name, number and meaning, written here and nowhere else.

A scheduler acts on the number, a person reads the meaning. ``--help`` renders its epilog
from this table, the text report its closing line, and the docs' exit-status page is
generated from it, so the three cannot drift apart.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitStatus", "exit_status_help"]


class ExitStatus(IntEnum):
    """Exit statuses a scheduler can act on; ``meaning`` is the one-line explanation."""

    meaning: str

    def __new__(cls, value: int, meaning: str) -> ExitStatus:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    OK = 0, "the pass finished; every action succeeded, is pending, or there was nothing to do"
    ACTION_FAILED = 1, "some stop or delete failed after retries, or the pass was cut short"
    USAGE = 2, "usage or configuration error; nothing was changed on the hub"
    HUB_UNUSABLE = (
        3,
        "users could not be listed (or, with --probe-via=route-target, the proxy's routes "
        "read); nothing was culled",
    )
    CAP_EXCEEDED = 4, "the plan exceeded --max-culls or --max-cull-fraction; nothing was culled"
    OUTPUT_FAILED = 5, "the pass went well, but the report or metrics could not be delivered"
    CLOCKS_DISAGREE = 6, "the hub's clock and this machine's disagree; nothing was culled"
    LISTING_INCOMPLETE = (
        7,
        "the hub listed fewer users than it counts, or did not paginate; nothing was culled",
    )
    LOCKED = 75, "another pass holds --lock-file; this one did nothing"


def exit_status_help() -> str:
    """The ``--help`` epilog: one line per status (``\\b`` keeps click from rewrapping)."""
    lines = ["\b", "Exit status:"]
    lines += [f"  {int(status):<3} {status.meaning}" for status in ExitStatus]
    lines.append("The deadline or SIGTERM/SIGINT cuts a pass short; 75 is EX_TEMPFAIL.")
    return "\n".join(lines) + "\n"
