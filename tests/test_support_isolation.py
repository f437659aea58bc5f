"""The test fixtures that outlive one test must not leak into the next one's mocks.

The session's real workloads keep a poller running like an open JupyterLab tab; unit tests
run later in the same process with ``responses`` mocks, which patch ``requests``
process-wide. A poll sent through ``requests`` would be recorded by whatever mock is
active, and a test asserting that a pass sent nothing would fail now and then.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import responses

from tests.support.workloads import TabPoller


class _Counting(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_an_open_tab_poller_is_invisible_to_a_responses_mock() -> None:
    _Counting.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/user/tab/"
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            poller = TabPoller(base, "secret", every=0.05).start()
            try:
                for _ in range(200):  # at most 10 s
                    if poller.polls >= 2:
                        break
                    time.sleep(0.05)
            finally:
                poller.stop()
            assert poller.polls >= 2
            assert list(mock.calls) == []
    finally:
        server.shutdown()
        server.server_close()
    assert "/user/tab/api/kernels" in _Counting.seen
    assert "/user/tab/api/terminals" in _Counting.seen
