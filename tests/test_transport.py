"""The bounded transport over real sockets: deadline, size cap, connect bound, abandonment.

``responses`` replaces the adapter's ``send``, so it cannot show what happens on the wire;
these tests talk to the peers of ``tests/support/hostile_peer.py`` on 127.0.0.1. They
also pin what the transport must keep doing through urllib3's public seams only: the
watchdog finds the socket of a request on a new connection and on a kept-alive one, a
connection goes back to the pool only after a whole answer, and ``responses`` still
answers through the transport's adapter. ``scripts/test-deps`` runs them against the
oldest requests and urllib3 that setup.cfg allows.
"""

from __future__ import annotations

import gc
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import responses

from idle_cull.transport import (
    Answer,
    AnswerTooLarge,
    BoundedTransport,
    RequestAbandoned,
    RequestBounds,
    TLSHandshakeFailed,
    WholeAnswerTimeout,
)
from tests.support.certs import write_localhost_cert
from tests.support.hostile_peer import HostilePeer, ScriptedPeer, blackhole

QUICK = RequestBounds(whole=1.0, connect=1.0, max_bytes=1000, grace=0.3)


@pytest.fixture(autouse=True)
def no_socket_left_open() -> Iterator[None]:
    """A refused answer's connection must be closed, not left to the garbage collector:
    collected here, an open socket is a ResourceWarning, and so an error in this test."""
    yield
    gc.collect()


@pytest.fixture
def transport() -> Iterator[BoundedTransport]:
    bounded = BoundedTransport(requests.Session(), QUICK)
    yield bounded
    bounded.close()


def timed(transport: BoundedTransport, url: str) -> tuple[BaseException | Answer, float]:
    """The answer or the error of one GET, and the seconds it took."""
    started = time.monotonic()
    try:
        outcome: BaseException | Answer = transport.request("GET", url)
    except requests.RequestException as error:
        outcome = error
    return outcome, time.monotonic() - started


def test_a_whole_answer_is_returned_with_its_body(transport: BoundedTransport) -> None:
    with ScriptedPeer(["ok"]) as peer:
        url = f"http://127.0.0.1:{peer.port}/x?a=1"
        answer = transport.request("GET", url)
    assert (answer.status_code, answer.reason, answer.content) == (200, "OK", b"ok")
    assert answer.headers["x-peer"] == "scripted"  # case-insensitive, as requests' headers
    assert answer.url == url


def test_a_trickling_answer_ends_at_the_whole_answer_deadline(transport: BoundedTransport) -> None:
    """Each byte comes well within the read timeout (1 s); the whole never does."""
    with ScriptedPeer(["trickle"], interval=0.2) as peer:
        error, elapsed = timed(transport, f"http://127.0.0.1:{peer.port}/")
    assert isinstance(error, WholeAnswerTimeout)
    assert str(error) == "no whole answer within 1s"
    assert 0.9 < elapsed < 2.5


def test_a_trickle_without_a_length_is_a_timeout_not_a_shorter_body(
    transport: BoundedTransport,
) -> None:
    """The watchdog's shutdown ends such a body as a close would: still not a whole answer."""
    with ScriptedPeer(["drip"], interval=0.2) as peer:
        error, elapsed = timed(transport, f"http://127.0.0.1:{peer.port}/")
    assert isinstance(error, WholeAnswerTimeout)
    assert 0.9 < elapsed < 2.5


def test_the_deadline_reaches_a_request_on_a_kept_alive_connection(
    transport: BoundedTransport,
) -> None:
    """The watchdog learns the socket of a reused connection too (no new connect)."""
    with ScriptedPeer(["ok", "trickle"], interval=0.2) as peer:
        url = f"http://127.0.0.1:{peer.port}/"
        transport.request("GET", url)
        error, elapsed = timed(transport, url)
        assert peer.connections == 1
    assert isinstance(error, WholeAnswerTimeout)
    assert 0.9 < elapsed < 2.5


def test_a_silent_peer_ends_at_the_deadline(transport: BoundedTransport) -> None:
    with ScriptedPeer(["silent"]) as peer:
        error, elapsed = timed(transport, f"http://127.0.0.1:{peer.port}/")
    assert isinstance(error, requests.Timeout)  # the read timeout or the watchdog: a race
    assert 0.9 < elapsed < 2.5


def test_an_answer_over_the_cap_is_refused_as_it_is_read(transport: BoundedTransport) -> None:
    """No Content-Length to refuse it by: the count of bytes read does, and the
    half-read connection is closed rather than put back in the pool."""
    with ScriptedPeer(["huge", "ok"], length=5000) as peer:
        url = f"http://127.0.0.1:{peer.port}/"
        with pytest.raises(AnswerTooLarge, match=r"larger than 1,000 bytes"):
            transport.request("GET", url)
        assert transport.request("GET", url).content == b"ok"
        assert peer.connections == 2


def test_an_answer_cut_short_is_an_error_not_a_shorter_body(transport: BoundedTransport) -> None:
    """urllib3 2 says so itself; urllib3 1.26 would return the half that arrived."""
    with ScriptedPeer(["cut"], length=100) as peer:
        error, _ = timed(transport, f"http://127.0.0.1:{peer.port}/")
    assert isinstance(error, requests.exceptions.ChunkedEncodingError)


def test_an_answer_announcing_more_than_the_cap_is_refused_unread(
    transport: BoundedTransport,
) -> None:
    with ScriptedPeer(["trickle"], length=1001, interval=5) as peer:
        error, elapsed = timed(transport, f"http://127.0.0.1:{peer.port}/")
    assert isinstance(error, AnswerTooLarge)
    assert str(error) == "the answer announces 1,001 bytes"
    assert elapsed < 0.9  # not one byte of the body was waited for


def test_an_answer_at_the_cap_is_whole(transport: BoundedTransport) -> None:
    with ScriptedPeer(["huge"], length=1000) as peer:
        answer = transport.request("GET", f"http://127.0.0.1:{peer.port}/")
    assert answer.content == b"x" * 1000


def test_a_connect_that_hangs_ends_at_the_connect_bound() -> None:
    bounded = BoundedTransport(requests.Session(), RequestBounds(whole=10, connect=0.5))
    with blackhole() as port:
        error, elapsed = timed(bounded, f"http://127.0.0.1:{port}/")
    bounded.close()
    assert isinstance(error, requests.exceptions.ConnectTimeout)
    assert 0.4 < elapsed < 2


def test_a_stop_abandons_a_request_after_the_grace() -> None:
    stop = threading.Event()
    bounded = BoundedTransport(
        requests.Session(), RequestBounds(whole=60, grace=0.3), stop_requested=stop.is_set
    )
    with ScriptedPeer(["ok", "trickle"], interval=0.2) as peer:
        url = f"http://127.0.0.1:{peer.port}/"
        bounded.request("GET", url)  # the abandoned request then rides a kept-alive socket
        threading.Timer(0.3, stop.set).start()
        error, elapsed = timed(bounded, url)
    bounded.close()
    assert isinstance(error, RequestAbandoned)
    assert str(error) == "abandoned 0.3s after the pass was asked to stop"
    assert 0.5 < elapsed < 2


def test_https_to_a_plain_port_that_never_answers_is_a_handshake_failure() -> None:
    bounded = BoundedTransport(requests.Session(), RequestBounds(whole=60, connect=0.5))
    with HostilePeer("silent") as peer:
        error, elapsed = timed(bounded, f"https://127.0.0.1:{peer.port}/")
        assert peer.connections == 1
    bounded.close()
    assert isinstance(error, TLSHandshakeFailed)
    assert str(error) == "no TLS handshake within 0.5s"
    assert elapsed < 2


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, requests.Session]:
    """A server context for a peer, and a session that trusts it."""
    cert, key = write_localhost_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    session = requests.Session()
    session.verify = str(cert)
    return context, session


def test_after_a_handshake_a_trickle_is_a_deadline_not_a_handshake_failure(
    tls: tuple[ssl.SSLContext, requests.Session],
) -> None:
    context, session = tls
    bounded = BoundedTransport(session, QUICK)
    with ScriptedPeer(["ok", "trickle"], interval=0.2, tls=context) as peer:
        url = f"https://127.0.0.1:{peer.port}/"
        assert bounded.request("GET", url).content == b"ok"
        error, elapsed = timed(bounded, url)
        assert peer.connections == 1
    bounded.close()
    assert isinstance(error, WholeAnswerTimeout)
    assert 0.9 < elapsed < 2.5


def test_https_answers_whole_on_a_new_connection_too(
    tls: tuple[ssl.SSLContext, requests.Session],
) -> None:
    context, session = tls
    bounded = BoundedTransport(session, QUICK)
    with ScriptedPeer(["trickle"], interval=0.2, tls=context) as peer:
        error, _ = timed(bounded, f"https://127.0.0.1:{peer.port}/")
    bounded.close()
    assert isinstance(error, WholeAnswerTimeout)


def test_connections_are_kept_alive_and_reused(transport: BoundedTransport) -> None:
    with ScriptedPeer(["ok"]) as peer:
        for _ in range(5):
            assert transport.request("GET", f"http://127.0.0.1:{peer.port}/").content == b"ok"
        assert (peer.requests, peer.connections) == (5, 1)


def test_requests_run_side_by_side_up_to_the_pool_size() -> None:
    """Ten at once take about one answer's time, and their connections are kept."""
    bounded = BoundedTransport(requests.Session(), RequestBounds(whole=10), pool_size=10)
    with ScriptedPeer(["ok"], delay=0.3) as peer:
        url = f"http://127.0.0.1:{peer.port}/"
        with ThreadPoolExecutor(10) as pool:
            started = time.monotonic()
            first = list(pool.map(lambda _: bounded.request("GET", url).content, range(10)))
            elapsed = time.monotonic() - started
            second = list(pool.map(lambda _: bounded.request("GET", url).content, range(10)))
        assert first == second == [b"ok"] * 10
        assert peer.most_at_once == 10
        assert peer.connections == 10  # the second round reused the first's connections
    bounded.close()
    assert elapsed < 2  # one after the other: 3 s


def test_responses_still_answers_through_the_transport(transport: BoundedTransport) -> None:
    """The unit tests' ``responses`` patches ``HTTPAdapter.send``: ours must not bypass it."""
    with responses.RequestsMock() as mock:
        mock.get("http://hub.test/hub/api/", body=b'{"version": "6.1.1"}', status=200)
        answer = transport.request("GET", "http://hub.test/hub/api/")
    assert answer.content == b'{"version": "6.1.1"}'
