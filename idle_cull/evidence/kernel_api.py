"""``KernelProbe``: asks a single-user server, through the hub's proxy, about its kernels.

The only HTTP idle-cull sends to anything but the hub. One request per probed server,
``GET {proxy URL}{server url}api/kernels?no_track_activity=1`` with a token owned by the
server's user and scoped to that user's servers (``probe_tokens``): never the culler's
own token, which must not reach a server its user controls. It is built to be harmless
and cheap:

- ``no_track_activity=1``: jupyter_server would count the request as activity otherwise;
- its own short timeout for the whole answer and at most one retry (a connection error,
  a timeout, 429 or a 502/503/504), so a pass over many unreachable servers does not take
  minutes; sent through ``transport.BoundedTransport`` like every request to the hub, so
  a server that trickles its answer is cut off at the deadline too;
- redirects are never followed and the token goes only to the configured proxy URL: a
  server ``url`` that is not a plain path (``//elsewhere/``) is refused before a token is
  even asked for;
- the body is read up to a cap and parsed by ``transport.read_json``, so no answer (40 KB
  of ``[[[...`` included) can raise out of the probe; credentials never come from the
  environment (netrc);
- a probe still unanswered a few seconds after the pass was told to stop is abandoned;
- the token is never logged or put in a failure reason.

It returns plain data (``busy.ProbeResult``): the busy kernels, or why the probe failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from idle_cull import __version__
from idle_cull.evidence.kernel_probe import KERNEL_PROBE_TIMEOUT
from idle_cull.hub.environment import check_ca_bundle, check_proxies
from idle_cull.hub.retry import TRANSIENT_STATUSES
from idle_cull.models import RecordError, parse_timestamp
from idle_cull.rules.busy_kernels import BUSY, BusyKernel, ProbeResult
from idle_cull.transport import (
    AnswerTooLarge,
    BoundedTransport,
    RequestAbandoned,
    RequestBounds,
    read_json,
)

__all__ = ["MAX_KERNELS_BODY", "PROBE_ATTEMPTS", "KernelProbe", "read_kernels"]

log = logging.getLogger(__name__)

PROBE_ATTEMPTS = 2  # one retry, for a dropped connection or a proxy hiccup
RETRY_PAUSE = 0.5
MAX_KERNELS_BODY = 1024 * 1024  # about 5,000 kernels; anything bigger is not a kernel list
MAX_NAME = 64  # a kernel spec name longer than this is shortened in reasons


class _Transient(Exception):
    """One attempt failed in a way worth one more try; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KernelProbe:
    """Probes servers at ``proxy_url`` + the server model's ``url``; thread-safe."""

    def __init__(
        self,
        proxy_url: str,
        *,
        timeout: float = KERNEL_PROBE_TIMEOUT,
        attempts: int = PROBE_ATTEMPTS,
        pool_size: int = 10,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        give_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self.proxy_url = proxy_url.rstrip("/")
        self._origin = urlsplit(self.proxy_url).netloc
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._sleep = sleep
        self._session = session or requests.Session()
        settings = self._session.merge_environment_settings(self.proxy_url, {}, None, None, None)
        check_proxies(settings["proxies"])
        check_ca_bundle(settings["verify"], self.proxy_url)
        self._session.trust_env = False  # no ~/.netrc replacing the token
        self._session.proxies.update(settings["proxies"])
        self._session.verify = settings["verify"]
        bounds = RequestBounds(whole=timeout, connect=timeout, max_bytes=MAX_KERNELS_BODY)
        self._transport = BoundedTransport(
            self._session, bounds, pool_size=pool_size, stop_requested=give_up
        )
        self._session.headers["User-Agent"] = f"idle-cull/{__version__}"

    def close(self) -> None:
        self._transport.close()

    def url_for(self, server_url: str) -> str | None:
        """The kernels URL of a server, or ``None`` when its ``url`` is not a plain path
        (the token must never leave for another host)."""
        if not server_url.startswith("/") or server_url.startswith("//"):
            return None
        url = f"{self.proxy_url}{server_url.rstrip('/')}/api/kernels"
        parts = urlsplit(url)
        if parts.netloc != self._origin or parts.query or parts.fragment:
            return None
        return url

    def probe(self, server_url: str | None, token: Callable[[], str]) -> ProbeResult:
        """What the server at ``server_url`` (``/user/ann/``) says about its kernels.

        ``token`` gives the credential to send, asked for only once the url is usable;
        whatever it raises propagates (``probe_tokens.ProbeWithUserToken`` handles it).
        """
        started = time.monotonic()
        url = self.url_for(server_url) if server_url else None
        if url is None:
            return ProbeResult.failed_with(
                f"the hub gave no usable server url ({server_url!r})", attempts=0
            )
        result = self._probe(url, token())
        return ProbeResult(
            kernels=result.kernels,
            busy=result.busy,
            failure=result.failure,
            attempts=result.attempts,
            seconds=round(time.monotonic() - started, 3),
        )

    def _probe(self, url: str, token: str) -> ProbeResult:
        reason = ""
        for attempt in range(1, self._attempts + 1):
            try:
                return self._once(url, token, attempt)
            except _Transient as error:
                reason = error.reason
                if attempt < self._attempts:
                    log.info("probe of %s: %s; trying once more", _path(url), reason)
                    self._sleep(RETRY_PAUSE)
        tries = "1 attempt" if self._attempts == 1 else f"{self._attempts} attempts"
        return ProbeResult.failed_with(f"{reason} after {tries}", attempts=self._attempts)

    def _once(self, url: str, token: str, attempt: int) -> ProbeResult:
        try:
            response = self._transport.request(
                "GET",
                url,
                params={"no_track_activity": "1"},
                headers={"Accept": "application/json", "Authorization": f"token {token}"},
            )
        except RequestAbandoned:
            return ProbeResult.failed_with("abandoned: the pass is stopping", attempts=attempt)
        except AnswerTooLarge:
            return ProbeResult.failed_with(
                f"answer larger than {MAX_KERNELS_BODY // 1024} KiB", attempts=attempt
            )
        except requests.Timeout:
            raise _Transient(f"no answer within {self._timeout:g}s") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
            raise _Transient(f"connection failed ({type(error).__name__})") from None
        except requests.RequestException as error:
            return ProbeResult.failed_with(type(error).__name__, attempts=attempt)
        status = response.status_code
        if status in TRANSIENT_STATUSES:
            raise _Transient(f"HTTP {status}")
        if status != 200:
            return ProbeResult.failed_with(_status_reason(status), attempts=attempt)
        return read_kernels(response.content, attempts=attempt)


def _status_reason(status: int) -> str:
    if status in (401, 403):
        return f"HTTP {status}: the server refused its user's probe token"
    if status == 404:
        return "HTTP 404: no /api/kernels (not a Jupyter server?)"
    if 300 <= status < 400:
        return f"HTTP {status}: redirected (not followed)"
    return f"HTTP {status}"


def read_kernels(body: bytes, *, attempts: int = 1) -> ProbeResult:
    """A ``ProbeResult`` from the body of ``/api/kernels``: a JSON list of kernel models.

    Anything else (an HTML login page, an object, items without ``execution_state``) is
    a failed probe: only a real kernel list can tell that no kernel is busy.
    """
    try:
        models: Any = read_json(body)
    except ValueError:
        return ProbeResult.failed_with("the answer is not JSON", attempts=attempts)
    if not isinstance(models, list):
        return ProbeResult.failed_with("the answer is not a list of kernels", attempts=attempts)
    busy: list[BusyKernel] = []
    for model in models:
        state = model.get("execution_state") if isinstance(model, dict) else None
        if not isinstance(state, str):
            return ProbeResult.failed_with(
                "a kernel in the answer has no execution_state", attempts=attempts
            )
        if state == BUSY:
            name = str(model.get("name") or "?")[:MAX_NAME]
            busy.append(BusyKernel(name=name, since=_since(model)))
    return ProbeResult(kernels=len(models), busy=tuple(busy), attempts=attempts)


def _since(model: dict[str, Any]) -> datetime | None:
    try:
        return parse_timestamp(model.get("last_activity"), field="kernel last_activity")
    except RecordError:
        return None


def _path(url: str) -> str:
    return urlsplit(url).path
