"""``HubClient.responsiveness``: the limiter's probe of the hub, over real loopback HTTP.

A tiny HTTP/1.1 server stands in for ``GET /hub/api/``: it counts connections and records
the headers, which ``responses`` cannot show (connection reuse is the point here).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from idle_cull.hub.client import RESPONSIVENESS_BODY_CAP, HubClient

TOKEN = "probe-test-token-0123456789abcdef"


class VersionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, body: bytes) -> None:
        super().__init__(("127.0.0.1", 0), VersionHandler)
        self.body = body
        self.connections = 0
        self.authorization: list[str | None] = []


class VersionHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: VersionServer

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_GET(self) -> None:
        self.server.authorization.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def version_server(request: pytest.FixtureRequest) -> Iterator[VersionServer]:
    body = getattr(request, "param", b'{"version": "6.1.1"}')
    server = VersionServer(body)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def client_for(server: VersionServer) -> HubClient:
    host, port = server.server_address[:2]
    return HubClient(f"http://{host!s}:{port}/hub/api", TOKEN)


def test_probes_share_one_connection_and_carry_no_token(version_server: VersionServer) -> None:
    client = client_for(version_server)
    try:
        latencies = [client.responsiveness() for _ in range(5)]
    finally:
        client.close()
    assert all(latency is not None and 0 < latency < 5 for latency in latencies)
    assert version_server.connections == 1
    assert version_server.authorization == [None] * 5


@pytest.mark.parametrize("version_server", [b"x" * (RESPONSIVENESS_BODY_CAP + 1)], indirect=True)
def test_an_answer_over_the_size_cap_counts_as_no_answer(version_server: VersionServer) -> None:
    client = client_for(version_server)
    try:
        assert client.responsiveness() is None
    finally:
        client.close()


def test_an_unreachable_hub_counts_as_no_answer() -> None:
    client = HubClient("http://127.0.0.1:9/hub/api", TOKEN)
    try:
        assert client.responsiveness() is None
    finally:
        client.close()
