"""Where to reach a single-user server (``--probe-via``): through the proxy, or at its
route's target.

configurable-http-proxy records route activity for every request it forwards with a
status below 300, and for any data passing through (``configproxy.js``:
``updateLastActivity``; there is no opt-out), and the hub copies that activity into the
server's ``last_activity`` at its next activity poll (``last_activity_interval``). So a
probe through the proxy makes the probed server look active in the hub's record, which
is what a failed probe falls back to, what ``--busy-timeout`` is measured from, and what
the hub's admin page shows.

Where the operator allows the culler to read the proxy's routing table (its REST API and
``CONFIGPROXY_AUTH_TOKEN``), probes go straight to each route's target instead
(``RouteTargets``), and the proxy sees nothing. The table is read once per pass, before
the first probe. A server is probed at its target only when its route is the one
JupyterHub wrote for that very server (``data.user`` and ``data.server_name``, as
``jupyterhub/proxy.py``'s ``add_user`` writes them) and the target is a plain ``http``
origin: a user's token must never go where the routing table attributes to someone else.
``https`` targets (``internal_ssl``) would need the hub's internal CA and a client
certificate, and are refused per server. Any refusal fails that server's probe only, with
the reason, and the hub's record decides for it (``NoAddress``).

Both locators answer the same question, ``locate(target) -> URL | NoAddress``, and
``Locator.proxy_url`` says whether the requests go through the proxy (whose environment
proxy and CA settings then apply, ``server_api.ServerAPI``) or straight to the servers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from idle_cull.errors import RoutesUnavailable
from idle_cull.evidence.probe_tokens import ProbeTarget
from idle_cull.safe_text import printable
from idle_cull.transport import BoundedTransport, RequestBounds, read_json

__all__ = [
    "MAX_ROUTES_ANSWER",
    "Locator",
    "NoAddress",
    "Route",
    "RouteTargets",
    "RoutesUnavailable",
    "ThroughProxy",
    "fetch_routes",
    "read_routes",
    "route_locator",
    "through_proxy",
]

log = logging.getLogger(__name__)

MAX_ROUTES_ANSWER = 64 * 1024 * 1024  # a routing table of 100,000 servers is about 20 MB
ROUTES_TIMEOUT = 10.0  # seconds for the whole table: a local proxy answers in milliseconds


@dataclass(frozen=True)
class NoAddress:
    """Why a server cannot be probed safely; its probe fails with this reason."""

    reason: str


class Locator(Protocol):
    """Turns a server to probe into the base URL to probe it at (``.../user/ann/``)."""

    @property
    def proxy_url(self) -> str | None:
        """The proxy the requests go through, or ``None`` when they go to the servers."""

    def __call__(self, target: ProbeTarget) -> str | NoAddress: ...


class ThroughProxy:
    """``--probe-via=proxy``: servers behind the proxy's public URL; only plain paths on
    that origin (a server url like ``//elsewhere/`` would send the token to another host)."""

    def __init__(self, proxy_url: str) -> None:
        self.proxy_url: str | None = proxy_url.rstrip("/")
        self._netloc = urlsplit(self.proxy_url).netloc

    def __call__(self, target: ProbeTarget) -> str | NoAddress:
        server_url = target.url
        unusable = NoAddress(f"the hub gave no usable server url ({server_url!r})")
        if not server_url or not server_url.startswith("/") or server_url.startswith("//"):
            return unusable
        url = f"{self.proxy_url}{server_url.rstrip('/')}/"
        parts = urlsplit(url)
        if parts.netloc != self._netloc or parts.query or parts.fragment:
            return unusable
        return url


def through_proxy(proxy_url: str) -> ThroughProxy:
    return ThroughProxy(proxy_url)


@dataclass(frozen=True)
class Route:
    """One route of the proxy: its target as the proxy holds it, and whose server
    JupyterHub said it is (``None`` where the route's data does not say)."""

    target: str
    user: str | None = None
    server_name: str | None = None


def read_routes(body: bytes) -> dict[str, Route]:
    """configurable-http-proxy's ``GET /api/routes``: route prefix (with a trailing
    ``/``) -> ``Route``.

    An entry that is not a route (no string ``target``) is left out, and the server it
    might have been is then not found; an answer that is not a JSON object, or a
    non-empty one without a single route in it, is not a routing table at all.
    """
    try:
        table: Any = read_json(body)
    except ValueError:
        raise RoutesUnavailable("the proxy's routing table is not JSON") from None
    if not isinstance(table, dict):
        raise RoutesUnavailable("the proxy's routing table is not a JSON object")
    routes: dict[str, Route] = {}
    for prefix, route in table.items():
        target = route.get("target") if isinstance(route, dict) else None
        if not isinstance(target, str):
            continue
        user, server_name = route.get("user"), route.get("server_name")
        routes[prefix.rstrip("/") + "/"] = Route(
            target,
            user if isinstance(user, str) else None,
            server_name if isinstance(server_name, str) else None,
        )
    if table and not routes:
        raise RoutesUnavailable(
            "the answer holds no route with a target: not configurable-http-proxy's routing table"
        )
    return routes


def fetch_routes(
    api_url: str, auth_token: str, *, timeout: float = ROUTES_TIMEOUT
) -> dict[str, Route]:
    """The proxy's routes (``read_routes``) from its REST API at ``api_url``.

    ``auth_token`` is the proxy's ``CONFIGPROXY_AUTH_TOKEN``: it goes to ``api_url`` only,
    and never from the environment's proxy settings or netrc. One bounded request, no
    retry, no redirect followed; raises ``RoutesUnavailable``.
    """
    session = requests.Session()
    session.trust_env = False
    transport = BoundedTransport(
        session,
        RequestBounds(whole=timeout, connect=min(timeout, 10.0), max_bytes=MAX_ROUTES_ANSWER),
    )
    url = api_url.rstrip("/") + "/api/routes"
    try:
        response = transport.request("GET", url, headers={"Authorization": f"token {auth_token}"})
    except requests.RequestException as error:
        raise RoutesUnavailable(
            f"cannot read the proxy's routes at {url} ({type(error).__name__}); "
            "check --proxy-api-url and that this machine may reach it"
        ) from None
    except ValueError:  # a URL the HTTP library refuses (checked as an option already)
        raise RoutesUnavailable(
            f"cannot read the proxy's routes at {url}: not a URL that can be requested; "
            "check --proxy-api-url"
        ) from None
    finally:
        transport.close()
    if response.status_code in (401, 403):
        raise RoutesUnavailable(
            f"the proxy's API at {url} refused the token (HTTP {response.status_code}); "
            "CONFIGPROXY_AUTH_TOKEN must be the proxy's own auth token"
        )
    if response.status_code != 200:
        raise RoutesUnavailable(
            f"the proxy's routes at {url} answered HTTP {response.status_code}; "
            "check --proxy-api-url (configurable-http-proxy's API, port 8001 by default)"
        )
    return read_routes(response.content)


def route_locator(routes: Mapping[str, Route]) -> RouteTargets:
    """A locator over a routing table already read."""
    located = RouteTargets("", "")
    located.routes = dict(routes)
    return located


class RouteTargets:
    """``--probe-via=route-target``: servers at their route's target,
    ``/user/ann/`` -> ``http://10.0.0.5:8888/user/ann/`` (the proxy forwards the whole
    path, so the target serves it under the same prefix).

    ``load`` reads the table (once per pass, before the first probe; a dry run never
    does); until then every server is ``NoAddress``. Read-only after loading, so
    thread-safe.
    """

    proxy_url: str | None = None  # straight to the servers: no proxy in between

    def __init__(self, api_url: str, auth_token: str, *, timeout: float = ROUTES_TIMEOUT) -> None:
        self.api_url = api_url
        self._auth_token = auth_token
        self._timeout = timeout
        self.routes: dict[str, Route] | None = None

    def load(self) -> int:
        """Read the routing table; the number of routes. Raises ``RoutesUnavailable``."""
        self.routes = fetch_routes(self.api_url, self._auth_token, timeout=self._timeout)
        return len(self.routes)

    def __call__(self, target: ProbeTarget) -> str | NoAddress:
        if self.routes is None:
            return NoAddress("the proxy's routing table was not read")
        server_url = target.url
        if not server_url or not server_url.startswith("/") or server_url.startswith("//"):
            return NoAddress(f"the hub gave no usable server url ({server_url!r})")
        prefix = server_url.rstrip("/") + "/"
        route = self.routes.get(prefix)
        if route is None:
            return NoAddress(f"the proxy has no route for {printable(prefix)[:200]}")
        if route.user != target.user or (route.server_name or "") != target.server:
            owner = "no server" if route.user is None else "another server"
            return NoAddress(
                f"the proxy's route for {printable(prefix)[:200]} names {owner}; not probed "
                "at its target"
            )
        problem = _not_plain_http(route.target)
        if problem:
            return NoAddress(f"the route's target {problem}; not probed at its target")
        return f"{route.target.rstrip('/')}{prefix}"


def _not_plain_http(url: str) -> str | None:
    """Why ``url`` is not a plain ``http://host[:port]`` origin, or ``None``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a port out of range)
    except ValueError:
        return "is not a URL"
    if parts.scheme == "https":
        return (
            "is https (internal_ssl), which needs the hub's internal CA and a client "
            "certificate: not supported"
        )
    if parts.scheme != "http" or not parts.hostname:
        return "is not an http URL"
    if parts.path.strip("/") or parts.query or parts.fragment or "@" in parts.netloc:
        return "is not a plain origin (a path, a query or credentials)"
    return None
