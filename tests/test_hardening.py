"""Issue 13: a hostile proxy, clock, file system or answer can neither cause a wrong cull
nor hang a pass. One section per defect class; each test fails without its fix.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from idle_cull.command.logs import JsonFormatter
from idle_cull.command.publish import write_stdout
from idle_cull.command.settings import read_token
from idle_cull.errors import (
    ConfigError,
    HubProtocolError,
    HubUnavailable,
    OutputError,
    PushgatewayError,
)
from idle_cull.hub.client import HubClient, parse_version
from idle_cull.hub.retry import RetryPolicy
from idle_cull.output.metrics import push_metrics, read_last_success
from idle_cull.output.report import ExitStatus
from idle_cull.transport import RequestBounds
from tests.support.certs import write_internal_certs
from tests.support.cli import run
from tests.support.emulated_hub import TOKEN as FAKEHUB_TOKEN
from tests.support.emulated_hub import URL, EmulatedHub, server_json, user_json
from tests.support.hostile_peer import EmptyHub, HostilePeer
from tests.support.reports import a_report

TOKEN = "hardening-token-0123456789abcdef"
ONCE = RetryPolicy(attempts=1, initial_wait=0, max_wait=0)
THRICE = RetryPolicy(attempts=3, initial_wait=0, max_wait=0)


def idle(name: str) -> dict[str, Any]:
    return user_json(name, idle=7200, servers=[server_json(idle=7200)])


# -- class 2: redirects are never followed ---------------------------------------------


def test_a_redirected_stop_is_a_failure_not_a_stop(emulated_hub: EmulatedHub) -> None:
    """requests would turn the redirected DELETE into a GET, which the hub answers 200."""
    emulated_hub.serve_users("ready", [idle("ann")])
    emulated_hub.delete(
        f"{URL}/users/ann/server", status=302, headers={"Location": f"{URL}/users/ann"}
    )
    result = run("--timeout=1h", "--report=json")
    assert result.exit_code == 1, result.stderr
    entry = json.loads(result.stdout)["entries"][0]
    assert entry["outcome"] == "failed"
    assert f"redirect to '{URL}/users/ann'" in entry["error"]
    assert "check --url" in entry["error"]
    # only the DELETE, never the redirect's GET (no re-check either: the listing is fresh)
    assert [
        c.request.method for c in emulated_hub.calls if "users/ann" in (c.request.url or "")
    ] == [
        "DELETE",
    ]


def test_a_redirected_probe_names_the_location_and_exits_3(emulated_hub: EmulatedHub) -> None:
    emulated_hub.replace(
        responses.GET, f"{URL}/", status=301, headers={"Location": "https://hub.test/hub/api/"}
    )
    emulated_hub.get("https://hub.test/hub/api/", json={"version": "6.1.1"})
    result = run("--timeout=1h")
    assert result.exit_code == 3, result.stderr
    assert "HTTP 301, a redirect to 'https://hub.test/hub/api/'" in result.stderr
    assert len(emulated_hub.calls) == 1


def test_a_redirect_location_carrying_the_token_is_masked(emulated_hub: EmulatedHub) -> None:
    client = HubClient(URL, TOKEN, retry=ONCE)
    emulated_hub.replace(
        responses.GET, f"{URL}/", status=302, headers={"Location": f"http://gw/login?t={TOKEN}"}
    )
    with pytest.raises(HubProtocolError) as caught:
        client.hub_version()
    client.close()
    assert TOKEN not in str(caught.value)
    assert "t=***" in str(caught.value)


# -- class 3: a whole request is bounded, and a stop ends requests in flight -----------


def test_a_trickling_answer_times_out_as_a_whole() -> None:
    """Each byte arrives well within the read timeout; the whole answer never does."""
    with HostilePeer("trickle", interval=0.2) as peer:
        client = HubClient(
            f"http://127.0.0.1:{peer.port}/hub/api", TOKEN, request_timeout=1.0, retry=ONCE
        )
        started = time.monotonic()
        with pytest.raises(HubUnavailable, match=r"no whole answer within 1s"):
            client.hub_version()
        elapsed = time.monotonic() - started
        client.close()
    assert elapsed < 3


def test_the_limiters_probe_of_a_trickling_hub_is_bounded_as_a_whole() -> None:
    """The responsiveness probe is a request like any other: a trickle cannot hold it.

    The end of the action phase waits for a probe in flight, so an unbounded probe
    would hang the pass past ``--deadline`` and SIGTERM alike.
    """
    with HostilePeer("trickle", interval=0.2, length=100) as peer:
        client = HubClient(f"http://127.0.0.1:{peer.port}/hub/api", TOKEN, request_timeout=1.0)
        started = time.monotonic()
        latency = client.responsiveness()
        elapsed = time.monotonic() - started
        client.close()
    assert latency is None  # no whole answer: a slow hub, as far as the limiter knows
    assert 0.9 < elapsed < 3  # 100 bytes at 0.2 s each would take 20 s


def test_a_stop_abandons_the_limiters_probe_after_the_grace() -> None:
    stop = threading.Event()
    with HostilePeer("trickle", interval=0.2, length=1000) as peer:
        client = HubClient(
            f"http://127.0.0.1:{peer.port}/hub/api",
            TOKEN,
            request_timeout=60.0,
            bounds=RequestBounds(whole=60, connect=5, grace=0.5),
            give_up=stop.is_set,
        )
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        latency = client.responsiveness()
        elapsed = time.monotonic() - started
        client.close()
    assert latency is None
    assert elapsed < 3  # the probe's own bound is 5 s: the stop ended it first


def test_a_stop_abandons_requests_in_flight_after_the_grace() -> None:
    from idle_cull.transport import BoundedTransport, RequestAbandoned, RequestBounds  # noqa: PLC0415

    stop = threading.Event()
    with HostilePeer("trickle", interval=0.2) as peer:
        transport = BoundedTransport(
            requests.Session(),
            RequestBounds(whole=60, connect=5, grace=0.5),
            stop_requested=stop.is_set,
        )
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        with pytest.raises(
            RequestAbandoned, match=r"abandoned 0\.5s after the pass was asked to stop"
        ):
            transport.request("GET", f"http://127.0.0.1:{peer.port}/")
        elapsed = time.monotonic() - started
        transport.close()
    assert 0.7 < elapsed < 3


def test_an_abandoned_request_is_not_retried() -> None:
    with HostilePeer("trickle", interval=0.2) as peer:
        from idle_cull.transport import RequestBounds  # noqa: PLC0415

        client = HubClient(
            f"http://127.0.0.1:{peer.port}/hub/api",
            TOKEN,
            retry=THRICE,
            give_up=lambda: True,
            bounds=RequestBounds(whole=60, connect=5, grace=0.3),
        )
        with pytest.raises(HubUnavailable, match="abandoned"):
            client.hub_version()
        client.close()
        assert peer.connections == 1


# -- class 4: https to a plain-http port ----------------------------------------------


def test_https_to_a_silent_plain_port_fails_fast_with_a_hint() -> None:
    """The handshake gets the connect timeout, is not retried, and the message says why."""
    with HostilePeer("silent") as peer:
        client = HubClient(
            f"https://127.0.0.1:{peer.port}/hub/api", TOKEN, request_timeout=1.5, retry=THRICE
        )
        started = time.monotonic()
        with pytest.raises(
            HubUnavailable, match=r"is the hub serving plain http\? Then use http://"
        ):
            client.hub_version()
        elapsed = time.monotonic() - started
        client.close()
        assert peer.connections == 1
    assert elapsed < 3


def test_https_to_an_answering_plain_port_names_plain_http() -> None:
    """A plain server that answers the ClientHello with a 400 page: not TLS."""
    import http.server  # noqa: PLC0415

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = HubClient(f"https://127.0.0.1:{server.server_port}/hub/api", TOKEN, retry=THRICE)
        with pytest.raises(HubUnavailable, match=r"the answer is not TLS.*plain http"):
            client.hub_version()
        client.close()
    finally:
        server.shutdown()
        server.server_close()


# -- class 5: memory is bounded, not by what the hub sends ----------------------------


def test_a_gzip_bomb_is_refused_by_its_decoded_size(emulated_hub: EmulatedHub) -> None:
    bomb = gzip.compress(b'{"version": "' + b"9" * (20 * 1024 * 1024) + b'"}')
    assert len(bomb) < 100_000
    emulated_hub.replace(responses.GET, f"{URL}/", body=bomb, headers={"Content-Encoding": "gzip"})
    client = HubClient(URL, TOKEN, retry=ONCE)
    with pytest.raises(HubProtocolError, match=r"larger than 16,777,216 bytes"):
        client.hub_version()
    client.close()


def test_an_announced_oversized_answer_is_refused_unread(emulated_hub: EmulatedHub) -> None:
    emulated_hub.replace(
        responses.GET, f"{URL}/", body=b"{}", headers={"Content-Length": str(2**40)}
    )
    client = HubClient(URL, TOKEN, retry=ONCE)
    with pytest.raises(HubProtocolError, match=r"announces 1,099,511,627,776 bytes"):
        client.hub_version()
    client.close()


def test_the_concurrent_page_plan_does_not_trust_a_huge_total(emulated_hub: EmulatedHub) -> None:
    calls = 0

    def page(request: Any) -> tuple[int, dict[str, str], str]:
        nonlocal calls
        calls += 1
        if calls > 50:
            raise AssertionError("the page plan was not capped")
        offset = int(dict(parse_qsl(urlsplit(request.url).query))["offset"])
        following = {"offset": offset + 50, "limit": 50}
        body = {
            "items": [],
            "_pagination": {"offset": offset, "limit": 50, "total": 10**15, "next": following},
        }
        return 200, {}, json.dumps(body)

    emulated_hub.add_callback(responses.GET, f"{URL}/users", callback=page)
    result = run("--timeout=1h")
    assert result.exit_code == 3, result.stderr
    assert "total of 1,000,000,000,000,000 users" in result.stderr
    assert calls == 1
    assert emulated_hub.deleted_urls() == []


def test_the_deadline_ends_a_pass_stuck_in_a_trickling_probe() -> None:
    """Status 1 (the deadline), not a pass held until the trickle ends."""
    with HostilePeer("trickle", interval=0.2) as peer:
        started = time.monotonic()
        result = run(
            "--deadline=1", env={"JUPYTERHUB_API_URL": f"http://127.0.0.1:{peer.port}/hub/api"}
        )
        elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.stderr
    assert "--deadline of 1s passed" in result.stderr
    assert "abandoned 5s after the pass was asked to stop" in result.stderr
    assert elapsed < 9


def test_sigterm_ends_a_pass_stuck_in_a_trickling_probe(tmp_path: Path) -> None:
    with HostilePeer("trickle", interval=0.2) as peer:
        process = subprocess.Popen(
            [sys.executable, "-m", "idle_cull", "--report=json"],
            env=clean_env(f"http://127.0.0.1:{peer.port}/hub/api"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
        elapsed = time.monotonic() - started
    assert process.returncode == 1, stderr
    assert "SIGTERM received" in stderr
    assert json.loads(stdout)["interrupted"] == "SIGTERM received"
    assert elapsed < 8


def clean_env(url: str) -> dict[str, str]:
    """This interpreter's environment without any hub or proxy settings, plus ours."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTERHUB_", "HTTP", "http", "NO_PROXY", "no_proxy"))
    }
    return {**keep, "JUPYTERHUB_API_URL": url, "JUPYTERHUB_API_TOKEN": TOKEN}


def test_a_trickling_pushgateway_cannot_hold_the_process() -> None:
    with HostilePeer("trickle", interval=0.2) as peer:
        started = time.monotonic()
        with pytest.raises(PushgatewayError, match=r"no whole answer within 1s"):
            push_metrics(f"http://127.0.0.1:{peer.port}", a_report(), ExitStatus.OK, timeout=1)
        assert time.monotonic() - started < 3


def test_a_redirecting_pushgateway_is_not_followed() -> None:
    with responses.RequestsMock() as gateway:
        gateway.post(
            "http://gw.test:9091/metrics/job/idle-cull",
            status=307,
            headers={"Location": "http://elsewhere/"},
        )
        with pytest.raises(PushgatewayError, match=r"HTTP 307, a redirect to 'http://elsewhere/'"):
            push_metrics("http://gw.test:9091", a_report(), ExitStatus.OK)
        assert len(gateway.calls) == 1


# -- class 1: a Date header far from this machine's clock -----------------------------


def serve_dated(emulated_hub: EmulatedHub, users: list[dict[str, Any]], hub_now: datetime) -> None:
    """A hub (or a front proxy) whose Date header reads ``hub_now``."""
    emulated_hub.set_clock(hub_now)
    emulated_hub.serve_users("ready", users)
    for user in users:
        emulated_hub.answer_stop(user["name"])


def test_a_proxy_clock_hours_ahead_culls_nothing_by_default(emulated_hub: EmulatedHub) -> None:
    """Active seconds ago, yet 3h idle on the proxy's clock: today it was stopped, exit 0."""
    serve_dated(
        emulated_hub,
        [user_json("ann", servers=[server_json(idle=5)])],
        datetime.now(timezone.utc) + timedelta(hours=3),
    )
    result = run("--timeout=1h", "--report=json")
    assert result.exit_code == 6, result.stderr
    assert emulated_hub.deleted_urls() == []
    (line,) = [line for line in result.stderr.splitlines() if "differ by" in line]
    assert re.search(
        r"the hub's clock \(its Date header: \S+Z\) and this machine's \(\S+Z\) differ by (3h|2h59m)",
        line,
    )
    assert "more than the 5m tolerated" in line
    report = json.loads(result.stdout)
    assert report["exit_status"] == 6
    assert report["exit_status_name"] == "clocks_disagree"
    assert "--clock=local (this machine's) or --allow-clock-skew (the hub's)" in report["error"]


def test_allow_clock_skew_obeys_the_hubs_clock_despite_the_skew(emulated_hub: EmulatedHub) -> None:
    serve_dated(
        emulated_hub,
        [user_json("ann", servers=[server_json(idle=5)])],
        datetime.now(timezone.utc) + timedelta(hours=3),
    )
    result = run("--timeout=1h", "--allow-clock-skew")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == [
        f"{URL}/users/ann/server"
    ]  # the operator chose the hub's clock
    assert re.search(r"this machine's clock is (3h|2h59m\S*) behind the hub's", result.stderr)


def test_a_small_skew_is_tolerated(emulated_hub: EmulatedHub) -> None:
    serve_dated(
        emulated_hub,
        [user_json("ann", servers=[server_json(idle=5)])],
        datetime.now(timezone.utc) + timedelta(minutes=2),
    )
    result = run("--timeout=1h")
    assert result.exit_code == 0, result.stderr
    assert emulated_hub.deleted_urls() == []


# -- class 11: the token reaches no output; no credentials in --url ---------------------


def test_a_gateway_echoing_the_token_in_a_header_does_not_put_it_in_the_report(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    """The log filter masked it; the report's error field carried it to stdout and a file."""
    echoed = f"text/html; echo=token {FAKEHUB_TOKEN}"
    emulated_hub.replace(
        responses.GET, f"{URL}/", body="<html>login</html>", headers={"Content-Type": echoed}
    )
    report_file = tmp_path / "report.json"
    result = run(
        "--report=json", f"--report-file={report_file}"
    )  # run() asserts no token in the output
    assert result.exit_code == 3, result.stderr
    error = json.loads(result.stdout)["error"]
    assert "is not JSON (text/html; echo=token ***)" in error
    assert FAKEHUB_TOKEN not in report_file.read_text()


@pytest.mark.parametrize(
    "url", ["http://ann:s3cret-pw@hub.test:8081/hub/api", "http://ann@hub.test:8081/hub/api"]
)
def test_credentials_in_the_url_are_refused_before_anything_is_sent(
    emulated_hub: EmulatedHub, url: str
) -> None:
    result = run(env={"JUPYTERHUB_API_URL": url})
    assert result.exit_code == 2, result.stderr
    assert "--url must not contain a user or password" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert len(emulated_hub.calls) == 0


# -- class 10: hostile or broken data ends cleanly; bad configuration is exit 2 ---------

CONFIG_ERRORS = [
    # (id, arguments, environment, message)
    ("url-port-not-a-number", ["--url=http://hub.test:80x/hub/api"], {}, "has an invalid port"),
    ("url-port-out-of-range", ["--url=http://hub.test:99999/hub/api"], {}, "has an invalid port"),
    (
        "url-query-string",
        ["--url=http://hub.test:8081/hub/api?next=1"],
        {},
        "has a query string or fragment",
    ),
    (
        "url-fragment",
        ["--url=http://hub.test:8081/hub/api#top"],
        {},
        "has a query string or fragment",
    ),
    ("url-trailing-newline", [], {"JUPYTERHUB_API_URL": f"{URL}\n"}, "a line break"),
    (
        "malformed-http-proxy",
        [],
        {"HTTP_PROXY": "http://proxy.test:port"},
        "is not a valid proxy URL",
    ),
    (
        "missing-ca-bundle",
        ["--url=https://hub.test:8081/hub/api"],
        {"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"},
        "the CA bundle /nonexistent/ca.pem",
    ),
    (
        "unloadable-internal-key",
        [
            "--ssl-enabled",
            "--url=https://hub.test:8081/hub/api",
            "--internal-certs-location=@certs",
        ],
        {},
        "cannot load",
    ),
]


@pytest.mark.parametrize(
    ("args", "env", "message"), [c[1:] for c in CONFIG_ERRORS], ids=[c[0] for c in CONFIG_ERRORS]
)
def test_configuration_errors_exit_2_in_one_line_before_anything_is_sent(
    emulated_hub: EmulatedHub, tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    write_internal_certs(tmp_path)
    (tmp_path / "hub-internal" / "hub-internal.key").write_text("not a key\n")
    result = run(*[a.replace("@certs", str(tmp_path)) for a in args], env=env)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert len(emulated_hub.calls) == 0
    errors = [
        line
        for line in result.stderr.splitlines()
        if " ERROR " in line or line.startswith("Error:")
    ]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr


def serve_raw_page(emulated_hub: EmulatedHub, body: str) -> None:
    emulated_hub.get(f"{URL}/users", body=body, content_type="application/json")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            '{"items": [], "_pagination": {"offset": 0, "limit": 50, "next": {"offset": Infinity}}}',
            "has no usable offset",
            id="next-offset-infinity",
        ),
        pytest.param(
            '{"items": [], "_pagination": {"offset": 0, "limit": 50, "total": 1e400, "next": {"offset": NaN}}}',
            "has no usable offset",
            id="next-offset-nan",
        ),
        pytest.param("[" * 100_000 + "]" * 100_000, "is not JSON", id="nested-too-deep"),
    ],
)
def test_a_hostile_listing_is_exit_3_in_one_line(
    emulated_hub: EmulatedHub, body: str, message: str
) -> None:
    serve_raw_page(emulated_hub, body)
    result = run("--timeout=1h", "--report=json")
    assert result.exit_code == 3, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert message in json.loads(result.stdout)["error"]


def test_a_deeply_nested_error_body_fails_one_action_only(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [idle("ann"), idle("bob")])
    emulated_hub.delete(f"{URL}/users/ann/server", status=500, body='{"message": ' + "[" * 100_000)
    emulated_hub.delete(f"{URL}/users/bob/server", status=204)
    result = run("--timeout=1h", "--report=json")
    assert result.exit_code == 1, result.stderr
    outcomes = {e["user"]: e["outcome"] for e in json.loads(result.stdout)["entries"]}
    assert outcomes == {"ann": "failed", "bob": "stopped"}
    assert "Traceback" not in result.stderr


def test_a_lone_surrogate_in_a_name_does_not_abort_the_other_actions(
    emulated_hub: EmulatedHub,
) -> None:
    bad = json.dumps(idle("XX")).replace('"XX"', '"\\ud800x"')
    page = (
        '{"items": ['
        + bad
        + ", "
        + json.dumps(idle("bob"))
        + '], "_pagination": {"offset": 0, "limit": 50, "total": 2, "next": null}}'
    )
    serve_raw_page(emulated_hub, page)
    emulated_hub.get(f"{URL}/users/bob", json=idle("bob"))
    emulated_hub.delete(f"{URL}/users/bob/server", status=204)
    result = run("--timeout=1h", "--report=json")
    assert result.exit_code == 1, result.stderr
    entries = json.loads(result.stdout)["entries"]
    outcomes = {e["user"]: e["outcome"] for e in entries}
    assert outcomes == {"\ud800x": "failed", "bob": "stopped"}
    assert "not valid Unicode" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_json_log_line_with_a_lone_surrogate_can_be_written() -> None:
    record = logging.LogRecord(
        "idle_cull", logging.INFO, __file__, 1, "stop server %s", ("\ud800x",), None
    )
    line = JsonFormatter().format(record)
    line.encode("utf-8")  # a strict stderr would fail here
    assert json.loads(line)["message"] == "stop server \ud800x"  # JSON escapes it, and round-trips


def test_a_five_thousand_digit_version_is_exit_3_in_one_line(emulated_hub: EmulatedHub) -> None:
    emulated_hub.replace(responses.GET, f"{URL}/", json={"version": "9" * 5000})
    result = run("--timeout=1h")
    assert result.exit_code == 3, result.stderr
    assert "answered a 'version' of 5,000 characters" in result.stderr
    assert "Traceback" not in result.stderr
    assert parse_version("9" * 5000 + ".1") == ()


# -- classes 6, 7, 8: files that are not what they seem ---------------------------------


def in_thread(call: Any, seconds: float = 5.0) -> Any:
    """``call()``'s result, failing the test (not hanging it) if it blocks."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"{call} blocked for {seconds}s"
    return outcome[0]


@pytest.mark.parametrize("option", ["--report-file", "--metrics-file"])
@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_an_output_target_that_is_not_a_regular_file_is_refused_before_the_pass(
    emulated_hub: EmulatedHub, tmp_path: Path, option: str, kind: str
) -> None:
    """As root, /dev/null was replaced by a regular file and /dev/stdout's link by one."""
    target = tmp_path / "target.prom"
    if kind == "symlink":
        (tmp_path / "elsewhere").write_text("keep me\n")
        target.symlink_to(tmp_path / "elsewhere")
    else:
        os.mkfifo(target)
    result = run("--timeout=1h", f"{option}={target}")
    assert result.exit_code == 2, result.stderr
    assert (
        f"{option} {target} is a {'symbolic link' if kind == 'symlink' else 'FIFO'}, not a regular file"
        in result.stderr
    )
    assert len(emulated_hub.calls) == 0
    assert target.is_symlink() if kind == "symlink" else stat.S_ISFIFO(os.lstat(target).st_mode)


def test_the_previous_metrics_file_is_not_read_through_a_link(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    private = tmp_path / "private"
    private.write_text("root:SECRET-HASH:19000:0:99999:7:::\n")
    planted = tmp_path / "idle_cull.prom"
    planted.symlink_to(private)
    assert read_last_success(planted) is None
    assert "SECRET-HASH" not in caplog.text
    assert "it is a symbolic link" in caplog.text


def test_a_previous_metrics_fifo_does_not_block_the_pass(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    planted = tmp_path / "idle_cull.prom"
    os.mkfifo(planted)
    try:
        assert in_thread(lambda: read_last_success(planted)) is None
    finally:
        with contextlib.suppress(OSError):  # unblock the reader if it did block
            os.close(os.open(planted, os.O_WRONLY | os.O_NONBLOCK))
    assert "is a FIFO, not a regular file" in caplog.text


def test_a_huge_previous_metrics_file_is_not_read_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    planted = tmp_path / "idle_cull.prom"
    with planted.open("wb") as file:
        file.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of zeros on no disk
    assert read_last_success(planted) is None
    assert "is larger than 1,048,576 bytes" in caplog.text


def test_a_dangling_lock_file_link_does_not_create_its_target(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    victim = tmp_path / "etc-something"
    lock = tmp_path / "idle-cull.lock"
    lock.symlink_to(victim)
    result = run("--timeout=1h", f"--lock-file={lock}")
    assert result.exit_code == 2, result.stderr
    assert "it is a symbolic link" in result.stderr
    assert not victim.exists()
    assert len(emulated_hub.calls) == 0


def test_a_fifo_lock_file_is_refused(emulated_hub: EmulatedHub, tmp_path: Path) -> None:
    lock = tmp_path / "idle-cull.lock"
    os.mkfifo(lock)
    result = run("--timeout=1h", f"--lock-file={lock}")
    assert result.exit_code == 2, result.stderr
    assert "is a FIFO, not a regular file" in result.stderr


def fifo_at(path: Path) -> Path:
    os.mkfifo(path)
    return path


def written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(fifo_at, "is a FIFO, not a regular file", id="fifo"),
        pytest.param(
            lambda p: Path("/dev/null"), "is a character device, not a regular file", id="device"
        ),
        pytest.param(lambda p: written(p, "t" * 100_000), "is larger than 16,384 bytes", id="huge"),
    ],
)
def test_a_token_file_must_be_a_regular_file_of_sane_size(
    tmp_path: Path, make: Any, message: str
) -> None:
    path = make(tmp_path / "token")
    try:
        result = in_thread(lambda: raise_or_return(read_token, path))
        assert isinstance(result, ConfigError), result
        assert message in str(result)
    finally:
        if path.is_fifo():
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def raise_or_return(call: Any, *args: Any) -> Any:
    """Run in a thread; hand an exception back so the test thread can raise it."""
    try:
        return call(*args)
    except Exception as error:
        return error


def test_a_token_file_readable_by_everyone_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    assert read_token(path) == TOKEN
    assert "readable by every user" not in caplog.text
    path.chmod(0o644)
    assert read_token(path) == TOKEN
    assert f"token file {path} is readable by every user (mode 644)" in caplog.text
    assert TOKEN not in caplog.text


# -- class 9: stdout that cannot be written does not skip the other deliveries ---------


def run_with_stdout(
    tmp_path: Path, hub_url: str, stdout: Any, **popen: Any
) -> subprocess.CompletedProcess[str]:
    report_file, metrics_file = tmp_path / "report.json", tmp_path / "idle_cull.prom"
    args = ["--report=text", f"--report-file={report_file}", f"--metrics-file={metrics_file}"]
    return subprocess.run(
        [sys.executable, "-m", "idle_cull", *args],
        env=clean_env(hub_url),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
        **popen,
    )


def assert_delivered_but_5(
    tmp_path: Path, done: subprocess.CompletedProcess[str], reason: str
) -> None:
    assert done.returncode == 5, done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert f"cannot write the report to stdout: {reason}" in errors[0]
    assert "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr
    assert (
        json.loads((tmp_path / "report.json").read_text())["exit_status"] == 0
    )  # the pass went well
    assert "idle_cull_last_run_exit_status 0.0" in (tmp_path / "idle_cull.prom").read_text()


def test_a_full_disk_on_stdout(tmp_path: Path) -> None:
    with EmptyHub() as hub, open("/dev/full", "w") as full:
        done = run_with_stdout(tmp_path, hub.api_url, full)
    assert_delivered_but_5(tmp_path, done, "No space left on device")


def test_a_closed_pipe_on_stdout(tmp_path: Path) -> None:
    """`idle-cull --report=text | head -0`: the reader is gone before the report."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        with EmptyHub() as hub:
            done = run_with_stdout(tmp_path, hub.api_url, write_end)
    finally:
        os.close(write_end)
    assert_delivered_but_5(tmp_path, done, "the reader closed the pipe")


def test_a_closed_fd_1(tmp_path: Path) -> None:
    """Without fd 1 the report was dropped silently, exit 0."""
    with EmptyHub() as hub:
        done = run_with_stdout(tmp_path, hub.api_url, None, preexec_fn=lambda: os.close(1))
    assert_delivered_but_5(tmp_path, done, "it is closed")


# -- class 12: the second signal kills the pass, as PID 1 too ---------------------------


def test_the_second_signal_exits_even_when_the_default_action_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As PID 1 the kernel ignores a signal left at its default action: ``os.kill`` to
    ourselves does nothing there, so ``die_of`` must exit by itself, with 128 + 15."""
    from idle_cull.command.boundary import die_of  # noqa: PLC0415

    sent: list[int] = []
    monkeypatch.setattr(os, "kill", lambda _pid, signum: sent.append(signum))  # PID 1: ignored
    monkeypatch.setattr(signal, "signal", lambda *_args: None)
    exits: list[int] = []
    die_of(signal.SIGTERM, exit_now=exits.append)
    assert sent == [signal.SIGTERM]
    assert exits == [143]


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="needs root and unshare for a PID namespace",
)
def test_as_pid_1_a_second_sigterm_kills_a_stuck_pass_at_once() -> None:
    with HostilePeer("trickle", interval=0.2) as peer:
        process = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-c", PID_1_PASS],
            env=clean_env(f"http://127.0.0.1:{peer.port}/hub/api"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            pid_1 = int(process.stdout.readline())  # type: ignore[union-attr]  # its PID outside
            time.sleep(1.0)  # stuck in the trickling probe
            os.kill(pid_1, signal.SIGTERM)
            time.sleep(0.5)
            started = time.monotonic()
            os.kill(pid_1, signal.SIGTERM)
            _, stderr = process.communicate(timeout=4)
        finally:
            process.kill()
            process.wait()
        elapsed = time.monotonic() - started
    assert "SIGTERM received again: stopping at once" in stderr, stderr
    assert elapsed < 2  # not the 5 s grace: at once
    assert process.returncode == 143, stderr


# Inside the new PID namespace: report our PID as seen from outside, then run a pass as PID 1.
PID_1_PASS = """
import os, sys
assert os.getpid() == 1, os.getpid()
outside = open("/proc/self/stat").read()  # /proc is the parent's: our outside PID is in it
print(outside.split()[0], flush=True)
from idle_cull.command.cli import main
sys.argv = ["idle-cull"]
main()
"""


def test_the_whole_answer_deadline_holds_through_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY is taken from the environment: the proxy's pool is bounded too."""
    with HostilePeer("trickle", interval=0.2) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "localhost")
        client = HubClient("http://hub.test:8081/hub/api", TOKEN, request_timeout=1.0, retry=ONCE)
        with pytest.raises(HubUnavailable, match=r"no whole answer within 1s"):
            client.hub_version()
        client.close()
        assert proxy.connections == 1


class FailingStream(io.StringIO):
    def __init__(self, error: OSError) -> None:
        super().__init__()
        self.error = error

    def flush(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        pytest.param(None, "it is closed", id="no-fd-1"),
        pytest.param(
            FailingStream(BrokenPipeError(errno.EPIPE, "Broken pipe")),
            "the reader closed the pipe",
            id="epipe",
        ),
        pytest.param(
            FailingStream(OSError(errno.ENOSPC, "No space left on device")),
            "No space left on device",
            id="enospc",
        ),
    ],
)
def test_write_stdout_turns_each_failure_into_an_output_error(
    monkeypatch: pytest.MonkeyPatch, stream: Any, message: str
) -> None:
    monkeypatch.setattr(sys, "stdout", stream)
    with pytest.raises(OutputError, match=f"cannot write the report to stdout: {message}"):
        write_stdout("report\n")


def test_after_a_broken_pipe_fd_1_is_pointed_at_dev_null(monkeypatch: pytest.MonkeyPatch) -> None:
    """So the interpreter's own flush at exit cannot fail a second time."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = open(write_end, "w")  # noqa: SIM115 - a real fd, as fd 1 would be
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        with pytest.raises(OutputError, match="the reader closed the pipe"):
            write_stdout("x" * 100_000)
        stream.write("more")
        stream.flush()  # goes to /dev/null now: no error
    finally:
        monkeypatch.undo()
        stream.close()
