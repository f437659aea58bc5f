"""The one emulated JupyterHub for in-process tests, on `responses`.

``EmulatedHub`` is a ``responses.RequestsMock`` that also answers like a hub: the version
probe, ``GET /users`` paginated as JupyterHub does it (``offset``/``limit``/``total``/
``next``, the ``state`` filter, no pagination before 2.0 and no ``state`` before 1.3),
each listed user's record for the re-check, optionally the hub's clock in a ``Date``
header, and the stop and delete endpoints. Every request is recorded in ``calls``, and
unregistered URLs are refused, so nothing can reach the network. Tests register anything
else (a failing answer, a slow stop) with the usual ``responses`` methods.

Records are stamped relative to the real clock, which the CLI reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import requests
import responses

from idle_cull.hub import PAGINATION_MEDIA_TYPE, parse_version
from tests.support import records

URL = "http://hub.test:8081/hub/api"
TOKEN = "cli-test-token-0123456789abcdef"
# JupyterHub's api_page_default_limit and api_page_max_limit
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

Answer = tuple[int, dict[str, str], str]


def server_json(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """A server record stamped relative to the real clock, which the CLI reads."""
    return records.server_json(*args, now=datetime.now(timezone.utc), **kwargs)


def user_json(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """A user record stamped relative to the real clock, which the CLI reads."""
    return records.user_json(*args, now=datetime.now(timezone.utc), **kwargs)


def users_page(items: list[Any], offset: int, limit: int, url: str = URL) -> dict[str, Any]:
    """One ``GET /users`` answer of JupyterHub 2.0 and later: ``items`` is the whole query."""
    following = None
    if offset + limit < len(items):
        following = {
            "offset": offset + limit,
            "limit": limit,
            "url": f"{url}/users?offset={offset + limit}&limit={limit}",
        }
    return {
        "items": items[offset : offset + limit],
        "_pagination": {"offset": offset, "limit": limit, "total": len(items), "next": following},
    }


def page_window(query: Mapping[str, str], page_size: int | None) -> tuple[int, int]:
    """The ``(offset, limit)`` a hub answers for a query: the hub's default, capped.

    ``page_size`` is a hub configured with that default and cap (even beyond JupyterHub's
    own cap of 200); ``None`` is JupyterHub's defaults.
    """
    default, cap = (page_size, page_size) if page_size else (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    requested = int(query.get("limit") or 0)
    return max(int(query.get("offset") or 0), 0), min(requested or default, cap)


@dataclass
class Listing:
    records: list[Any]
    page_size: int | None


class EmulatedHub(responses.RequestsMock):
    """A `responses` mock that answers as JupyterHub ``version`` does (see the module doc).

    A subclass, not a wrapper, so tests register their own answers (a failing stop, a
    slow one) and read ``calls`` exactly as on any ``responses`` mock.
    """

    def __init__(self, version: str = "6.1.1") -> None:
        super().__init__(assert_all_requests_are_fired=False)
        self.version = version
        self.headers: dict[str, str] = {}
        self.listings: dict[str | None, Listing] = {}
        self.get(f"{URL}/", json={"version": version})

    def set_clock(self, hub_now: datetime) -> None:
        """The hub's clock reads ``hub_now``: a ``Date`` header on every later answer."""
        self.headers = {"Date": format_datetime(hub_now, usegmt=True)}
        self.replace(responses.GET, f"{URL}/", json={"version": self.version}, headers=self.headers)

    def serve_users(
        self,
        state: str | None,
        users: list[Any],
        *,
        page_size: int | None = None,
        recheck: bool = True,
    ) -> None:
        """Serve ``users`` as the ``state`` listing (``None``: no state filter asked).

        The records are served as given (they may be garbage); with ``recheck`` each one
        with a name is also served unchanged at ``GET /users/{name}``. A state that was not
        served is refused like an unregistered URL.
        """
        # Registered with the first listing only: a test that answers GET /users itself
        # (garbage, an error) must not compete with it, as responses would hand out the
        # first of two matching registrations once and then drop it.
        if not self.listings:
            self.add_callback(responses.GET, f"{URL}/users", callback=self._answer_users)
        self.listings[state] = Listing(users, page_size)
        for user in users if recheck else ():
            if isinstance(user, dict) and isinstance(user.get("name"), str):
                self.get(user_url(user["name"]), json=user, headers=self.headers)

    def answer_stop(self, user: str, server: str = "", *, status: int = 204, **answer: Any) -> None:
        """Answer the stop of ``user``'s ``server`` ("": the default one) with ``status``."""
        self.delete(server_url(user, server), status=status, **answer)

    def answer_user_deletion(self, user: str, *, status: int = 204, **answer: Any) -> None:
        """Answer the deletion of ``user`` with ``status``."""
        self.delete(user_url(user), status=status, **answer)

    def deleted_urls(self) -> list[str]:
        """Every ``DELETE`` sent (stops, server removals, user deletions), in order."""
        return [c.request.url or "" for c in self.calls if c.request.method == "DELETE"]

    def listing_queries(self) -> list[dict[str, str]]:
        """The query of every ``GET /users`` sent, in order."""
        split = [urlsplit(c.request.url or "") for c in self.calls if c.request.method == "GET"]
        return [dict(parse_qsl(s.query)) for s in split if s.path == urlsplit(URL).path + "/users"]

    def older_than(self, release: tuple[int, ...]) -> bool:
        version = parse_version(self.version)
        return bool(version) and version < release

    def _answer_users(self, request: requests.PreparedRequest) -> Answer:
        query = dict(parse_qsl(urlsplit(request.url or "").query))
        state = None if self.older_than((1, 3)) else query.get("state")
        listing = self.listings.get(state)
        if listing is None:
            raise requests.ConnectionError(f"the emulated hub serves no {state!r} listing")
        headers = {"Content-Type": "application/json", **self.headers}
        paginated = request.headers.get("Accept") == PAGINATION_MEDIA_TYPE
        if self.older_than((2, 0)) or not paginated:  # before 2.0: everyone, in a bare list
            return 200, headers, json_text(listing.records)
        offset, limit = page_window(query, listing.page_size)
        return 200, headers, json_text(users_page(listing.records, offset, limit))


def user_url(name: str) -> str:
    return f"{URL}/users/{quote(name, safe='')}"


def server_url(user: str, server: str = "") -> str:
    if server:
        return f"{user_url(user)}/servers/{quote(server, safe='')}"
    return f"{user_url(user)}/server"


def json_text(value: object) -> str:
    return json.dumps(value)
