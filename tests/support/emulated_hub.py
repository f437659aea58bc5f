"""The one emulated JupyterHub for in-process tests, on `responses`.

``EmulatedHub`` is a ``responses.RequestsMock`` that also answers like a hub: the version
probe, ``GET /users`` paginated as JupyterHub does it (``offset``/``limit``/``total``/
``next``, the ``state`` filter, no pagination before 2.0 and no ``state`` before 1.3),
each listed user's record for the re-check, optionally the hub's clock in a ``Date``
header, the stop and delete endpoints, ``GET /user`` with the token's scopes (from 2.0;
every scope any configuration needs unless ``token_scopes`` says otherwise) and
``GET /groups/{name}`` (every group exists except those in ``missing_groups``),
``GET /groups`` (listing ``group_list``) and ``POST /users/{name}/tokens`` (a probe token
owned by that user, as JupyterHub 3.0+ mints it; each request is kept in ``mint_requests``
and each secret in ``minted``; ``mint_refusals`` answers a user's mint with an error);
``rewrite_users`` makes it misbehave (a page cut short, a plain list). Every request is recorded in ``calls``, and
unregistered URLs are refused, so nothing can reach the network. Tests register anything
else (a failing answer, a slow stop) with the usual ``responses`` methods.

A hub lists either records served as given per state (``serve_users``: what the CLI
tests need) or one population of users whose server states the state filter reads
(``serve_population`` with ``HubUsers``: what the paging tests need). Both page with the
arithmetic of ``tests.support.pagination``. Served per state, the unfiltered listing (what
``--cull-users`` reads) holds every record of the ``ready`` and ``inactive`` listings.
``EmulatedClient`` stands in for ``HubClient`` itself, without HTTP, over fixed records
(for a whole pass per hypothesis example). ``StatefulUsers`` adds state to served listings: the re-check and the stops and deletions
act on the records listed, routed by the raw path as the hub routes them.

Records are stamped relative to the real clock, which the CLI reads.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import requests
import responses

from idle_cull.errors import HubUnavailable
from idle_cull.hub.client import PAGINATION_MEDIA_TYPE, parse_version
from idle_cull.hub.pages import UserPage
from idle_cull.models import ActionResult, Outcome
from tests.support import records
from tests.support.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page_window, users_page

URL = "http://hub.test:8081/hub/api"
TOKEN = "cli-test-token-0123456789abcdef"

Answer = tuple[int, dict[str, str], str]

# The token's scopes as GET /user reports them (expanded): every scope any configuration
# needs, and read:groups:name, which lets group rules be checked.
ALL_SCOPES = (
    "list:users", "read:users", "read:users:name", "read:users:activity", "read:users:groups",
    "read:servers", "delete:servers", "delete:users", "read:groups", "read:groups:name",
    "list:groups", "tokens", "read:tokens",
)  # fmt: skip
SERVICE_NAME = "idle-cull"


def server_json(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """A server record stamped relative to the real clock, which the CLI reads."""
    return records.server_json(*args, now=datetime.now(timezone.utc), **kwargs)


def user_json(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """A user record stamped relative to the real clock, which the CLI reads."""
    return records.user_json(*args, now=datetime.now(timezone.utc), **kwargs)


@dataclass
class Listing:
    """Records served as given (the state filter already applied) for one ``state``.

    ``page_size`` is a hub configured with that default and cap (even beyond JupyterHub's
    own cap of 200); ``None`` is JupyterHub's defaults.
    """

    records: list[Any]
    page_size: int | None

    def page(self, query: Mapping[str, str]) -> dict[str, Any]:
        size = self.page_size
        offset, limit = page_window(query, default=size, cap=size) if size else page_window(query)
        return users_page(self.records, offset, limit, URL)


@dataclass
class HubUser:
    """A user as the state filter sees it: with a server record (``active``), ready or not."""

    name: str
    active: bool = True
    ready: bool = True

    def record(self) -> dict[str, Any]:
        servers = {"": {"name": "", "ready": self.ready, "pending": None}} if self.active else {}
        return {"name": self.name, "last_activity": None, "servers": servers}


@dataclass
class HubUsers:
    """The users of a JupyterHub 6.1, listed as its ``UserListAPIHandler`` lists them.

    Unlike a ``Listing``, every state is answered from the one population, the way the hub
    does it: ``total`` counts *active* users for ``state=ready``, and ready users are
    filtered only after offset/limit, so pages can be short or empty while ``next`` is set.
    Tests may change ``users`` while a listing runs (holding ``lock``), rewrite the body
    for an offset (``override``) or act before an answer (``before_answer``); every query
    answered is recorded in ``calls``.
    """

    users: list[HubUser]
    default_limit: int = DEFAULT_PAGE_SIZE
    max_limit: int = MAX_PAGE_SIZE
    # the API URL written in ``next``: a hub behind a proxy names its internal host
    advertised_url: str = URL
    calls: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    override: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None
    before_answer: Callable[[dict[str, str]], None] | None = None

    def answer(self, query: Mapping[str, str], *, paginated: bool = True) -> object:
        """The body for ``query``: a page, or a plain list for a client that asks none."""
        params = dict(query)
        with self.lock:
            self.calls.append(params)
        if self.before_answer is not None:
            self.before_answer(params)
        state = params.get("state")
        offset, limit = page_window(
            params, default=self.default_limit, cap=self.max_limit, paginated=paginated
        )
        selected = self.selected(state)
        window = selected[offset : offset + limit]
        if state == "ready":  # filtered in memory after offset/limit, as the hub does
            window = [u for u in window if u.ready]
        items = [u.record() for u in window]
        if not paginated:
            return items
        body = users_page(items, offset, limit, self.advertised_url, total=len(selected))
        return body if self.override is None else self.override(offset, body)

    def user_page(self, state: str | None, offset: int, limit: int = 0) -> UserPage:
        """``HubClient.user_page`` without HTTP: the page this hub answers, as the client
        reads it (``limit`` 0: the hub's default size)."""
        query = {"offset": str(offset)}
        if limit:
            query["limit"] = str(limit)
        if state:
            query["state"] = state
        return UserPage.from_body(self.answer(query), offset, limit, 0.0)

    def selected(self, state: str | None) -> list[HubUser]:
        """The users the hub's SQL query selects for ``state``, before offset/limit."""
        if state in ("ready", "active"):
            return [u for u in self.users if u.active]
        if state == "inactive":
            return [u for u in self.users if not u.active]
        return list(self.users)

    def offsets(self) -> list[int]:
        """The offset of every query answered, in ascending order."""
        return sorted(int(c.get("offset", 0)) for c in self.calls)


SMALL_HUB_PAGE = 3
SMALL_HUB_USERS = 8


def hub_of_users(before_answer: Callable[[dict[str, str]], None] | None = None) -> HubUsers:
    """The 8 users ``u0``..``u7`` of the emulated hub, ``SMALL_HUB_PAGE`` at a time, as a 6.x hub
    pages them; ``before_answer`` sees each query first."""
    population = [HubUser(f"u{i}") for i in range(SMALL_HUB_USERS)]
    return HubUsers(
        population,
        default_limit=SMALL_HUB_PAGE,
        max_limit=SMALL_HUB_PAGE,
        before_answer=before_answer,
    )


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
        self.population: HubUsers | None = None
        self.token_scopes: list[str] | None = list(ALL_SCOPES)  # None: the hub reports none
        self.token_owner: dict[str, Any] = {"kind": "service", "name": SERVICE_NAME}  # GET /user
        self.missing_groups: set[str] = set()
        self.group_list: list[str] = []  # what GET /groups lists (list:groups)
        self.mint_requests: list[tuple[str, dict[str, Any]]] = []  # (user, request body)
        self.minted: list[str] = []  # every token secret handed out, in order
        self.mint_refusals: dict[str, tuple[int, dict[str, Any]]] = {}  # user -> answer
        self._mint_lock = threading.Lock()
        # A hub (or something in front of it) that misbehaves: ``rewrite_users(query,
        # body)`` returns what GET /users answers instead of ``body`` (a page, or a list).
        self.rewrite_users: Callable[[dict[str, str], Any], Any] | None = None
        self.get(f"{URL}/", json={"version": version})
        self.add_callback(responses.GET, f"{URL}/user", callback=self._answer_token_owner)
        self.add_callback(responses.GET, f"{URL}/groups", callback=self._answer_group_list)
        self.add_callback(
            responses.GET,
            re.compile(rf"{re.escape(URL)}/groups/[^/]+$"),
            callback=self._answer_group,
        )
        self.add_callback(
            responses.POST,
            re.compile(rf"{re.escape(URL)}/users/[^/]+/tokens$"),
            callback=self._answer_mint,
        )

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
        self._answer_listings()
        self.listings[state] = Listing(users, page_size)
        for user in users if recheck else ():
            if isinstance(user, dict) and isinstance(user.get("name"), str):
                self.get(user_url(user["name"]), json=user, headers=self.headers)

    def serve_population(self, population: HubUsers) -> None:
        """Answer every ``GET /users`` (any state) from ``population``, instead of listings.

        Only for hubs of 2.0 and later: the population models 6.1's pagination.
        """
        if self.older_than((2, 0)):
            raise ValueError(f"a population pages as JupyterHub 2.0+ does, not as {self.version}")
        self._answer_listings()
        self.population = population

    def _answer_listings(self) -> None:
        # Registered once, with the first listing: a test that answers GET /users itself
        # (garbage, an error) must not compete with it, as responses would hand out the
        # first of two matching registrations once and then drop it.
        if not self.listings and self.population is None:
            self.add_callback(responses.GET, f"{URL}/users", callback=self._answer_users)

    def _everyone(self) -> Listing | None:
        """The unfiltered listing of a hub served as state listings: all of their records.

        A test that serves ``ready`` and ``inactive`` declares the hub's users by their
        state; an unfiltered query lists them all, ready ones first (a real hub orders by
        id), with the page size of the first.
        """
        parts = [self.listings[state] for state in ("ready", "inactive") if state in self.listings]
        if not parts:
            return None
        return Listing([record for part in parts for record in part.records], parts[0].page_size)

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

    def _answer_token_owner(self, _request: requests.PreparedRequest) -> Answer:
        owner = dict(self.token_owner)
        if self.token_scopes is not None and not self.older_than((2, 0)):
            owner["scopes"] = self.token_scopes
        return 200, {"Content-Type": "application/json", **self.headers}, json_text(owner)

    def _answer_group_list(self, _request: requests.PreparedRequest) -> Answer:
        groups = [{"kind": "group", "name": name, "users": []} for name in self.group_list]
        return 200, {"Content-Type": "application/json"}, json_text(groups)

    def _answer_group(self, request: requests.PreparedRequest) -> Answer:
        name = unquote(urlsplit(request.url or "").path.rsplit("/", 1)[1])
        if name in self.missing_groups:
            return 404, {}, json_text({"status": 404, "message": f"No such group: {name}"})
        return 200, {}, json_text({"kind": "group", "name": name, "users": []})

    def _answer_mint(self, request: requests.PreparedRequest) -> Answer:
        """A token owned by the user, with the scopes asked plus the one the hub adds."""
        user = unquote(urlsplit(request.url or "").path.split("/")[-2])
        body = json.loads(request.body or b"{}")
        with self._mint_lock:
            self.mint_requests.append((user, body))
            if user in self.mint_refusals:
                status, answer = self.mint_refusals[user]
                return status, {"Content-Type": "application/json"}, json_text(answer)
            secret = f"minted-for-{user}-{len(self.minted)}"
            self.minted.append(secret)
        scopes = [*body.get("scopes", []), f"read:users:name!user={user}"]
        model = {"user": user, "kind": "api_token", "scopes": scopes, "token": secret}
        return 201, {"Content-Type": "application/json"}, json_text(model)

    def _answer_users(self, request: requests.PreparedRequest) -> Answer:
        query = dict(parse_qsl(urlsplit(request.url or "").query))
        headers = {"Content-Type": "application/json", **self.headers}
        paginated = request.headers.get("Accept") == PAGINATION_MEDIA_TYPE
        body = self._users_body(query, paginated)
        if self.rewrite_users is not None:
            body = self.rewrite_users(query, body)
        return 200, headers, json_text(body)

    def _users_body(self, query: dict[str, str], paginated: bool) -> object:
        if self.population is not None:
            return self.population.answer(query, paginated=paginated)
        state = None if self.older_than((1, 3)) else query.get("state")
        listing = self.listings.get(state)
        if listing is None and state is None:
            listing = self._everyone()
        if listing is None:
            raise requests.ConnectionError(f"the emulated hub serves no {state!r} listing")
        if self.older_than((2, 0)) or not paginated:  # before 2.0: everyone, in a bare list
            return listing.records
        return listing.page(query)


# How the hub routes the calls a pass makes: the user, then /server or /servers/<name>.
ROUTE = re.compile(r"/users/(?P<user>[^/]+)(?:/(?P<default>server)|/servers/(?P<server>[^/]+))?")
API_PATH = urlsplit(URL).path


class StatefulUsers:
    """The hub's user and server endpoints a pass calls, with state, on `responses`.

    The listing is the emulated hub's (records served as given, maybe garbage); the re-check
    (``GET /users/{name}``) and the actions (``DELETE``) are routed like the real hub and
    act on the first well-formed record listed under each name. ``actions`` keeps every
    action as ``(method, user, server)`` with the names unquoted, ``server`` ``None``
    for a user deletion.
    """

    def __init__(self, hub: EmulatedHub) -> None:
        self.hub = hub
        self.records: dict[str, dict[str, Any]] = {}
        self.actions: list[tuple[str, str, str | None]] = []
        self.unrouted: list[str] = []
        below = re.compile(re.escape(URL) + r"/users/.*")
        hub.add_callback(responses.GET, below, callback=self._get)
        hub.add_callback(responses.DELETE, below, callback=self._delete)

    def listing(self, state: str, records: list[Any], *, page_size: int | None = None) -> None:
        """Serve ``records`` as the ``state`` listing, ``page_size`` a page (``None``: the hub's)."""
        for record in records:
            if isinstance(record, dict) and isinstance(record.get("name"), str):
                self.records.setdefault(record["name"], json.loads(json_text(record)))
        self.hub.serve_users(state, records, page_size=page_size, recheck=False)

    def _route(self, request: requests.PreparedRequest) -> tuple[str, str | None] | None:
        path = urlsplit(request.url or "").path[len(API_PATH) :]
        match = ROUTE.fullmatch(path)
        if match is None:
            self.unrouted.append(f"{request.method} {path}")
            return None
        if match["server"] is not None:
            return unquote(match["user"]), unquote(match["server"])
        return unquote(match["user"]), "" if match["default"] else None

    def _get(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        route = self._route(request)
        if route is None or route[1] is not None or route[0] not in self.records:
            return 404, {}, json_text({"status": 404, "message": "Not Found"})
        return 200, {"Content-Type": "application/json"}, json_text(self.records[route[0]])

    def _delete(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        route = self._route(request)
        if route is None:
            return 404, {}, json_text({"status": 404, "message": "Not Found"})
        name, server_name = route
        self.actions.append(("DELETE", name, server_name))
        record = self.records.get(name)
        if record is None:
            return 404, {}, json_text({"status": 404, "message": "Not Found"})
        if server_name is None:
            del self.records[name]
            return 204, {}, ""
        servers = record.get("servers")
        if not isinstance(servers, dict) or server_name not in servers:
            return 404, {}, json_text({"status": 404, "message": "no such server"})
        del servers[server_name]
        return 204, {}, ""

    def stopped(self) -> set[tuple[str, str]]:
        return {(u, s) for _, u, s in self.actions if s is not None}

    def deleted(self) -> set[str]:
        return {u for _, u, s in self.actions if s is None}


class EmulatedClient:
    """``HubClient`` without HTTP for ``run_pass``, over fixed records, whose stops end as
    ``outcomes`` says (the hypothesis tests run a whole pass per example).

    A stop that succeeds removes the server from the user's record (the re-check then
    sees it gone); a pending one leaves it stopping; a failed one raises like the client.
    """

    def __init__(
        self, records: dict[str, dict[str, Any]], outcomes: dict[tuple[str, str], Outcome]
    ) -> None:
        self.records = records
        self.outcomes = outcomes
        self.stops: list[tuple[str, str]] = []
        self.stopped: set[tuple[str, str]] = set()
        self.deleted: list[str] = []

    def hub_version(self) -> str:
        return "6.1.1"

    def hub_now(self) -> datetime | None:
        return None

    def token_owner(self) -> dict[str, Any] | None:
        return None  # as a hub before 2.0: no scopes to check

    def group_exists(self, name: str) -> bool | None:
        return True

    def group_names(self) -> list[str] | None:
        return None

    def user_page(self, state: str | None, offset: int, limit: int = 0) -> UserPage:
        """Everyone of ``state`` at once, as a hub before 2.0 answers (no pagination)."""
        wanted = [r for r in self.records.values() if bool(r["servers"]) == (state == "ready")]
        return UserPage(wanted, offset, limit, None)

    def get_user(self, name: str) -> dict[str, Any] | None:
        return self.records.get(name)

    def responsiveness(self) -> float | None:
        return 0.001

    def stop_server(self, user: str, server: str, *, remove: bool = False) -> ActionResult:
        self.stops.append((user, server))
        outcome = self.outcomes.get((user, server), Outcome.STOPPED)
        if outcome is Outcome.FAILED:
            raise HubUnavailable(f"could not stop server {user}/{server}: HTTP 503", attempts=5)
        if outcome in (Outcome.STOPPED, Outcome.GONE):
            self.stopped.add((user, server))
            self.records[user]["servers"].pop(server, None)
        else:
            self.records[user]["servers"][server]["pending"] = "stop"
        return ActionResult(outcome, 1)

    def delete_user(self, name: str) -> ActionResult:
        self.deleted.append(name)
        self.records.pop(name, None)
        return ActionResult(Outcome.DELETED, 1)

    def close(self) -> None:
        pass


def user_url(name: str) -> str:
    return f"{URL}/users/{quote(name, safe='')}"


def server_url(user: str, server: str = "") -> str:
    if server:
        return f"{user_url(user)}/servers/{quote(server, safe='')}"
    return f"{user_url(user)}/server"


def json_text(value: object) -> str:
    return json.dumps(value)
