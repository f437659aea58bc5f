"""Text from the hub made safe to print: names cannot forge lines or restyle terminals."""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``).

    User and server names come from the hub, which accepts a line break in a name; such a
    name must not forge a log or report line or send escape sequences to a terminal.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
