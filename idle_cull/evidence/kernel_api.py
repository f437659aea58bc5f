"""``KernelProbe``: asks a single-user server about its kernels.

One request per probed server, ``GET {server}api/kernels?no_track_activity=1``, where
``{server}`` is the server's url through the hub's proxy or at its route's target
(``--probe-via``, ``proxy_routes``), with a token owned by the
server's user and scoped to that user's servers (``probe_tokens``): never the culler's
own token, which must not reach a server its user controls. It is built to be harmless
and cheap:

- ``no_track_activity=1``: jupyter_server would count the request as activity otherwise;
- its own short timeout for the whole answer and at most one retry (a connection error,
  a timeout, 429 or a 502/503/504), so a pass over many unreachable servers does not take
  minutes; sent through ``transport.BoundedTransport`` like every request to the hub, so
  a server that trickles its answer is cut off at the deadline too;
- redirects are never followed and the token goes only where the locator allows: a
  server ``url`` that is not a plain path (``//elsewhere/``), or a route that is not that
  server's, is refused before a token is even asked for;
- the body is read up to a cap and parsed by ``transport.read_json``, so no answer (40 KB
  of ``[[[...`` included) can raise out of the probe; credentials never come from the
  environment (netrc);
- a probe still unanswered a few seconds after the pass was told to stop is abandoned;
- the token is never logged or put in a failure reason.

It returns plain data (``busy.ProbeResult``): the busy kernels, or why the probe failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests

from idle_cull.errors import HubError
from idle_cull.evidence.kernel_probe import KERNEL_PROBE_TIMEOUT
from idle_cull.evidence.probe_tokens import ProbeTarget, ProbeTokens
from idle_cull.evidence.proxy_routes import Locator, NoAddress
from idle_cull.evidence.server_api import Failure, ServerAPI
from idle_cull.models import RecordError, parse_timestamp
from idle_cull.rules.busy_kernels import BUSY, BusyKernel, ProbeResult
from idle_cull.transport import read_json

__all__ = [
    "MAX_KERNELS_BODY",
    "PROBE_ATTEMPTS",
    "KernelProbe",
    "KernelsWithUserToken",
    "read_kernels",
]

PROBE_ATTEMPTS = 2  # one retry, for a dropped connection or a proxy hiccup
MAX_KERNELS_BODY = 1024 * 1024  # about 5,000 kernels; anything bigger is not a kernel list
MAX_NAME = 64  # a kernel spec name longer than this is shortened in reasons


class KernelProbe:
    """Probes servers where ``locate`` says (``evidence.proxy_routes``: through the proxy,
    or at the route's target); thread-safe."""

    def __init__(
        self,
        locate: Locator,
        *,
        timeout: float = KERNEL_PROBE_TIMEOUT,
        attempts: int = PROBE_ATTEMPTS,
        pool_size: int = 10,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        give_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self._locate = locate
        self._api = ServerAPI(
            locate.proxy_url,
            timeout=timeout,
            max_bytes=MAX_KERNELS_BODY,
            pool_size=pool_size,
            session=session,
            sleep=sleep,
            give_up=give_up,
            label="probe",
        )
        self._attempts = max(1, attempts)

    def close(self) -> None:
        self._api.close()

    def url_for(self, target: ProbeTarget) -> str | NoAddress:
        """The kernels URL of a server, or why it cannot be probed safely (the token must
        never leave for another host, nor go to a server that is someone else's)."""
        base = self._locate(target)
        return base if isinstance(base, NoAddress) else base + "api/kernels"

    def probe(self, target: ProbeTarget, token: Callable[[], str]) -> ProbeResult:
        """What the server ``target`` names says about its kernels.

        ``token`` gives the credential to send, asked for only once the url is usable;
        whatever it raises propagates (``KernelsWithUserToken`` handles it).
        """
        started = time.monotonic()
        url = self.url_for(target)
        if isinstance(url, NoAddress):
            return ProbeResult.failed_with(url.reason, attempts=0)
        result = self._probe(url, token())
        return ProbeResult(
            kernels=result.kernels,
            busy=result.busy,
            failure=result.failure,
            attempts=result.attempts,
            seconds=round(time.monotonic() - started, 3),
        )

    def _probe(self, url: str, token: str) -> ProbeResult:
        answer = self._api.get(url, token, attempts=self._attempts, describe=_status_reason)
        if isinstance(answer, Failure):
            return ProbeResult.failed_with(answer.reason, attempts=answer.attempts)
        if answer.status != 200:
            return ProbeResult.failed_with(_status_reason(answer.status), attempts=answer.attempts)
        return read_kernels(answer.content, attempts=answer.attempts)


class KernelsWithUserToken:
    """The prober ``KernelSource`` calls: the probe with a token of the server's owner
    (``probe_tokens``), asked for only once the server has a usable address; a token
    that cannot be had fails the probe of that server only, with the hub's reason (as
    ``server_activity.ActivityWithUserToken``)."""

    def __init__(self, kernels: KernelProbe, tokens: ProbeTokens) -> None:
        self._kernels = kernels
        self._tokens = tokens

    def __call__(self, target: ProbeTarget) -> ProbeResult:
        try:
            return self._kernels.probe(target, lambda: self._tokens.token_for(target))
        except HubError as error:
            return ProbeResult.failed_with(f"no probe token: {error}", attempts=0)


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
