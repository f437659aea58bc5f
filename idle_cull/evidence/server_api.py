"""``ServerAPI``: the one client every source uses to ask a user's own server something.

The kernel probe (``kernel_api``), the keep-alive file (``keep_alive``) and the server's
activity (``server_activity``) all send ``GET`` requests to a single-user server, with a
token of that server's own user (``probe_tokens``), never the culler's. What such a
request must be is the same for all of them, so it lives here once:

- ``no_track_activity=1`` on every request (jupyter_server would count it as activity),
  ``Accept: application/json`` and ``Authorization: token <the user's token>``;
- sent through ``transport.BoundedTransport``: a whole-answer deadline, a body cap, no
  redirects followed, abandoned a few seconds after the pass was told to stop;
- credentials never come from the environment (``trust_env`` off: no ``~/.netrc``
  replacing the token); with a proxy URL, ``HTTP(S)_PROXY`` and the CA bundle the
  environment names are checked and used, as for the hub;
- where a server is asked is not decided here: each source is given a locator
  (``proxy_routes``), which keeps the token under the proxy's origin or at the route
  JupyterHub wrote for that very server;
- a transient failure (a timeout, a dropped connection, 429 or a 502/503/504) is retried
  when the caller allows more than one attempt; everything else is returned as it is.
  A caller may leave timeouts out (``retry_timeouts=False``, the survey of every running
  server): a server that did not answer within the whole-answer deadline is most often
  gone or hung, and waiting for it a second time doubles what it costs the pass, while
  a reset connection or a proxy's 502/503 comes back at once and is worth one more try.

``get`` never raises for anything a server does: it returns the ``Answer`` (any status)
or a ``Failure`` whose ``reason`` never holds the token. Each source reads the answer and
words its own reasons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

import requests

from idle_cull import __version__
from idle_cull.evidence.probe_tokens import RenewableToken
from idle_cull.hub.environment import check_ca_bundle, check_proxies
from idle_cull.hub.retry import TRANSIENT_STATUSES
from idle_cull.transport import AnswerTooLarge, BoundedTransport, RequestAbandoned, RequestBounds

__all__ = [
    "REFUSED_STATUSES",
    "RETRY_PAUSE",
    "Answer",
    "Failed",
    "Failure",
    "ServerAPI",
    "http_status",
]

log = logging.getLogger(__name__)

RETRY_PAUSE = 0.5  # seconds before the one retry: long enough for a proxy hiccup to pass
# What jupyterhub-singleuser answers a token the hub no longer knows (its APIHandlers turn
# "no user" into 403; 401 is taken the same way).
REFUSED_STATUSES = frozenset({401, 403})


class Failed(Enum):
    """How a request failed without an answer; ``TIMEOUT`` and ``CONNECTION`` are transient."""

    ABANDONED = "abandoned"
    TOO_LARGE = "too large"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    ERROR = "error"
    STATUS = "status"  # a transient status still answered after the last attempt


@dataclass(frozen=True)
class Answer:
    """What the server answered (any status), after ``attempts`` requests."""

    status: int
    content: bytes
    headers: Mapping[str, str]
    attempts: int = 1


@dataclass(frozen=True)
class Failure:
    """Why there is no usable answer, after ``attempts`` requests.

    ``error`` names the exception's type (never its text, which may quote what a server
    sent); ``status`` is the last transient status when the retries ran out on one.
    """

    how: Failed
    reason: str
    attempts: int = 1
    error: str = ""
    status: int | None = None

    @property
    def transient(self) -> bool:
        return self.how in (Failed.TIMEOUT, Failed.CONNECTION, Failed.STATUS)


def http_status(status: int) -> str:
    """The plainest wording of a status, for sources that say nothing more about it."""
    return f"HTTP {status}"


class ServerAPI:
    """GET requests to users' servers, bounded and with the user's token; thread-safe.

    ``retry_timeouts``: whether a request that timed out is tried again (module
    docstring).
    ``proxy_url`` is the hub's proxy, whose environment proxy and CA bundle settings are
    checked and used for every request. Without it
    (a caller that locates servers itself, ``proxy_routes``) the environment is ignored.
    ``label`` names the caller in the retry log line.
    """

    def __init__(
        self,
        proxy_url: str | None,
        *,
        timeout: float,
        max_bytes: int,
        pool_size: int = 10,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        give_up: Callable[[], bool] = lambda: False,
        label: str = "probe",
        retry_timeouts: bool = True,
    ) -> None:
        self.proxy_url = (proxy_url or "").rstrip("/")
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._sleep = sleep
        self._label = label
        self._retry_timeouts = retry_timeouts
        self._session = session or requests.Session()
        if proxy_url is not None:
            settings = self._session.merge_environment_settings(
                self.proxy_url, {}, None, None, None
            )
            check_proxies(settings["proxies"])
            check_ca_bundle(settings["verify"], self.proxy_url)
            self._session.proxies.update(settings["proxies"])
            self._session.verify = settings["verify"]
        self._session.trust_env = False  # no ~/.netrc replacing the token
        self._session.headers["User-Agent"] = f"idle-cull/{__version__}"
        bounds = RequestBounds(whole=timeout, connect=timeout, max_bytes=max_bytes)
        self._transport = BoundedTransport(
            self._session, bounds, pool_size=pool_size, stop_requested=give_up
        )

    def close(self) -> None:
        self._transport.close()

    def get(
        self,
        url: str,
        token: str,
        *,
        attempts: int | None = None,
        describe: Callable[[int], str] = http_status,
        params: Mapping[str, str] | None = None,
    ) -> Answer | Failure:
        """One ``GET`` of ``url`` with ``params`` (and ``no_track_activity=1``).

        With ``attempts``, a transient failure is tried again up to that many requests in
        all, and one that lasts says so (``"HTTP 503 after 2 attempts"``, the status
        worded by ``describe``). Without it, one request and its outcome as it is.
        """
        query = {**(params or {}), "no_track_activity": "1"}
        if attempts is None:
            return self._send(url, token, query)
        outcome: Answer | Failure = Failure(Failed.ERROR, "no attempt", attempts=0)
        tries = max(1, attempts)
        for attempt in range(1, tries + 1):
            outcome = self._send(url, token, query)
            reason = _transient_reason(outcome, describe, retry_timeouts=self._retry_timeouts)
            if reason is None:
                return _counted(outcome, attempt)
            if attempt < tries:
                log.info("%s of %s: %s; trying once more", self._label, _path(url), reason)
                self._sleep(RETRY_PAUSE)
        return _gave_up(outcome, describe, tries)

    def _send(self, url: str, token: str, params: Mapping[str, str]) -> Answer | Failure:
        """``_once``, and for a kept token the server refuses, once more with a new one.

        The one place every source's request goes through, so the kernel probe, the
        activity probe and the keep-alive reader all get it. A token minted in this pass
        is not renewable: its refusal is the answer, as before.
        """
        if isinstance(token, RenewableToken):
            token = token.replacement() or token
        outcome = self._once(url, token, params)
        if (
            isinstance(token, RenewableToken)
            and isinstance(outcome, Answer)
            and outcome.status in REFUSED_STATUSES
        ):
            fresh = token.renewed()
            if fresh is not None:
                log.info(
                    "%s of %s: HTTP %d for a probe token kept from an earlier pass; "
                    "retrying once with a new one",
                    self._label,
                    _path(url),
                    outcome.status,
                )
                outcome = self._once(url, fresh, params)
        return outcome

    def _once(self, url: str, token: str, params: Mapping[str, str]) -> Answer | Failure:
        try:
            response = self._transport.request(
                "GET",
                url,
                params=params,
                headers={"Accept": "application/json", "Authorization": f"token {token}"},
            )
        except RequestAbandoned:
            return Failure(Failed.ABANDONED, "abandoned: the pass is stopping")
        except AnswerTooLarge:
            return Failure(Failed.TOO_LARGE, f"answer larger than {self._max_bytes // 1024} KiB")
        except requests.Timeout as error:
            reason = f"no answer within {self._timeout:g}s"
            return Failure(Failed.TIMEOUT, reason, error=type(error).__name__)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
            name = type(error).__name__
            return Failure(Failed.CONNECTION, f"connection failed ({name})", error=name)
        except requests.RequestException as error:
            name = type(error).__name__
            return Failure(Failed.ERROR, name, error=name)
        return Answer(response.status_code, response.content, response.headers)


def _transient_reason(
    outcome: Answer | Failure, describe: Callable[[int], str], *, retry_timeouts: bool = True
) -> str | None:
    """Why ``outcome`` is worth another try, or ``None`` when it is final."""
    if isinstance(outcome, Failure):
        if outcome.how is Failed.TIMEOUT and not retry_timeouts:
            return None
        return outcome.reason if outcome.transient else None
    return describe(outcome.status) if outcome.status in TRANSIENT_STATUSES else None


def _counted(outcome: Answer | Failure, attempts: int) -> Answer | Failure:
    if isinstance(outcome, Answer):
        return Answer(outcome.status, outcome.content, outcome.headers, attempts)
    return Failure(outcome.how, outcome.reason, attempts, outcome.error, outcome.status)


def _gave_up(outcome: Answer | Failure, describe: Callable[[int], str], tries: int) -> Failure:
    """The failure after the last attempt still failed transiently."""
    after = "1 attempt" if tries == 1 else f"{tries} attempts"
    if isinstance(outcome, Answer):
        reason = f"{describe(outcome.status)} after {after}"
        return Failure(Failed.STATUS, reason, tries, status=outcome.status)
    return Failure(outcome.how, f"{outcome.reason} after {after}", tries, outcome.error)


def _path(url: str) -> str:
    return urlsplit(url).path
