"""What requests takes from the environment (proxies, a CA bundle), checked up front.

A malformed ``HTTP_PROXY`` or a ``REQUESTS_CA_BUNDLE`` naming a missing file used to
surface on the first request as an obscure ``InvalidURL`` or ``OSError`` (exit 3, or a
traceback); both are configuration errors, refused here before anything is sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from idle_cull.errors import ConfigError
from idle_cull.safe_text import public_url

__all__ = ["check_ca_bundle", "check_proxies"]

PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


def check_proxies(proxies: Mapping[str, str]) -> None:
    """Every proxy URL requests would use must parse; raises ``ConfigError``."""
    for scheme, proxy in proxies.items():
        if scheme == "no" or not proxy:  # NO_PROXY is a host list, not a URL
            continue
        shown = public_url(proxy)
        problem = f"the proxy {shown!r} for {scheme} (from {scheme.upper()}_PROXY or ALL_PROXY)"
        try:
            parts = parse_url(proxy if "://" in proxy else f"http://{proxy}")
            valid = parts.scheme in PROXY_SCHEMES and bool(parts.host) and proxy == proxy.strip()
        except (LocationParseError, ValueError):
            valid = False
        if not valid:
            raise ConfigError(f"{problem} is not a valid proxy URL; fix or unset it")


def check_ca_bundle(verify: object, url: str) -> None:
    """A CA bundle from ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` must exist for https."""
    if not url.startswith("https://") or not isinstance(verify, str):
        return
    if not os.path.exists(verify):
        raise ConfigError(
            f"the CA bundle {verify} (from REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE) does not "
            "exist; fix or unset the variable"
        )
