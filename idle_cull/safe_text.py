"""Text made safe to print: names from the hub cannot forge lines or restyle terminals,
and a URL never shows its password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["printable", "public_url", "url_credentials", "without_credentials"]

CREDENTIALS_SHOWN_AS = "***@"
_AUTHORITY = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``).

    User and server names come from the hub, which accepts a line break in a name; such a
    name must not forge a log or report line or send escape sequences to a terminal.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def url_credentials(url: str) -> str:
    """The ``user:password@`` part of ``url`` as written in it; empty when there is none.

    Never raises: a URL that ``urlsplit`` refuses (an unbalanced ``[``) is being reported
    as wrong, and its password must stay hidden in that very message.
    """
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        match = _AUTHORITY.match(url)
        netloc = match.group(1) if match else ""
    userinfo, at, _host = netloc.rpartition("@")
    return f"{userinfo}@" if at and userinfo else ""


def without_credentials(text: str, url: str) -> str:
    """``text`` with ``url``'s ``user:password@`` shown as ``***@`` wherever it occurs.

    The one rule for showing a URL: ``public_url`` applies it to the URL itself, and the
    logs and reports apply it to messages that quote the URL (the hub client's errors).
    """
    credentials = url_credentials(url)
    return text.replace(credentials, CREDENTIALS_SHOWN_AS) if credentials else text


def public_url(url: str) -> str:
    """The URL without any ``user:password@`` part: safe to print, log or push."""
    return without_credentials(url, url)
