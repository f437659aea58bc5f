"""``KernelProbe`` against ``responses`` servers: what is sent, and what every answer means.

The probe never really sleeps: it gets a ``sleep`` that records the pauses. The token it
sends is handed to each probe (``probe_tokens`` mints one per user); here a fixed one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from idle_cull.errors import HubAuthError
from idle_cull.evidence.kernel_api import (
    MAX_KERNELS_BODY,
    KernelProbe,
    KernelsWithUserToken,
    read_kernels,
)
from idle_cull.evidence.probe_tokens import ProbeTarget, ProbeTokens
from idle_cull.evidence.proxy_routes import through_proxy
from idle_cull.rules.busy_kernels import BusyKernel, ProbeResult
from tests.support.hostile_peer import HostilePeer

PROXY = "http://proxy.test:8000"
KERNELS = f"{PROXY}/user/ann/api/kernels"
TOKEN = "pr0be-T0KEN-9f8e7d6c5b4a"


def at(url: str | None, user: str = "ann", server: str = "") -> ProbeTarget:
    """The server ``url`` names, as a probe is asked about it."""
    return ProbeTarget(user, server, url, frozenset({server}))


def token() -> str:
    return TOKEN


def no_token() -> str:
    raise AssertionError("a token was asked for a server that is not probed")


def kernel(
    state: str, name: str = "python3", last: str = "2026-11-26T10:00:00.000000Z"
) -> dict[str, str]:
    return {"id": "k1", "name": name, "last_activity": last, "execution_state": state}


@pytest.fixture
def server() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def pauses() -> list[float]:
    return []


@pytest.fixture
def probe(pauses: list[float]) -> Iterator[KernelProbe]:
    client = KernelProbe(through_proxy(PROXY), sleep=pauses.append)
    yield client
    client.close()


def test_a_busy_kernel_is_reported_with_its_name_and_last_message(
    server: responses.RequestsMock, probe: KernelProbe
) -> None:
    server.get(KERNELS, json=[kernel("idle", "ir"), kernel("busy")])
    result = probe.probe(at("/user/ann/"), token)
    assert result.failure is None
    assert result.kernels == 2
    assert result.busy == (BusyKernel("python3", datetime(2026, 11, 26, 10, tzinfo=timezone.utc)),)
    assert result.attempts == 1
    assert result.seconds is not None


def test_the_request_does_not_count_as_activity_and_carries_the_token(
    server: responses.RequestsMock, probe: KernelProbe
) -> None:
    server.get(KERNELS, json=[])
    probe.probe(at("/user/ann/"), token)
    (call,) = server.calls
    assert dict(parse_qsl(urlsplit(call.request.url or "").query)) == {"no_track_activity": "1"}
    assert call.request.headers["Authorization"] == f"token {TOKEN}"


def test_a_named_server_url_is_probed_under_its_own_path(
    server: responses.RequestsMock, probe: KernelProbe
) -> None:
    server.get(f"{PROXY}/user/ann/gpu%20box/api/kernels", json=[kernel("idle")])
    result = probe.probe(at("/user/ann/gpu%20box/"), token)
    assert (result.failure, result.kernels, result.busy) == (None, 1, ())


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        pytest.param(
            404, "HTTP 404: no /api/kernels (not a Jupyter server?)", id="404-not-jupyter"
        ),
        pytest.param(403, "HTTP 403: the server refused its user's probe token", id="403"),
        pytest.param(401, "HTTP 401: the server refused its user's probe token", id="401"),
        pytest.param(500, "HTTP 500", id="500-not-retried"),
    ],
)
def test_an_error_status_is_a_failure_sent_once(
    server: responses.RequestsMock, probe: KernelProbe, status: int, reason: str
) -> None:
    server.get(KERNELS, status=status, body=f"token {TOKEN} refused")
    result = probe.probe(at("/user/ann/"), token)
    assert result.failure == reason
    assert len(server.calls) == 1
    assert TOKEN not in result.failure


def test_a_redirect_is_not_followed(server: responses.RequestsMock, probe: KernelProbe) -> None:
    server.get(KERNELS, status=302, headers={"Location": "http://elsewhere.test/login"})
    server.get("http://elsewhere.test/login", json=[])
    result = probe.probe(at("/user/ann/"), token)
    assert result.failure == "HTTP 302: redirected (not followed)"
    assert [urlsplit(c.request.url).netloc for c in server.calls] == ["proxy.test:8000"]


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(requests.ConnectTimeout("slow"), id="timeout"),
        pytest.param(requests.ConnectionError("refused"), id="connection-refused"),
    ],
)
def test_an_unreachable_server_is_tried_twice_then_failed(
    server: responses.RequestsMock,
    probe: KernelProbe,
    pauses: list[float],
    error: Exception,
) -> None:
    server.get(KERNELS, body=error)
    result = probe.probe(at("/user/ann/"), token)
    assert result.failed
    assert result.attempts == 2
    assert result.failure is not None
    assert result.failure.endswith("after 2 attempts")
    assert len(server.calls) == 2
    assert len(pauses) == 1


def test_a_transient_status_then_an_answer_succeeds_on_the_retry(
    server: responses.RequestsMock, probe: KernelProbe
) -> None:
    server.get(KERNELS, status=503)
    server.get(KERNELS, json=[kernel("busy")])
    result = probe.probe(at("/user/ann/"), token)
    assert (result.failure, len(result.busy), result.attempts) == (None, 1, 2)


def test_a_timeout_names_the_probe_timeout(
    server: responses.RequestsMock, pauses: list[float]
) -> None:
    server.get(KERNELS, body=requests.ReadTimeout("read timed out"))
    probe = KernelProbe(through_proxy(PROXY), timeout=1.5, attempts=1, sleep=pauses.append)
    assert probe.probe(at("/user/ann/"), token).failure == "no answer within 1.5s after 1 attempt"
    assert not pauses


@pytest.mark.parametrize(
    "server_url",
    [
        pytest.param("//evil.test/user/ann/", id="scheme-relative"),
        pytest.param("http://evil.test/user/ann/", id="absolute"),
        pytest.param("user/ann/", id="relative"),
        pytest.param("/user/ann/?x=1", id="query"),
        pytest.param("", id="empty"),
        pytest.param(None, id="missing"),
    ],
)
def test_the_token_never_leaves_for_a_url_that_is_not_a_plain_path(
    server: responses.RequestsMock, probe: KernelProbe, server_url: str | None
) -> None:
    result = probe.probe(at(server_url), no_token)
    assert result.failed
    assert result.attempts == 0
    assert not server.calls


def test_a_huge_answer_is_cut_off(server: responses.RequestsMock, probe: KernelProbe) -> None:
    server.get(KERNELS, body=b"[" + b" " * MAX_KERNELS_BODY + b"]")
    result = probe.probe(at("/user/ann/"), token)
    assert result.failure == "answer larger than 1024 KiB"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"<html>login</html>", "the answer is not JSON", id="html"),
        pytest.param(b'{"kernels": []}', "the answer is not a list of kernels", id="object"),
        pytest.param(
            b'[{"id": "k"}]', "a kernel in the answer has no execution_state", id="no-state"
        ),
        pytest.param(b"[1]", "a kernel in the answer has no execution_state", id="not-objects"),
        # issue 21 item 2: RecursionError escaped read_kernels and ended the pass
        pytest.param(b"[" * 40_000 + b"]" * 40_000, "the answer is not JSON", id="nested-40k"),
    ],
)
def test_an_answer_that_is_not_a_kernel_list_is_a_failure(body: bytes, reason: str) -> None:
    assert read_kernels(body) == ProbeResult.failed_with(reason)


@pytest.mark.parametrize(
    ("models", "busy"),
    [
        pytest.param([], (), id="no-kernels"),
        pytest.param([kernel("idle"), kernel("starting")], (), id="starting-does-not-protect"),
        pytest.param(
            [kernel("busy", last="not a time")], (BusyKernel("python3", None),), id="bad-time"
        ),
        pytest.param(
            [kernel("busy", name="x" * 200)],
            (BusyKernel("x" * 64, datetime(2026, 11, 26, 10, tzinfo=timezone.utc)),),
            id="long-name",
        ),
    ],
)
def test_only_busy_kernels_are_reported(
    models: list[dict[str, str]], busy: tuple[BusyKernel, ...]
) -> None:
    result = read_kernels(json.dumps(models).encode())
    assert (result.failure, result.kernels, result.busy) == (None, len(models), busy)


def test_the_token_is_never_logged(
    server: responses.RequestsMock, probe: KernelProbe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.get(KERNELS, status=502)
    result = probe.probe(at("/user/ann/"), token)
    assert result.failure == "HTTP 502 after 2 attempts"
    assert "trying once more" in caplog.text
    assert TOKEN not in caplog.text


def test_a_request_that_cannot_be_sent_is_a_failure_without_retry(
    server: responses.RequestsMock, probe: KernelProbe
) -> None:
    server.get(KERNELS, body=requests.exceptions.InvalidHeader("bad"))
    result = probe.probe(at("/user/ann/"), token)
    assert (result.failure, result.attempts, len(server.calls)) == ("InvalidHeader", 1, 1)


def test_a_server_that_trickles_its_answer_is_cut_off_at_the_probe_timeout() -> None:
    """Each byte arrives within the socket timeout; only a whole-answer deadline ends it."""
    with HostilePeer("trickle", interval=0.2, length=1000) as peer:
        probe = KernelProbe(
            through_proxy(f"http://127.0.0.1:{peer.port}"), timeout=1, sleep=lambda _: None
        )
        started = time.monotonic()
        result = probe.probe(at("/user/ann/"), token)
        probe.close()
    assert result.failure == "no answer within 1s after 2 attempts"
    assert time.monotonic() - started < 4


def test_a_probe_is_abandoned_once_the_pass_is_told_to_stop() -> None:
    with HostilePeer("silent") as peer:
        probe = KernelProbe(
            through_proxy(f"http://127.0.0.1:{peer.port}"),
            timeout=30,
            attempts=1,
            give_up=lambda: True,
        )
        started = time.monotonic()
        result = probe.probe(at("/user/ann/"), token)
        probe.close()
    assert result.failure == "abandoned: the pass is stopping"
    assert time.monotonic() - started < 10


class RefusingMinter:
    def new_token(
        self, user: str, *, scopes: list[str], expires_in: int, note: str
    ) -> dict[str, Any]:
        raise HubAuthError(f"could not mint a probe token for {user!r}: no", status=403)


def test_with_the_users_token_a_refused_mint_fails_that_probe_only(
    server: responses.RequestsMock, probe: KernelProbe
) -> None:
    """``KernelsWithUserToken`` (what the boundary wires): the hub's reason, nothing sent."""
    prober = KernelsWithUserToken(probe, ProbeTokens(RefusingMinter(), 60, probe_seconds=10))
    result = prober(at("/user/ann/"))
    assert result.failure == "no probe token: could not mint a probe token for 'ann': no"
    assert result.attempts == 0
    assert not server.calls
