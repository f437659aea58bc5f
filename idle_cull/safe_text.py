"""Text made safe to print: names from the hub cannot forge lines or restyle terminals,
and a URL never shows its password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = [
    "is_unsafe",
    "json_escaped",
    "printable",
    "public_url",
    "url_credentials",
    "without_credentials",
]

CREDENTIALS_SHOWN_AS = "***@"
_AUTHORITY = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")


def is_unsafe(char: str) -> bool:
    """Whether ``char`` must not be written raw where a person or a line reader sees it.

    The one notion of an unsafe character, for text and JSON output alike: whatever
    ``str.isprintable`` refuses. That is every control character (C0 and C1, so ``\\x85``,
    a line break to Unicode, and ``\\x9b``, a terminal's CSI), the line and paragraph
    separators U+2028 and U+2029, the format characters (the bidi overrides and isolates
    such as U+202E, zero-width characters, U+FEFF), surrogates, private-use and
    unassigned code points, and every space but the plain one.
    """
    return not char.isprintable()


def printable(text: str) -> str:
    """``text`` with unsafe characters (``is_unsafe``) escaped (``\\n``, ``\\x1b``, ``\\u202e``).

    User and server names come from the hub, which accepts a line break in a name; such a
    name must not forge a log or report line or send escape sequences to a terminal.
    """
    if text.isprintable():
        return text
    return "".join(repr(c)[1:-1] if is_unsafe(c) else c for c in text)


def json_escaped(document: str) -> str:
    """A JSON text with every unsafe character (``is_unsafe``) written as a ``\\uXXXX`` escape.

    ``json.dumps(..., ensure_ascii=False)`` escapes only C0 controls: U+2028, U+0085 or
    U+202E stay raw, and a reader that splits lines the Unicode way (``str.splitlines``,
    many log shippers) cuts such a line into fragments that do not parse. Outside strings
    JSON is ASCII, so every such character sits inside a string, where the escape reads
    back as the same character. One beyond U+FFFF becomes its UTF-16 surrogate pair, as
    JSON writes it.
    """
    if document.isprintable():
        return document
    return "".join(_json_escape(c) if is_unsafe(c) else c for c in document)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


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
