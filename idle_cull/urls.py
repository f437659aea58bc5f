"""Whether a URL from the settings (``--url``, ``--proxy-url``, ``--pushgateway``) can
really be requested, judged by the libraries that will request it.

A URL that ``urllib.parse`` accepts may still be one that urllib3 refuses at the first
request (a port of 99999, a trailing space), which turned a typo into a pass whose every
probe failed; and one that ``urllib.parse`` refuses (an unbalanced ``[``) raised
``ValueError`` from wherever it was first split, as a traceback. Here both parsers the
request will go through (urllib3's ``parse_url`` and requests' ``prepare_url``, their
public APIs) have their say once, up front, and any refusal is one ``ConfigError`` line.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

import requests
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from idle_cull.errors import ConfigError
from idle_cull.safe_text import public_url

__all__ = ["MAX_PORT", "requestable_url"]

MAX_PORT = 65535


def requestable_url(url: str, option: str, example: str) -> SplitResult:
    """``url`` split, if it is an http(s) URL that urllib3 and requests can request;
    ``ConfigError`` naming ``option`` and giving ``example`` otherwise.

    Port 0 is refused too: urllib3 takes it and requests then silently drops it, so the
    request would go to port 80 or 443.

    The caller's own rules (a path that must end in /hub/api, no credentials) come after,
    on a URL that is known to split.
    """
    shown = public_url(url)
    if any(c.isspace() for c in url) or not url.isprintable():
        raise ConfigError(
            f"{option} {shown!r} contains spaces, a line break or other control characters "
            f"(a trailing newline from a file?); expected e.g. {example}"
        )
    try:
        split = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": an unbalanced [ or ]
        raise ConfigError(
            f"{option} {shown!r} has an unbalanced [ or ] (brackets enclose an IPv6 "
            f"address, e.g. http://[::1]:8081); expected e.g. {example}"
        ) from None
    if split.scheme not in ("http", "https") or not split.netloc:
        raise ConfigError(f"{option} {shown!r} is not an http(s) URL; expected e.g. {example}")
    if not split.hostname:
        raise ConfigError(f"{option} {shown!r} has no host name; expected e.g. {example}")
    try:
        port = split.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= MAX_PORT:
        raise ConfigError(
            f"{option} {shown!r} has an invalid port (1 to {MAX_PORT}); expected e.g. {example}"
        )
    try:
        parse_url(url)
        requests.PreparedRequest().prepare_url(url, None)
    except (LocationParseError, requests.RequestException, ValueError) as error:
        raise ConfigError(
            f"{option} {shown!r} is not a URL that can be requested ({_reason(error, url)}); "
            f"expected e.g. {example}"
        ) from None
    return split


def _reason(error: Exception, url: str) -> str:
    """The parser's reason, without repeating the URL (which may hold a password)."""
    text = str(error).removeprefix("Failed to parse: ").strip()
    if url in text or "@" in text or not text:
        return "a host name or port the HTTP library refuses"
    return text
