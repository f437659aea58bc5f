"""``HubClient``: the only module that speaks HTTP to JupyterHub.

It knows the REST API's shapes and status codes and turns them into plain data,
``Outcome`` values and the ``HubError`` tree. It makes no decisions.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from idle_cull import __version__
from idle_cull.errors import (
    HubAuthError,
    HubError,
    HubProtocolError,
    HubUnavailable,
    TokenLifetimeTooLong,
)
from idle_cull.hub.environment import check_ca_bundle, check_proxies
from idle_cull.hub.pages import UserPage
from idle_cull.hub.retry import (
    TRANSIENT_STATUSES,
    RetryPolicy,
    TransientHTTPError,
    call_with_retries,
    parse_retry_after,
)
from idle_cull.hub.tls import TLSFiles
from idle_cull.models import ActionResult, Outcome
from idle_cull.transport import (
    Answer,
    AnswerTooLarge,
    BoundedTransport,
    RequestAbandoned,
    RequestBounds,
    TLSHandshakeFailed,
    read_json,
)

__all__ = ["PAGINATION_MEDIA_TYPE", "HubClient", "parse_version"]

log = logging.getLogger(__name__)

# Must be sent exactly like this: the hub only paginates when Accept matches verbatim,
# and silently truncates the list to its page limit otherwise.
PAGINATION_MEDIA_TYPE = "application/jupyterhub-pagination+json"
MAX_VERSION_LENGTH = 64  # "5.2.1", "6.0.0b1.dev12+g1234abc": a version is short
ROLE_HINT = "grant it in the culler's role (see README, 'Role and scopes')"
# The responsiveness probe (see limiter.py): a tiny answer, expected quickly.
RESPONSIVENESS_TIMEOUT = 5.0
RESPONSIVENESS_BODY_CAP = 64 * 1024


@dataclass(frozen=True)
class _Answer:
    response: Answer
    attempts: int


def parse_version(text: str) -> tuple[int, ...]:
    """``"5.2.1"`` -> ``(5, 2, 1)``; pre-release suffixes are ignored."""
    numbers = []
    for part in text.split(".")[:3]:
        # At most 9 digits: int() refuses strings of thousands of digits (ValueError).
        match = re.match(r"\d{1,9}(?!\d)", part)
        if not match:
            break
        numbers.append(int(match.group()))
    return tuple(numbers)


def quote_name(name: str) -> str:
    """Quote a user or server name as one path segment, ``/`` included.

    ``.`` and ``..`` cannot be sent as a segment: URL normalization (requests does it,
    and so may any proxy) removes them, and the request would address another
    resource (``DELETE /users/./server`` becomes ``DELETE /users/server``, deleting
    the user named "server"). Current hubs refuse such names; older ones accepted them.
    """
    if name in (".", ".."):
        raise HubError(
            f"cannot address the name {name!r} through the hub's REST API: it is a relative "
            "path segment; rename it on the hub"
        )
    try:
        return quote(name, safe="")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") from the JSON has no UTF-8
        raise HubError(
            f"cannot address the name {name!r} through the hub's REST API: it is not valid "
            "Unicode (a lone surrogate); rename it on the hub"
        ) from None


def _decode_json(response: Answer) -> Any:
    """JSON from the raw bytes (``transport.read_json``): ``response.json()`` would decode
    a ``text/*`` answer without a charset as ISO-8859-1 and garble non-ASCII user names."""
    return read_json(response.content)


def _hub_message(response: Answer, limit: int | None = 200) -> str:
    """The hub's own error message (JSON ``message``), on one line and by default short."""
    try:
        body = _decode_json(response)
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    text = " ".join((str(message) if message else (response.reason or "")).split())
    return text if limit is None else text[:limit]


def _connection_reason(error: requests.RequestException) -> str:
    match = re.search(r"\[Errno -?\d+\] [^'\")]+", str(error))
    if match:
        return match.group()
    return type(error).__name__


def _times(count: int) -> str:
    """``once``, ``2 times``: how often a request was tried, in the error messages."""
    return "once" if count == 1 else f"{count} times"


class HubClient:
    """A thread-safe client for the parts of the JupyterHub REST API a culler uses."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        request_timeout: float = 60.0,
        pool_size: int = 10,
        tls: TLSFiles | None = None,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        give_up: Callable[[], bool] = lambda: False,
        bounds: RequestBounds | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._timeout = request_timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._give_up = give_up
        self._token = token
        # The hub's Date header and our monotonic clock when it arrived: the hub's clock
        # stamps last_activity, so idleness is measured against it (see hub_now).
        self._hub_date: tuple[datetime, float] | None = None
        self._session = session or requests.Session()
        self._read_environment_once()
        # Every request bounded as a whole, capped in size, never redirected, and
        # abandoned shortly after the pass is told to stop (see transport).
        self._transport = BoundedTransport(
            self._session,
            bounds or RequestBounds.for_timeout(request_timeout),
            pool_size=pool_size,
            stop_requested=give_up,
        )
        self._probe_bounds = replace(
            self._transport.bounds,
            whole=min(request_timeout, RESPONSIVENESS_TIMEOUT),
            connect=min(self._transport.bounds.connect, RESPONSIVENESS_TIMEOUT),
            max_bytes=RESPONSIVENESS_BODY_CAP,
        )
        self._session.headers["Authorization"] = f"token {token}"
        self._session.headers["User-Agent"] = f"idle-cull/{__version__}"
        if tls is not None:
            self._session.verify = str(tls.ca)
            self._session.cert = (str(tls.cert), str(tls.key))

    def _read_environment_once(self) -> None:
        """Take proxies and the CA bundle from the environment now, and credentials never.

        With ``trust_env`` on, requests reads the environment again for every request (a
        third of our CPU per request), and a ``~/.netrc`` entry for the hub's host would
        silently replace the API token's Authorization header with a login and password.
        """
        settings = self._session.merge_environment_settings(self.url, {}, None, None, None)
        check_proxies(settings["proxies"])
        check_ca_bundle(settings["verify"], self.url)
        self._session.trust_env = False
        self._session.proxies.update(settings["proxies"])
        self._session.verify = settings["verify"]

    def close(self) -> None:
        self._transport.close()

    def hub_now(self) -> datetime | None:
        """The hub's clock now, from the latest ``Date`` header; ``None`` if none was sent.

        The header has one-second resolution and is truncated, so this runs up to a
        second behind the hub: idleness is underestimated, never overestimated.
        """
        if self._hub_date is None:
            return None
        when, received = self._hub_date
        return when + timedelta(seconds=time.monotonic() - received)

    def _note_date(self, response: Answer) -> None:
        header = response.headers.get("Date")
        if not header:
            return
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError):
            return
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        self._hub_date = (when, time.monotonic())

    # -- reading ---------------------------------------------------------------------

    def hub_version(self) -> str:
        """The hub's version from ``GET {url}/``, proving the URL is a JupyterHub API."""
        answer = self._request("GET", "/", what="probe the hub version")
        if answer.response.status_code == 404:
            raise HubProtocolError(
                f"{self.url}/ answered 404: no JupyterHub API there; check --url "
                "(the hub's base_url followed by /hub/api)",
                status=404,
                attempts=answer.attempts,
            )
        body = self._json(answer, "the version probe")
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str):
            raise HubProtocolError(
                f"{self.url}/ answered without a JupyterHub version: is --url the hub's API "
                "(ending in /hub/api)?"
            )
        if len(version) > MAX_VERSION_LENGTH or not version.isprintable():
            raise HubProtocolError(
                f"{self.url}/ answered a 'version' of {len(version):,} characters that is not a "
                "JupyterHub version: is --url the hub's API (ending in /hub/api)?"
            )
        return version

    def responsiveness(self) -> float | None:
        """Seconds the hub took to answer ``GET {url}/``; ``None`` if it failed or timed out.

        What any other request waits for on the hub's event loop right now: the signal
        of the in-flight limiter (``idle_cull.hub.limiter``). Sent without the token, so the
        probe costs the hub no token lookup; never retried (a failure is a signal too).
        It goes through the bounded transport like every other request, with tighter
        bounds: a hub that trickles its answer, or a stop of the pass, cannot hold the
        probe (and so the end of the action phase, which waits for it) past them.
        """
        started = time.monotonic()
        try:
            response = self._transport.request(
                "GET",
                f"{self.url}/",
                headers={"Authorization": None},  # None drops the session's header
                bounds=self._probe_bounds,
            )
        except requests.RequestException:
            return None
        return time.monotonic() - started if response.status_code == 200 else None

    def user_page(self, state: str | None, offset: int, limit: int = 0) -> UserPage:
        """One ``GET /users`` page at ``offset`` (``limit`` 0: the hub's default size)."""
        params: dict[str, Any] = {"offset": offset}
        if limit:
            params["limit"] = limit
        if state:
            params["state"] = state
        answer = self._request(
            "GET", "/users", params=params, accept=PAGINATION_MEDIA_TYPE, what="list users"
        )
        received = time.monotonic()
        return UserPage.from_body(self._json(answer, "the user list"), offset, limit, received)

    def get_user(self, name: str) -> dict[str, Any] | None:
        """One user's fresh record, or ``None`` if the hub no longer has it."""
        answer = self._request("GET", f"/users/{quote_name(name)}", what=f"read user {name!r}")
        if answer.response.status_code == 404:
            return None
        self._raise_for_status(answer, f"read user {name!r}", scope="read:users")
        body = self._json(answer, f"user {name!r}")
        if not isinstance(body, dict):
            raise HubProtocolError(f"user {name!r} is not a JSON object")
        return body

    def token_owner(self) -> dict[str, Any] | None:
        """``GET /user``: the token's owner and, from JupyterHub 2.0, the token's scopes.

        ``None`` when the hub has no such endpoint (404), so the caller can say that the
        scopes could not be checked rather than fail.
        """
        answer = self._request("GET", "/user", what="read the token's scopes")
        status = answer.response.status_code
        if status == 404:
            return None
        if status == 403:
            # Every token the hub knows may read its own owner: 403 means an unknown token.
            raise HubAuthError(
                "the hub does not accept the API token (403 on GET /user, which any valid "
                "token may read); check JUPYTERHUB_API_TOKEN or --api-token-file, and that "
                "the token is the api_token of a service in the hub's configuration",
                status=status,
                attempts=answer.attempts,
            )
        body = self._json(answer, "the token's owner")
        if not isinstance(body, dict):
            raise HubProtocolError("the token's owner (GET /user) is not a JSON object")
        return body

    def group_exists(self, name: str) -> bool | None:
        """Whether the hub has this group; ``None`` if the token may not read it (403)."""
        answer = self._request("GET", f"/groups/{quote_name(name)}", what=f"read group {name!r}")
        status = answer.response.status_code
        if status == 403 and "credentials" not in self._hub_message(answer.response).lower():
            return None
        if status == 404:
            return False
        self._raise_for_status(answer, f"read group {name!r}", scope="read:groups:name")
        return True

    def group_names(self) -> list[str] | None:
        """Names of the hub's groups (its first page: up to ``api_page_max_limit``), for
        suggesting the one a misspelt rule meant; ``None`` if the token may not list them."""
        answer = self._request("GET", "/groups", what="list groups")
        if answer.response.status_code == 403:
            return None
        body = self._json(answer, "the group list")
        items = body.get("items") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise HubProtocolError("the group list (GET /groups) is not a JSON list")
        return [g["name"] for g in items if isinstance(g, dict) and isinstance(g.get("name"), str)]

    def new_token(
        self, user: str, *, scopes: list[str], expires_in: int, note: str
    ) -> dict[str, Any]:
        """``POST /users/{name}/tokens``: a new API token owned by ``user``; the hub's token
        model, whose ``token`` field is the secret (never log, report or quote it).

        Needs the ``tokens`` scope for this user. The hub refuses (400) scopes its owner
        does not hold, and from 5.0 a lifetime above its ``token_expires_in_max_seconds``
        (``TokenLifetimeTooLong``, which names the cap). JupyterHub before 3.0 ignores
        ``scopes`` (the token gets the user's ``token`` role): the caller checks the
        model's ``scopes``. Retried on transient answers like every request: a repeated
        mint only leaves one more token that expires unused.
        """
        what = f"mint a probe token for {user!r}"
        answer = self._request(
            "POST",
            f"/users/{quote_name(user)}/tokens",
            json={"scopes": scopes, "expires_in": expires_in, "note": note},
            what=what,
        )
        status = answer.response.status_code
        if status == 400:
            message = self._hub_message(answer.response)
            capped = re.search(r"expires_in: \d+ must not exceed (\d{1,9})\b", message)
            if capped:
                raise TokenLifetimeTooLong(
                    f"could not {what}: the hub allows tokens at most {capped.group(1)}s "
                    f"(token_expires_in_max_seconds), {expires_in}s were asked",
                    limit=int(capped.group(1)),
                    attempts=answer.attempts,
                )
        if status not in (200, 201):
            self._raise_for_status(answer, what, scope="tokens")
            raise HubProtocolError(
                f"could not {what}: unexpected HTTP {status}",
                status=status,
                attempts=answer.attempts,
            )
        model = self._json(answer, f"the token minted for {user!r}")
        if not isinstance(model, dict):
            raise HubProtocolError(f"the token minted for {user!r} is not a JSON object")
        return model

    # -- acting ----------------------------------------------------------------------

    def stop_server(self, user: str, server: str, *, remove: bool = False) -> ActionResult:
        """Stop (and with ``remove``, delete) one server; 202 and "pending" mean in progress."""
        if server:
            path = f"/users/{quote_name(user)}/servers/{quote_name(server)}"
        else:
            path = f"/users/{quote_name(user)}/server"
        label = f"{user}/{server}" if server else user
        body = {"remove": True} if remove else None
        answer = self._request("DELETE", path, json=body, what=f"stop server {label!r}")
        if answer.response.status_code == 500 and self._user_is_gone(user):
            # JupyterHub 2.3 to 4.1 fail with 500, not 404, to stop a server of a user they
            # no longer have (deleted since the listing); 5.5 and 6.1 answer 404.
            return ActionResult(Outcome.GONE, answer.attempts, "the hub no longer has the user")
        return self._action_result(
            answer, Outcome.STOPPED, f"stop server {label!r}", scope="delete:servers"
        )

    def _user_is_gone(self, name: str) -> bool:
        """Whether the hub says 404 to ``GET /users/{name}``; any failure means "cannot tell"."""
        try:
            return self.get_user(name) is None
        except HubError:
            return False

    def delete_user(self, name: str) -> ActionResult:
        """Delete a user; 400 while one of its servers is still stopping means pending."""
        answer = self._request("DELETE", f"/users/{quote_name(name)}", what=f"delete user {name!r}")
        return self._action_result(
            answer, Outcome.DELETED, f"delete user {name!r}", scope="admin:users"
        )

    def _action_result(
        self, answer: _Answer, done: Outcome, what: str, *, scope: str
    ) -> ActionResult:
        """The result of a stop or delete: ``done`` on success, pending, gone, or raised.

        ``done`` is passed in by the caller, which knows what it asked for; ``what`` is
        only the wording of error messages.
        """
        status = answer.response.status_code
        if status in (200, 204):
            return ActionResult(done, answer.attempts)
        if status == 202:
            return ActionResult(Outcome.PENDING, answer.attempts, "the hub is still stopping it")
        if status == 404:
            return ActionResult(Outcome.GONE, answer.attempts)
        # Matched on the whole message: the hub puts the user's name first, and a long
        # name would push "stopping" past the shortened message.
        full = self._hub_message(answer.response, limit=None)
        if status == 400 and ("pending" in full or "stopping" in full):
            return ActionResult(Outcome.PENDING, answer.attempts, full[:200])
        self._raise_for_status(answer, what, scope=scope)
        raise HubProtocolError(
            f"{what}: unexpected HTTP {status}", status=status, attempts=answer.attempts
        )

    # -- plumbing --------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        json: object = None,
        accept: str = "application/json",
    ) -> _Answer:
        url = self.url + path
        attempts = 0

        def once() -> Answer:
            nonlocal attempts
            attempts += 1
            response = self._transport.request(
                method, url, params=params, json=json, headers={"Accept": accept}
            )
            self._note_date(response)
            if 300 <= response.status_code < 400:
                raise self._redirected(response, what, attempts)
            if response.status_code in TRANSIENT_STATUSES:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise TransientHTTPError(response.status_code, retry_after)
            return response

        try:
            response = call_with_retries(
                once, self._retry, what, sleep=self._sleep, give_up=self._give_up
            )
        except (TransientHTTPError, requests.RequestException) as error:
            raise self._failure(error, what, attempts) from None
        return _Answer(response, attempts)

    def _failure(self, error: Exception, what: str, attempts: int) -> HubError:
        """The ``HubError`` an operator can act on, for a request that failed for good."""
        if isinstance(error, TransientHTTPError):
            return HubUnavailable(
                f"could not {what}: the hub answered HTTP {error.status} {_times(attempts)}; "
                "is it overloaded or restarting?",
                status=error.status,
                attempts=attempts,
            )
        if isinstance(error, AnswerTooLarge):
            return HubProtocolError(
                f"could not {what}: {error}, more than any JupyterHub API answer; "
                "refusing to read it (is --url the hub's API?)",
                attempts=attempts,
            )
        if isinstance(error, RequestAbandoned):
            return HubUnavailable(f"could not {what}: {error}", attempts=attempts)
        if isinstance(error, requests.exceptions.SSLError):
            return HubUnavailable(
                f"could not {what}: {self._tls_failure(error)}", attempts=attempts
            )
        if isinstance(error, requests.Timeout):
            # The socket's read timeout and the watchdog's deadline are the same number of
            # seconds, and which of them notices first is a race: one message for both.
            return HubUnavailable(
                f"could not {what}: no whole answer within {self._timeout:g}s, {_times(attempts)} "
                "(JUPYTERHUB_REQUEST_TIMEOUT)",
                attempts=attempts,
            )
        if isinstance(error, requests.ConnectionError):
            return HubUnavailable(
                f"could not {what}: cannot connect to {self.url} "
                f"({self._mask(_connection_reason(error))}); "
                "check --url and that the hub is running",
                attempts=attempts,
            )
        if isinstance(error, requests.exceptions.ChunkedEncodingError):
            return HubUnavailable(
                f"could not {what}: the connection was cut before the whole answer arrived, "
                f"{_times(attempts)}; is a proxy or load balancer in front of the hub dropping "
                "connections, or is the hub restarting?",
                attempts=attempts,
            )
        return HubProtocolError(f"could not {what}: {type(error).__name__}", attempts=attempts)

    def _tls_failure(self, error: requests.exceptions.SSLError) -> str:
        """Why TLS failed; a handshake with a plain-http port gets the likely cause named."""
        text = str(error).lower()
        plain = ("wrong version number", "record layer failure", "http request", "packet length")
        if isinstance(error, TLSHandshakeFailed) or any(sign in text for sign in plain):
            why = error if isinstance(error, TLSHandshakeFailed) else "the answer is not TLS"
            return (
                f"TLS handshake with {self.url} failed ({why}); "
                "is the hub serving plain http? Then use http:// in --url"
            )
        return (
            f"TLS handshake with {self.url} failed; "
            "check --ssl-enabled and --internal-certs-location"
        )

    def _redirected(self, response: Answer, what: str, attempts: int) -> HubError:
        """A 3xx is never followed: a DELETE redirected to a GET would "succeed" unseen."""
        location = self._mask(response.headers.get("Location", "")) or "nowhere"
        return HubProtocolError(
            f"could not {what}: the hub answered HTTP {response.status_code}, a redirect to "
            f"{location!r}, which idle-cull never follows; check --url (http or https, the "
            "hub's base URL followed by /hub/api)",
            status=response.status_code,
            attempts=attempts,
        )

    def _mask(self, text: str) -> str:
        """``text`` with our token replaced by ``***``, should a gateway quote it."""
        return text.replace(self._token, "***") if self._token else text

    def _hub_message(self, response: Answer, limit: int | None = 200) -> str:
        """The hub's error message, with our token masked should a gateway quote it."""
        message = _hub_message(response, limit=None)
        if self._token:
            message = message.replace(self._token, "***")
        return message if limit is None else message[:limit]

    def _json(self, answer: _Answer, what: str) -> Any:
        response = answer.response
        if response.status_code >= 300:
            self._raise_for_status(answer, f"read {what}", scope="list:users")
        try:
            return _decode_json(response)
        except ValueError:
            kind = self._mask(response.headers.get("Content-Type", "no content type"))
            raise HubProtocolError(
                f"{what} from {self._mask(response.url.split('?')[0])} is not JSON ({kind}); "
                "is --url the hub's API (ending in /hub/api)?",
                status=response.status_code,
                attempts=answer.attempts,
            ) from None

    def _raise_for_status(self, answer: _Answer, what: str, *, scope: str) -> None:
        response = answer.response
        status = response.status_code
        if status < 300:
            return
        message = self._hub_message(response)
        if status == 401:
            raise HubAuthError(
                f"could not {what}: the hub rejected the API token (401); check "
                "JUPYTERHUB_API_TOKEN or --api-token-file",
                status=status,
                attempts=answer.attempts,
            )
        if status == 403 and "credentials" in message.lower():
            # JupyterHub answers 403, not 401, to a token it does not know.
            raise HubAuthError(
                f"could not {what}: the hub does not accept the API token (403: {message}); "
                "check JUPYTERHUB_API_TOKEN or --api-token-file, and that the token is the "
                "api_token of a service in the hub's configuration",
                status=status,
                attempts=answer.attempts,
            )
        if status == 403:
            required = re.search(r"requires any of \[([^\]]*)\]", message)
            scopes = required.group(1) if required else scope
            raise HubAuthError(
                f"could not {what}: the token lacks the scope {scopes!r} (403: {message}); "
                + ROLE_HINT,
                status=status,
                attempts=answer.attempts,
            )
        if status >= 500:
            raise HubUnavailable(
                f"could not {what}: the hub failed with HTTP {status} ({message})",
                status=status,
                attempts=answer.attempts,
            )
        raise HubError(
            f"could not {what}: HTTP {status} ({message})", status=status, attempts=answer.attempts
        )
