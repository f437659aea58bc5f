"""Where to reach a single-user server: through the proxy, or at its route's target.

configurable-http-proxy records route activity for every request it forwards with a
status below 300, and for any data passing through (``configproxy.js``:
``updateLastActivity``; there is no opt-out), and the hub copies that activity into the
server's ``last_activity`` at its next activity poll (``last_activity_interval``). So a
probe through the proxy makes the probed server look active in the hub's record, which
is what a failed probe falls back to, what ``--busy-timeout`` is measured from, and what
the hub's admin page shows.

Where the operator allows the culler to read the proxy's routing table (its REST API and
``CONFIGPROXY_AUTH_TOKEN``), probes go straight to each route's target instead, and the
proxy sees nothing. That needs the culler to reach the servers' own addresses (pod IPs
on Kubernetes, where a network policy may have to allow it) and is for http targets:
with ``internal_ssl`` the targets need the hub's internal CA and client certificate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from idle_cull.errors import IdleCullError
from idle_cull.transport import BoundedTransport, RequestBounds, read_json

__all__ = [
    "MAX_ROUTES_ANSWER",
    "RoutesUnavailable",
    "fetch_routes",
    "read_routes",
    "route_locator",
    "through_proxy",
]

MAX_ROUTES_ANSWER = 64 * 1024 * 1024  # a routing table of 100,000 servers is about 20 MB


def through_proxy(proxy_url: str) -> Callable[[str], str | None]:
    """Locates servers behind the proxy's public URL; only plain paths on that origin
    (a server url like ``//elsewhere/`` would send the token to another host)."""
    origin = proxy_url.rstrip("/")
    netloc = urlsplit(origin).netloc

    def locate(server_url: str) -> str | None:
        if not server_url.startswith("/") or server_url.startswith("//"):
            return None
        url = f"{origin}{server_url.rstrip('/')}/"
        parts = urlsplit(url)
        if parts.netloc != netloc or parts.query or parts.fragment:
            return None
        return url

    return locate


def read_routes(body: bytes) -> dict[str, str]:
    """configurable-http-proxy's ``GET /api/routes``: route prefix -> target origin.

    Only http(s) targets without a path are kept (JupyterHub's routes to single-user
    servers have none); anything else is left out, and those servers are then not found.
    """
    try:
        table: Any = read_json(body)
    except ValueError:
        raise RoutesUnavailable("the proxy's routing table is not JSON") from None
    if not isinstance(table, dict):
        raise RoutesUnavailable("the proxy's routing table is not an object")
    routes: dict[str, str] = {}
    for prefix, route in table.items():
        target = route.get("target") if isinstance(route, dict) else None
        if isinstance(target, str) and _plain_origin(target):
            routes[prefix.rstrip("/") + "/"] = target.rstrip("/")
    return routes


def _plain_origin(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a port out of range)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.path.strip("/") == ""
        and not parts.query
        and not parts.fragment
        and not parts.username
    )


class RoutesUnavailable(IdleCullError):
    """The proxy's routing table could not be read; the message says why and what to check."""


def fetch_routes(api_url: str, auth_token: str, *, timeout: float = 10.0) -> dict[str, str]:
    """The proxy's routes (``read_routes``) from its REST API at ``api_url``.

    ``auth_token`` is the proxy's ``CONFIGPROXY_AUTH_TOKEN``: it goes to ``api_url`` only.
    One bounded request, no retry; raises ``RoutesUnavailable``.
    """
    session = requests.Session()
    session.trust_env = False
    transport = BoundedTransport(
        session, RequestBounds(whole=timeout, connect=timeout, max_bytes=MAX_ROUTES_ANSWER)
    )
    url = api_url.rstrip("/") + "/api/routes"
    try:
        response = transport.request("GET", url, headers={"Authorization": f"token {auth_token}"})
    except requests.RequestException as error:
        raise RoutesUnavailable(
            f"cannot read the proxy's routes at {url} ({type(error).__name__}); "
            "check --proxy-api-url and that this machine may reach it"
        ) from None
    finally:
        transport.close()
    if response.status_code != 200:
        raise RoutesUnavailable(
            f"the proxy's routes at {url} answered HTTP {response.status_code}; "
            "check --proxy-api-url and CONFIGPROXY_AUTH_TOKEN"
        )
    return read_routes(response.content)


def route_locator(routes: Mapping[str, str]) -> Callable[[str], str | None]:
    """Locates servers at their route's target: ``/user/ann/`` -> ``http://10.0.0.5:8888/user/ann/``
    (the proxy forwards the whole path, so the target serves it under the same prefix)."""

    def locate(server_url: str) -> str | None:
        prefix = server_url.rstrip("/") + "/"
        target = routes.get(prefix)
        if target is None or not prefix.startswith("/") or prefix.startswith("//"):
            return None
        return f"{target}{prefix}"

    return locate
