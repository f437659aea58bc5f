"""Counts in messages, said as a person would: ``1 server``, ``2 servers``.

Every log line, error and report text that puts a number before a noun goes through
``counted``, so that none says ``1 servers``. Machine-read values (the ``summary:`` line's
``key=value`` fields, the JSON report, metrics) carry bare numbers and never use it.
"""

from __future__ import annotations

__all__ = ["counted"]


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, the noun in the plural unless the count is one.

    ``plural`` is for nouns that do not just take an ``s``; the last word of a phrase
    (``user record``) is the one made plural.
    """
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
