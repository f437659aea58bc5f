"""``ServerAPI``, the one client for users' servers, against ``responses`` servers.

What every source that reads a user's server shares: what is sent, where the token may
go, which failures are retried and how each ends. The sources' own wording of the same
outcomes is tested with each source (``test_kernel_api``, ``test_keepalive``,
``test_server_activity``). The client never really sleeps: it records its pauses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from idle_cull.errors import ConfigError
from idle_cull.evidence.proxy_routes import route_locator, through_proxy
from idle_cull.evidence.server_activity import ServerActivityProbe
from idle_cull.evidence.server_api import RETRY_PAUSE, Answer, Failed, Failure, ServerAPI
from tests.support.cli import run
from tests.support.emulated_hub import EmulatedHub
from tests.support.hostile_peer import HostilePeer

PROXY = "http://proxy.test:8000"
STATUS = f"{PROXY}/user/ann/api/status"
TOKEN = "pr0be-T0KEN-9f8e7d6c5b4a"
MISSING_BUNDLE = "/nonexistent/ca.pem"


@pytest.fixture
def server() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def pauses() -> list[float]:
    return []


@pytest.fixture
def api(pauses: list[float]) -> Iterator[ServerAPI]:
    client = ServerAPI(PROXY, timeout=2, max_bytes=1024, sleep=pauses.append)
    yield client
    client.close()


def test_a_get_carries_the_token_and_does_not_count_as_activity(
    server: responses.RequestsMock, api: ServerAPI
) -> None:
    server.get(STATUS, json={"kernels": 0})
    answer = api.get(STATUS, TOKEN, params={"content": "0"})
    assert isinstance(answer, Answer)
    assert (answer.status, answer.content, answer.attempts) == (200, b'{"kernels": 0}', 1)
    sent = server.calls[0].request
    assert dict(parse_qsl(urlsplit(sent.url or "").query)) == {
        "content": "0",
        "no_track_activity": "1",
    }
    assert sent.headers["Authorization"] == f"token {TOKEN}"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["User-Agent"].startswith("idle-cull/")


def test_a_transient_status_is_retried_once_after_a_pause(
    server: responses.RequestsMock, api: ServerAPI, pauses: list[float]
) -> None:
    server.get(STATUS, status=503)
    server.get(STATUS, json={})
    answer = api.get(STATUS, TOKEN, attempts=2)
    assert isinstance(answer, Answer)
    assert (answer.status, answer.attempts) == (200, 2)
    assert pauses == [RETRY_PAUSE]


def test_a_lasting_transient_status_is_a_failure_worded_by_the_caller(
    server: responses.RequestsMock, api: ServerAPI
) -> None:
    server.get(STATUS, status=502)
    failure = api.get(STATUS, TOKEN, attempts=2, describe=lambda status: f"HTTP {status} (x)")
    assert failure == Failure(Failed.STATUS, "HTTP 502 (x) after 2 attempts", 2, status=502)
    assert len(server.calls) == 2


def test_without_attempts_one_request_and_its_outcome_as_it_is(
    server: responses.RequestsMock, api: ServerAPI, pauses: list[float]
) -> None:
    server.get(STATUS, status=503)
    answer = api.get(STATUS, TOKEN)
    assert isinstance(answer, Answer)
    assert (answer.status, answer.attempts) == (503, 1)
    assert len(server.calls) == 1
    assert pauses == []


@pytest.mark.parametrize("status", [302, 401, 403, 404, 500])
def test_a_final_status_is_answered_after_one_request_and_never_followed(
    server: responses.RequestsMock, api: ServerAPI, status: int
) -> None:
    server.get(STATUS, status=status, headers={"Location": "http://evil.test/"})
    answer = api.get(STATUS, TOKEN, attempts=2)
    assert isinstance(answer, Answer)
    assert (answer.status, answer.attempts) == (status, 1)
    assert [c.request.url for c in server.calls] == [f"{STATUS}?no_track_activity=1"]


@pytest.mark.parametrize(
    ("error", "how", "reason"),
    [
        pytest.param(
            requests.ConnectionError("refused"),
            Failed.CONNECTION,
            "connection failed (ConnectionError) after 2 attempts",
            id="connection",
        ),
        pytest.param(
            requests.exceptions.ChunkedEncodingError("cut"),
            Failed.CONNECTION,
            "connection failed (ChunkedEncodingError) after 2 attempts",
            id="chunked",
        ),
        pytest.param(
            requests.ReadTimeout("slow"),
            Failed.TIMEOUT,
            "no answer within 2s after 2 attempts",
            id="timeout",
        ),
    ],
)
def test_a_transient_failure_is_tried_twice_then_failed(
    server: responses.RequestsMock,
    api: ServerAPI,
    error: Exception,
    how: Failed,
    reason: str,
) -> None:
    server.get(STATUS, body=error)
    failure = api.get(STATUS, TOKEN, attempts=2)
    assert isinstance(failure, Failure)
    assert (failure.how, failure.reason, failure.attempts) == (how, reason, 2)
    assert failure.error == type(error).__name__
    assert len(server.calls) == 2


@pytest.mark.parametrize(
    ("answer", "how", "sent"),
    [
        pytest.param(requests.ReadTimeout("slow"), Failed.TIMEOUT, 1, id="read-timeout"),
        pytest.param(requests.ConnectTimeout("no SYN-ACK"), Failed.TIMEOUT, 1, id="connect"),
        pytest.param(requests.ConnectionError("reset"), Failed.CONNECTION, 2, id="reset"),
        pytest.param(
            requests.exceptions.ChunkedEncodingError("cut"), Failed.CONNECTION, 2, id="cut"
        ),
        pytest.param(502, Failed.STATUS, 2, id="502"),
    ],
)
def test_without_retried_timeouts_only_quick_transient_failures_are_tried_again(
    server: responses.RequestsMock, answer: Exception | int, how: Failed, sent: int
) -> None:
    """The survey's client (issue 24): a server that did not answer in time is most
    often gone or hung, and a second wait doubles its cost; a reset connection or a
    proxy's 502 comes back at once and gets its one more try."""
    if isinstance(answer, int):
        server.get(STATUS, status=answer)
    else:
        server.get(STATUS, body=answer)
    pauses: list[float] = []
    api = ServerAPI(PROXY, timeout=2, max_bytes=1024, sleep=pauses.append, retry_timeouts=False)
    failure = api.get(STATUS, TOKEN, attempts=2)
    api.close()
    assert isinstance(failure, Failure)
    assert (failure.how, failure.attempts, len(server.calls)) == (how, sent, sent)
    assert pauses == [RETRY_PAUSE] * (sent - 1)
    if how is Failed.TIMEOUT:
        assert failure.reason == "no answer within 2s"


@pytest.mark.parametrize(("retry_timeouts", "sent"), [(False, 1), (True, 2)])
def test_a_server_that_never_answers_is_waited_for_once_without_retried_timeouts(
    retry_timeouts: bool, sent: int
) -> None:
    """On a real socket that accepts and never answers: one connection and one wait
    (the whole-answer deadline), not two; the kernel probe keeps its retry."""
    with HostilePeer("silent") as peer:
        base = f"http://127.0.0.1:{peer.port}"
        api = ServerAPI(
            base, timeout=0.3, max_bytes=1024, sleep=lambda _: None, retry_timeouts=retry_timeouts
        )
        failure = api.get(f"{base}/user/ann/api/kernels", TOKEN, attempts=2)
        api.close()
        connections = peer.connections
    assert isinstance(failure, Failure)
    assert (failure.how, failure.attempts, connections) == (Failed.TIMEOUT, sent, sent)


def test_a_request_that_cannot_be_sent_is_a_failure_without_retry(
    server: responses.RequestsMock, api: ServerAPI, pauses: list[float]
) -> None:
    server.get(STATUS, body=requests.exceptions.InvalidHeader(f"bad {TOKEN}"))
    failure = api.get(STATUS, TOKEN, attempts=2)
    assert failure == Failure(Failed.ERROR, "InvalidHeader", 1, error="InvalidHeader")
    assert pauses == []


def test_a_huge_answer_is_cut_off_at_the_cap(
    server: responses.RequestsMock, api: ServerAPI
) -> None:
    server.get(STATUS, body=b"[" + b" " * 4096 + b"]")
    failure = api.get(STATUS, TOKEN, attempts=2)
    assert failure == Failure(Failed.TOO_LARGE, "answer larger than 1 KiB", 1)


def test_a_request_is_abandoned_once_the_pass_is_told_to_stop() -> None:
    with HostilePeer("silent") as peer:
        api = ServerAPI(
            f"http://127.0.0.1:{peer.port}", timeout=30, max_bytes=1024, give_up=lambda: True
        )
        failure = api.get(f"http://127.0.0.1:{peer.port}/user/ann/api/status", TOKEN)
        api.close()
    assert isinstance(failure, Failure)
    assert (failure.how, failure.reason) == (Failed.ABANDONED, "abandoned: the pass is stopping")


def test_the_retry_is_logged_with_the_callers_label_and_never_the_token(
    server: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = ServerAPI(PROXY, timeout=2, max_bytes=1024, sleep=lambda _: None, label="checkup")
    server.get(STATUS, body=requests.ConnectionError(f"refused {TOKEN}"))
    api.get(STATUS, TOKEN, attempts=2)
    api.close()
    assert "checkup of /user/ann/api/status: connection failed" in caplog.text
    assert TOKEN not in caplog.text


def test_the_environments_settings_for_the_proxy_are_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", MISSING_BUNDLE)
    with pytest.raises(ConfigError, match=MISSING_BUNDLE):
        ServerAPI("https://proxy.test", timeout=2, max_bytes=1024)
    ServerAPI(None, timeout=2, max_bytes=1024).close()  # no proxy URL: none are used


def test_the_activity_probe_uses_the_environments_settings_for_the_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the kernel probe and the keep-alive reader do: it used to ignore them."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", MISSING_BUNDLE)
    with pytest.raises(ConfigError, match=MISSING_BUNDLE):
        ServerActivityProbe(through_proxy("https://proxy.test"))
    # at the route targets (--probe-via=route-target) no proxy is in between: none are used
    ServerActivityProbe(route_locator({})).close()


def test_the_server_activity_pass_checks_the_proxys_ca_bundle(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    """The boundary hands the proxy URL to the activity probe: a CA bundle that does not
    exist is a configuration error (exit 2) before any server is probed."""
    result = run(
        "--timeout=1h",
        "--activity-source=server",
        "--proxy-url=https://proxy.test",
        env={"REQUESTS_CA_BUNDLE": str(tmp_path / "missing.pem")},
    )
    assert result.exit_code == 2, result.stderr
    assert "missing.pem" in result.stderr
