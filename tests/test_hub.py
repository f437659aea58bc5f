"""``HubClient`` against a ``responses`` hub: requests sent, answers parsed, errors raised.

Retries never really sleep: the client gets a zero-wait ``RetryPolicy`` and a ``sleep``
that records the waits it was asked for.
"""

from __future__ import annotations

import itertools
import json
import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from functools import partial
from itertools import islice
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from idle_cull import __version__
from idle_cull.errors import HubAuthError, HubError, HubProtocolError, HubUnavailable
from idle_cull.hub.client import PAGINATION_MEDIA_TYPE, HubClient, parse_version
from idle_cull.hub.pages import follow_pages
from idle_cull.hub.retry import RetryPolicy
from idle_cull.models import ActionResult, Outcome
from tests.support.pagination import users_page

BASE = "http://hub.test:8081/hub/api"
USERS = f"{BASE}/users"
# The API URL the hub writes in next: another host, as a hub behind a proxy names.
INTERNAL = "http://internal-hub:8081/hub/api"
TOKEN = "s3cr3t-T0KEN-5a1b2c3d4e5f"
FAST = RetryPolicy(attempts=3, initial_wait=0, max_wait=0, max_retry_after=30)


@pytest.fixture
def http_mock() -> Iterator[responses.RequestsMock]:
    """A bare `responses` mock: each test registers exactly the answers it expects sent."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(waits: list[float]) -> Iterator[HubClient]:
    hub_client = HubClient(BASE, TOKEN, retry=FAST, sleep=waits.append)
    yield hub_client
    hub_client.close()


def query(call: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(call.request.url).query, keep_blank_values=True))


def path(call: Any) -> str:
    return str(urlsplit(call.request.url).path)


def error_body(status: int, message: str) -> dict[str, Any]:
    """The JSON body JupyterHub's ``write_error`` sends."""
    return {"status": status, "message": message}


def user(name: str) -> dict[str, Any]:
    return {"name": name, "last_activity": None, "servers": {}}


def listing(client: HubClient, state: str | None, page_size: int = 0) -> Iterator[list[Any]]:
    """The listing one page after the other: the first page, then each ``next`` followed."""
    fetch = partial(client.user_page, state)
    first = fetch(0, page_size)
    yield first.items
    yield from follow_pages(fetch, first)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# -- construction and headers -----------------------------------------------------------


def test_every_request_carries_token_and_user_agent(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(f"{BASE}/", json={"version": "5.2.1"})
    client.hub_version()
    headers = http_mock.calls[0].request.headers
    assert headers["Authorization"] == f"token {TOKEN}"
    assert headers["User-Agent"] == f"idle-cull/{__version__}"
    assert headers["Accept"] == "application/json"


def test_a_netrc_entry_for_the_hub_never_replaces_the_token(
    http_mock: responses.RequestsMock, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests would send ~/.netrc's login for the host instead of our Authorization."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine hub.test login someone password else\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    http_mock.get(f"{BASE}/", json={"version": "5.2.1"})
    with closing(HubClient(BASE, TOKEN, retry=FAST)) as hub_client:
        hub_client.hub_version()
    assert http_mock.calls[0].request.headers["Authorization"] == f"token {TOKEN}"


def test_proxy_and_ca_bundle_come_from_the_environment(
    http_mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/site/ca.pem")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    http_mock.get(f"{BASE}/", json={"version": "5.2.1"})
    with closing(HubClient(BASE, TOKEN, retry=FAST)) as hub_client:
        hub_client.hub_version()
    sent = http_mock.calls[0].request.__dict__["req_kwargs"]
    assert sent["proxies"]["http"] == "http://proxy.test:3128"
    assert sent["verify"] == "/etc/site/ca.pem"


def test_no_proxy_is_honoured(
    http_mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "hub.test")
    http_mock.get(f"{BASE}/", json={"version": "5.2.1"})
    with closing(HubClient(BASE, TOKEN, retry=FAST)) as hub_client:
        hub_client.hub_version()
    assert not http_mock.calls[0].request.__dict__["req_kwargs"]["proxies"]


def test_trailing_slash_of_the_url_is_ignored(http_mock: responses.RequestsMock) -> None:
    http_mock.get(USERS, json=[])
    client = HubClient(BASE + "/", TOKEN, retry=FAST)
    assert list(listing(client, None)) == [[]]
    client.close()
    assert http_mock.calls[0].request.url == f"{USERS}?offset=0"


@pytest.mark.parametrize(("timeout", "expected"), [(7.5, (7.5, 7.5)), (60.0, (10.0, 60.0))])
def test_request_timeout_is_passed_to_requests(
    http_mock: responses.RequestsMock, timeout: float, expected: tuple[float, float]
) -> None:
    """(connect, read): connecting and the TLS handshake get at most 10 s of it."""
    http_mock.get(f"{BASE}/", json={"version": "5.2.1"})
    client = HubClient(BASE, TOKEN, request_timeout=timeout, retry=FAST)
    client.hub_version()
    client.close()
    assert http_mock.calls[0].request.__dict__["req_kwargs"]["timeout"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("5.2.1", (5, 2, 1), id="release"),
        pytest.param("1.3", (1, 3), id="two-parts"),
        pytest.param("4.0.0b1", (4, 0, 0), id="beta"),
        pytest.param("5.0.0.dev0", (5, 0, 0), id="dev-fourth-part-ignored"),
        pytest.param("2.x.1", (2,), id="stops-at-non-number"),
        pytest.param("", (), id="empty"),
        pytest.param("unknown", (), id="no-number"),
    ],
)
def test_parse_version(text: str, expected: tuple[int, ...]) -> None:
    assert parse_version(text) == expected


# -- version probe ----------------------------------------------------------------------


def test_version_probe(http_mock: responses.RequestsMock, client: HubClient) -> None:
    http_mock.get(f"{BASE}/", json={"version": "5.2.1"})
    assert client.hub_version() == "5.2.1"
    assert len(http_mock.calls) == 1
    assert http_mock.calls[0].request.method == "GET"
    assert http_mock.calls[0].request.url == f"{BASE}/"


def test_version_probe_html_answer_points_at_the_api_url(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(
        f"{BASE}/",
        body="<!DOCTYPE html><html><body>JupyterHub login</body></html>",
        content_type="text/html; charset=UTF-8",
    )
    with pytest.raises(HubProtocolError) as raised:
        client.hub_version()
    message = str(raised.value)
    assert f"the version probe from {BASE}/ is not JSON" in message
    assert "text/html" in message
    assert "/hub/api" in message
    assert raised.value.status == 200
    assert len(http_mock.calls) == 1  # not retried


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty-object"),
        pytest.param({"version": 5}, id="number-version"),
        pytest.param({"version": None}, id="null-version"),
        pytest.param({"name": "not a hub"}, id="other-object"),
        pytest.param(["5.2.1"], id="list"),
    ],
)
def test_version_probe_json_without_version(
    http_mock: responses.RequestsMock, client: HubClient, body: object
) -> None:
    http_mock.get(f"{BASE}/", json=body)
    with pytest.raises(HubProtocolError, match="answered without a JupyterHub version") as raised:
        client.hub_version()
    assert f"{BASE}/ answered" in str(raised.value)
    assert "/hub/api" in str(raised.value)


def test_version_probe_not_found_is_a_hub_error(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(
        f"{BASE}/", status=404, body="<html>404: Not Found</html>", content_type="text/html"
    )
    with pytest.raises(HubProtocolError, match="answered 404: no JupyterHub API there") as raised:
        client.hub_version()
    assert raised.value.status == 404
    assert "base_url followed by /hub/api" in str(raised.value)
    assert len(http_mock.calls) == 1


# -- listing users ----------------------------------------------------------------------


def test_pages_are_followed_by_offset_against_our_own_url(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    names = ["a", "b", "c", "d", "e"]
    http_mock.get(USERS, json=users_page([user("a"), user("b")], 0, 2, INTERNAL, total=5))
    http_mock.get(USERS, json=users_page([user("c"), user("d")], 2, 2, INTERNAL, total=5))
    http_mock.get(USERS, json=users_page([user("e")], 4, 2, INTERNAL, total=5))

    pages = list(listing(client, "ready", page_size=2))

    assert [[u["name"] for u in p] for p in pages] == [["a", "b"], ["c", "d"], ["e"]]
    assert [u["name"] for p in pages for u in p] == names
    assert [query(c) for c in http_mock.calls] == [
        {"offset": "0", "limit": "2", "state": "ready"},
        {"offset": "2", "limit": "2", "state": "ready"},
        {"offset": "4", "limit": "2", "state": "ready"},
    ]
    for call in http_mock.calls:
        parts = urlsplit(call.request.url)
        assert (parts.scheme, parts.netloc, parts.path) == (
            "http",
            "hub.test:8081",
            "/hub/api/users",
        )
        assert call.request.method == "GET"
        assert call.request.headers["Accept"] == PAGINATION_MEDIA_TYPE
        assert call.request.headers["Accept"] == "application/jupyterhub-pagination+json"
        assert call.request.headers["Authorization"] == f"token {TOKEN}"


def test_no_limit_param_with_page_size_0_and_no_state_param_without_state(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(USERS, json=users_page([user("a")], 0, 50, INTERNAL, total=1))
    assert list(listing(client, None, page_size=0)) == [[user("a")]]
    assert query(http_mock.calls[0]) == {"offset": "0"}


@pytest.mark.parametrize("state", ["ready", "inactive", "active"])
def test_state_param_is_sent_on_every_page(
    http_mock: responses.RequestsMock, client: HubClient, state: str
) -> None:
    http_mock.get(USERS, json=users_page([user("a")], 0, 50, INTERNAL, total=51))
    http_mock.get(USERS, json=users_page([user("b")], 50, 50, INTERNAL, total=51))
    list(listing(client, state))
    assert [query(c) for c in http_mock.calls] == [
        {"offset": "0", "state": state},
        {"offset": "50", "limit": "50", "state": state},
    ]


def test_limit_reported_by_the_hub_is_used_for_the_next_page(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    # Asked for 500, the hub clamps to its api_page_max_limit (200) and says so in next.
    http_mock.get(USERS, json=users_page([user("a")], 0, 200, INTERNAL, total=201))
    http_mock.get(USERS, json=users_page([user("b")], 200, 200, INTERNAL, total=201))
    list(listing(client, "ready", page_size=500))
    assert [query(c) for c in http_mock.calls] == [
        {"offset": "0", "limit": "500", "state": "ready"},
        {"offset": "200", "limit": "200", "state": "ready"},
    ]


def test_short_and_empty_pages_with_next_are_followed_to_the_end(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    # state=ready is filtered after offset/limit: pages may be short or empty mid-list.
    http_mock.get(USERS, json=users_page([user("a")], 0, 3, INTERNAL, total=10))
    http_mock.get(USERS, json=users_page([], 3, 3, INTERNAL, total=10))
    http_mock.get(USERS, json=users_page([], 6, 3, INTERNAL, total=10))
    http_mock.get(USERS, json=users_page([user("z")], 9, 3, INTERNAL, total=10))
    pages = list(listing(client, "ready", page_size=3))
    assert pages == [[user("a")], [], [], [user("z")]]
    assert [query(c)["offset"] for c in http_mock.calls] == ["0", "3", "6", "9"]


def test_a_next_page_past_the_total_is_refused(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    # The hub only offers a next page while offset + limit < total; one past it loops.
    http_mock.get(USERS, json=users_page([user("a")], 0, 3, INTERNAL, total=3, next_offset=3))
    with pytest.raises(HubProtocolError, match="points past its own total"):
        list(itertools.islice(listing(client, "ready", page_size=3), 10))


def test_plain_list_from_an_old_hub_is_yielded_once(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    everyone = [user("a"), user("b"), user("c")]
    http_mock.get(USERS, json=everyone)
    assert list(listing(client, None, page_size=2)) == [everyone]
    assert len(http_mock.calls) == 1


@pytest.mark.parametrize(
    ("next_offset", "current"),
    [
        pytest.param(0, "0", id="same-offset"),
        pytest.param(-5, "0", id="backwards"),
    ],
)
def test_pagination_that_does_not_advance_is_refused(
    http_mock: responses.RequestsMock, client: HubClient, next_offset: int, current: str
) -> None:
    http_mock.get(
        USERS, json=users_page([user("a")], 0, 1, INTERNAL, total=5, next_offset=next_offset)
    )
    pages = listing(client, "ready", page_size=1)
    assert next(pages) == [user("a")]
    with pytest.raises(HubProtocolError, match="does not advance") as raised:
        next(pages)
    assert f"offset {current} -> {next_offset}" in str(raised.value)
    assert len(http_mock.calls) == 1


def test_pagination_going_back_after_advancing_is_refused(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(USERS, json=users_page([user("a")], 0, 1, INTERNAL, total=5))
    http_mock.get(USERS, json=users_page([user("b")], 1, 1, INTERNAL, total=5, next_offset=1))
    with pytest.raises(HubProtocolError, match=r"offset 1 -> 1"):
        # islice: a regression must fail here, not loop until the suite's timeout
        list(islice(listing(client, "ready", page_size=1), 10))
    assert len(http_mock.calls) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"items": []}, "lacks 'items' or '_pagination'", id="no-pagination"),
        pytest.param({"_pagination": {}}, "lacks 'items' or '_pagination'", id="no-items"),
        pytest.param(
            {"items": {}, "_pagination": {}}, "lacks 'items' or '_pagination'", id="items-object"
        ),
        pytest.param(
            {"items": [], "_pagination": []}, "lacks 'items' or '_pagination'", id="pagination-list"
        ),
        pytest.param("users", "neither a list nor a page object", id="string"),
        pytest.param(42, "neither a list nor a page object", id="number"),
        pytest.param(None, "neither a list nor a page object", id="null"),
        pytest.param(
            {"items": [], "_pagination": {"next": [1]}},
            "'_pagination.next' is not an object",
            id="next-list",
        ),
        pytest.param(
            {"items": [], "_pagination": {"next": "?offset=5"}},
            "'_pagination.next' is not an object",
            id="next-string",
        ),
        pytest.param(
            {"items": [], "_pagination": {"next": {"limit": 5}}},
            "has no usable offset",
            id="next-without-offset",
        ),
        pytest.param(
            {"items": [], "_pagination": {"next": {"offset": "five"}}},
            "has no usable offset",
            id="next-offset-text",
        ),
        pytest.param(
            {"items": [], "_pagination": {"next": {"offset": None}}},
            "has no usable offset",
            id="next-offset-null",
        ),
        pytest.param(
            {"items": [], "_pagination": {"next": {"offset": 5, "limit": "many"}}},
            "has no usable offset",
            id="next-limit-text",
        ),
    ],
)
def test_malformed_pages_are_protocol_errors(
    http_mock: responses.RequestsMock, client: HubClient, body: object, message: str
) -> None:
    http_mock.get(USERS, body=json.dumps(body), content_type="application/json")
    with pytest.raises(HubProtocolError, match=message):
        list(listing(client, "ready"))
    assert len(http_mock.calls) == 1


def test_non_json_user_list_is_a_protocol_error(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(USERS, body="<html>proxy error page</html>", content_type="text/html")
    with pytest.raises(HubProtocolError, match=r"the user list from .* is not JSON") as raised:
        list(listing(client, "ready", page_size=5))
    # the query string is left out of the message
    assert f"from {USERS} is not JSON (text/html)" in str(raised.value)


def test_invalid_state_filter_400_is_a_hub_error(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(USERS, status=400, json=error_body(400, "Unrecognized state filter: 'bogus'"))
    with pytest.raises(HubError) as raised:
        list(listing(client, "bogus"))
    assert type(raised.value) is HubError
    assert str(raised.value) == (
        "could not read the user list: HTTP 400 (Unrecognized state filter: 'bogus')"
    )
    assert len(http_mock.calls) == 1


# -- retries ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_until_success(
    http_mock: responses.RequestsMock,
    client: HubClient,
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    http_mock.get(f"{BASE}/", status=status, body="Bad gateway")
    http_mock.get(f"{BASE}/", status=status, body="Bad gateway")
    http_mock.get(f"{BASE}/", json={"version": "5.2.1"})
    assert client.hub_version() == "5.2.1"
    assert len(http_mock.calls) == 3
    assert waits == [0.0, 0.0]
    assert warnings_of(caplog) == [
        f"probe the hub version: HTTP {status} (attempt 1 of 3), retrying in 0.0s",
        f"probe the hub version: HTTP {status} (attempt 2 of 3), retrying in 0.0s",
    ]


def test_retried_listing_keeps_the_same_offset(
    http_mock: responses.RequestsMock, client: HubClient, caplog: pytest.LogCaptureFixture
) -> None:
    http_mock.get(USERS, json=users_page([user("a")], 0, 1, INTERNAL, total=2))
    http_mock.get(USERS, status=503)
    http_mock.get(USERS, json=users_page([user("b")], 1, 1, INTERNAL, total=2))
    assert list(listing(client, "ready", page_size=1)) == [[user("a")], [user("b")]]
    assert [query(c)["offset"] for c in http_mock.calls] == ["0", "1", "1"]
    assert len(warnings_of(caplog)) == 1


def test_retry_after_seconds_is_honoured(
    http_mock: responses.RequestsMock,
    client: HubClient,
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    http_mock.get(
        USERS, status=429, headers={"Retry-After": "2"}, json=error_body(429, "slow down")
    )
    http_mock.get(USERS, json=[])
    list(listing(client, None))
    assert waits == [2.0]
    assert warnings_of(caplog) == ["list users: HTTP 429 (attempt 1 of 3), retrying in 2.0s"]


def test_retry_after_is_capped_by_max_retry_after(
    http_mock: responses.RequestsMock, client: HubClient, waits: list[float]
) -> None:
    http_mock.get(USERS, status=503, headers={"Retry-After": "3600"})
    http_mock.get(USERS, json=[])
    list(listing(client, None))
    assert waits == [30.0]


def test_retry_after_as_http_date_is_honoured(
    http_mock: responses.RequestsMock, client: HubClient, waits: list[float]
) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=20)
    http_mock.delete(
        f"{USERS}/alice/server",
        status=429,
        headers={"Retry-After": format_datetime(when, usegmt=True)},
    )
    http_mock.delete(f"{USERS}/alice/server", status=204)
    assert client.stop_server("alice", "") == ActionResult(Outcome.STOPPED, 2)
    assert len(waits) == 1
    assert 15 < waits[0] <= 20


def test_unparsable_retry_after_falls_back_to_backoff(
    http_mock: responses.RequestsMock, client: HubClient, waits: list[float]
) -> None:
    http_mock.get(USERS, status=429, headers={"Retry-After": "\u00b2"})
    http_mock.get(USERS, json=[])
    list(listing(client, None))
    assert waits == [0.0]  # FAST's backoff, not a crash on the odd header


def test_retries_exhausted_is_hub_unavailable_with_attempts(
    http_mock: responses.RequestsMock,
    client: HubClient,
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    http_mock.get(USERS, status=503, json=error_body(503, "Service Unavailable"))
    with pytest.raises(HubUnavailable) as raised:
        list(listing(client, "ready"))
    assert str(raised.value) == (
        "could not list users: the hub answered HTTP 503 3 times; is it overloaded or restarting?"
    )
    assert (raised.value.status, raised.value.attempts) == (503, 3)
    assert len(http_mock.calls) == 3
    assert len(waits) == 2
    assert len(warnings_of(caplog)) == 2  # one per retry, none for the final failure


def test_connection_error_is_retried_then_succeeds(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(f"{BASE}/", body=requests.ConnectionError("[Errno 111] Connection refused"))
    http_mock.get(f"{BASE}/", json={"version": "4.1.0"})
    assert client.hub_version() == "4.1.0"
    assert len(http_mock.calls) == 2


def test_connection_error_exhausted_is_hub_unavailable(
    http_mock: responses.RequestsMock, client: HubClient, caplog: pytest.LogCaptureFixture
) -> None:
    refused = requests.ConnectionError(
        "HTTPConnectionPool(host='hub.test', port=8081): Max retries exceeded with url: "
        "/hub/api/ (Caused by NewConnectionError('<urllib3.connection.HTTPConnection>: "
        "Failed to establish a new connection: [Errno 111] Connection refused'))"
    )
    http_mock.get(f"{BASE}/", body=refused)
    with pytest.raises(HubUnavailable) as raised:
        client.hub_version()
    assert str(raised.value) == (
        f"could not probe the hub version: cannot connect to {BASE} "
        "([Errno 111] Connection refused); check --url and that the hub is running"
    )
    assert raised.value.attempts == 3
    assert raised.value.status is None
    assert len(http_mock.calls) == 3
    assert warnings_of(caplog) == [
        "probe the hub version: connection failed (attempt 1 of 3), retrying in 0.0s",
        "probe the hub version: connection failed (attempt 2 of 3), retrying in 0.0s",
    ]


def test_connection_error_without_errno_names_the_error_type(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(f"{BASE}/", body=requests.ConnectionError("Connection aborted."))
    with pytest.raises(HubUnavailable, match=r"cannot connect to \S+ \(ConnectionError\)"):
        client.hub_version()


@pytest.mark.parametrize(
    "timeout",
    [
        pytest.param(requests.Timeout("timed out"), id="timeout"),
        pytest.param(requests.exceptions.ReadTimeout("read timed out"), id="read-timeout"),
        pytest.param(requests.exceptions.ConnectTimeout("connect timed out"), id="connect-timeout"),
    ],
)
def test_timeout_is_retried_then_hub_unavailable(
    http_mock: responses.RequestsMock,
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
    timeout: requests.Timeout,
) -> None:
    http_mock.delete(f"{USERS}/bob", body=timeout)
    client = HubClient(BASE, TOKEN, request_timeout=12, retry=FAST, sleep=waits.append)
    with pytest.raises(HubUnavailable) as raised:
        client.delete_user("bob")
    assert str(raised.value) == (
        "could not delete user 'bob': no whole answer within 12s, 3 times (JUPYTERHUB_REQUEST_TIMEOUT)"
    )
    assert raised.value.attempts == 3
    assert len(http_mock.calls) == 3
    assert len(waits) == 2
    assert warnings_of(caplog)[0] == (
        "delete user 'bob': timed out (attempt 1 of 3), retrying in 0.0s"
    )


def test_timeout_then_success(http_mock: responses.RequestsMock, client: HubClient) -> None:
    http_mock.delete(f"{USERS}/bob", body=requests.exceptions.ReadTimeout("read timed out"))
    http_mock.delete(f"{USERS}/bob", status=404, json=error_body(404, "Not Found"))
    # the first DELETE may have worked before the answer was lost: 404 on the retry is "gone"
    assert client.delete_user("bob") == ActionResult(Outcome.GONE, 2)


def test_tls_failure_is_not_retried(
    http_mock: responses.RequestsMock, client: HubClient, caplog: pytest.LogCaptureFixture
) -> None:
    http_mock.get(f"{BASE}/", body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(HubUnavailable) as raised:
        client.hub_version()
    assert str(raised.value) == (
        f"could not probe the hub version: TLS handshake with {BASE} failed; "
        "check --ssl-enabled and --internal-certs-location"
    )
    assert raised.value.attempts == 1
    assert len(http_mock.calls) == 1
    assert warnings_of(caplog) == []


def test_other_request_errors_are_protocol_errors_not_retried(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(f"{BASE}/", body=requests.exceptions.ContentDecodingError("bad gzip"))
    with pytest.raises(HubProtocolError) as raised:
        client.hub_version()
    assert str(raised.value) == "could not probe the hub version: ContentDecodingError"
    assert len(http_mock.calls) == 1


def test_an_answer_cut_off_mid_body_is_retried(
    http_mock: responses.RequestsMock, client: HubClient, waits: list[float]
) -> None:
    http_mock.get(
        f"{BASE}/", body=requests.exceptions.ChunkedEncodingError("IncompleteRead(10 bytes read)")
    )
    http_mock.get(f"{BASE}/", json={"version": "5.2.1"})
    assert client.hub_version() == "5.2.1"
    assert len(http_mock.calls) == 2
    assert len(waits) == 1


def test_an_answer_cut_off_every_time_says_so(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(
        f"{BASE}/", body=requests.exceptions.ChunkedEncodingError("IncompleteRead(10 bytes read)")
    )
    with pytest.raises(HubUnavailable) as raised:
        client.hub_version()
    assert str(raised.value).startswith(
        "could not probe the hub version: the connection was cut before the whole answer arrived, 3 times;"
    )
    assert raised.value.attempts == 3


def test_500_is_not_retried(
    http_mock: responses.RequestsMock,
    client: HubClient,
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    http_mock.get(
        USERS, status=500, json=error_body(500, "Internal Server Error: database is locked")
    )
    with pytest.raises(HubUnavailable) as raised:
        list(listing(client, "ready"))
    assert str(raised.value) == (
        "could not read the user list: the hub failed with HTTP 500 "
        "(Internal Server Error: database is locked)"
    )
    assert (raised.value.status, raised.value.attempts) == (500, 1)
    assert len(http_mock.calls) == 1
    assert waits == []
    assert warnings_of(caplog) == []


def test_500_on_stop_is_hub_unavailable(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.delete(f"{USERS}/alice/server", status=500, body="oops", content_type="text/plain")
    http_mock.get(f"{USERS}/alice", json={"name": "alice"})  # still there: the 500 is real
    with pytest.raises(HubUnavailable, match=r"stop server 'alice': the hub failed with HTTP 500"):
        client.stop_server("alice", "")
    assert len(http_mock.calls) == 2


class Endpoint(NamedTuple):
    """One client method, the request it sends, how errors name it and the scope it needs."""

    method: str
    url: str
    call: Callable[[HubClient], object]
    what: str
    scope: str


ENDPOINTS = [
    pytest.param(
        Endpoint(
            "GET",
            USERS,
            lambda c: list(listing(c, "ready")),
            "read the user list",
            "list:users",
        ),
        id="list",
    ),
    pytest.param(
        Endpoint(
            "DELETE",
            f"{USERS}/a/server",
            lambda c: c.stop_server("a", ""),
            "stop server 'a'",
            "delete:servers",
        ),
        id="stop-default",
    ),
    pytest.param(
        Endpoint(
            "DELETE",
            f"{USERS}/a/servers/gpu",
            lambda c: c.stop_server("a", "gpu", remove=True),
            "stop server 'a/gpu'",
            "delete:servers",
        ),
        id="stop-named",
    ),
    pytest.param(
        Endpoint(
            "DELETE",
            f"{USERS}/a",
            lambda c: c.delete_user("a"),
            "delete user 'a'",
            "admin:users",
        ),
        id="delete-user",
    ),
    pytest.param(
        Endpoint("GET", f"{USERS}/a", lambda c: c.get_user("a"), "read user 'a'", "read:users"),
        id="get-user",
    ),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_client_errors_are_never_retried(
    http_mock: responses.RequestsMock,
    client: HubClient,
    waits: list[float],
    endpoint: Endpoint,
    status: int,
) -> None:
    http_mock.add(endpoint.method, endpoint.url, status=status, json=error_body(status, "nope"))
    answer: object
    try:
        answer = endpoint.call(client)
    except HubError as error:
        answer = error
    if isinstance(answer, (HubError, ActionResult)):
        assert answer.attempts == 1
    else:  # get_user's 404 and the listing's nothing
        assert status == 404
    assert len(http_mock.calls) == 1
    assert waits == []


def test_attempts_spent_on_retries_are_reported_with_a_later_error(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(USERS, status=503)
    http_mock.get(USERS, status=403, json=error_body(403, "Forbidden"))
    with pytest.raises(HubAuthError) as raised:
        list(listing(client, "ready"))
    assert raised.value.attempts == 2


def test_sleep_defaults_to_real_sleep_for_zero_waits(http_mock: responses.RequestsMock) -> None:
    http_mock.get(f"{BASE}/", status=502)
    http_mock.get(f"{BASE}/", json={"version": "5.2.1"})
    client = HubClient(BASE, TOKEN, retry=FAST)  # no sleep injected: time.sleep(0.0)
    assert client.hub_version() == "5.2.1"


# -- auth -------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_401_names_the_token_settings(
    http_mock: responses.RequestsMock, client: HubClient, endpoint: Endpoint
) -> None:
    http_mock.add(endpoint.method, endpoint.url, status=401, json=error_body(401, "Unauthorized"))
    with pytest.raises(HubAuthError) as raised:
        endpoint.call(client)
    assert str(raised.value) == (
        f"could not {endpoint.what}: the hub rejected the API token (401); check "
        "JUPYTERHUB_API_TOKEN or --api-token-file"
    )
    assert (raised.value.status, raised.value.attempts) == (401, 1)
    assert len(http_mock.calls) == 1


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_403_names_the_missing_scope_and_the_hubs_message(
    http_mock: responses.RequestsMock, client: HubClient, endpoint: Endpoint
) -> None:
    scope = endpoint.scope
    hub_says = f"Action is not authorized with current scopes;\n requires any of [{scope}]"
    http_mock.add(endpoint.method, endpoint.url, status=403, json=error_body(403, hub_says))
    with pytest.raises(HubAuthError) as raised:
        endpoint.call(client)
    assert str(raised.value) == (
        f"could not {endpoint.what}: the token lacks the scope '{scope}' (403: Action is not "
        f"authorized with current scopes; requires any of [{scope}]); grant it in the "
        "culler's role (see README, 'Role and scopes')"
    )
    assert raised.value.status == 403
    assert len(http_mock.calls) == 1


def test_403_takes_the_scopes_the_hub_names(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    hub_says = (
        "Action is not authorized with current scopes; requires any of [admin:users, delete:users]"
    )
    http_mock.delete(f"{USERS}/alice", status=403, json=error_body(403, hub_says))
    with pytest.raises(HubAuthError, match=r"lacks the scope 'admin:users, delete:users'"):
        client.delete_user("alice")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_403_for_an_unknown_token_says_the_token_is_wrong(
    http_mock: responses.RequestsMock, client: HubClient, endpoint: Endpoint
) -> None:
    # JupyterHub answers 403 "Missing or invalid credentials." to a token it does not know.
    http_mock.add(
        endpoint.method,
        endpoint.url,
        status=403,
        json=error_body(403, "Missing or invalid credentials."),
    )
    with pytest.raises(HubAuthError) as raised:
        endpoint.call(client)
    assert "does not accept the API token" in str(raised.value)
    assert "JUPYTERHUB_API_TOKEN or --api-token-file" in str(raised.value)
    assert "lacks the scope" not in str(raised.value)


def test_403_without_json_body_uses_the_reason(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(USERS, status=403, body="<html>Forbidden</html>", content_type="text/html")
    with pytest.raises(HubAuthError, match=r"lacks the scope 'list:users' \(403: Forbidden\)"):
        list(listing(client, None))


# -- stopping servers -------------------------------------------------------------------


def test_stop_default_server(http_mock: responses.RequestsMock, client: HubClient) -> None:
    http_mock.delete(f"{USERS}/alice/server", status=204)
    assert client.stop_server("alice", "") == ActionResult(Outcome.STOPPED, 1)
    request = http_mock.calls[0].request
    assert request.method == "DELETE"
    assert request.url == f"{USERS}/alice/server"
    assert request.body is None
    assert request.headers["Authorization"] == f"token {TOKEN}"


def test_stop_named_server_without_remove_sends_no_body(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.delete(f"{USERS}/alice/servers/gpu", status=204)
    assert client.stop_server("alice", "gpu") == ActionResult(Outcome.STOPPED, 1)
    assert http_mock.calls[0].request.url == f"{USERS}/alice/servers/gpu"
    assert http_mock.calls[0].request.body is None


def test_stop_named_server_with_remove_sends_remove_true(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.delete(f"{USERS}/alice/servers/gpu", status=204)
    assert client.stop_server("alice", "gpu", remove=True) == ActionResult(Outcome.STOPPED, 1)
    request = http_mock.calls[0].request
    assert request.url == f"{USERS}/alice/servers/gpu"
    assert json.loads(request.body or "") == {"remove": True}
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        pytest.param("a/b", "a%2Fb", id="slash"),
        pytest.param("100%", "100%25", id="percent"),
        pytest.param("100%2F", "100%252F", id="percent-escape-lookalike"),
        pytest.param("what?", "what%3F", id="question-mark"),
        pytest.param("#tag", "%23tag", id="hash"),
        pytest.param("first last", "first%20last", id="space"),
        pytest.param("a+b", "a%2Bb", id="plus"),
        pytest.param("caf\u00e9", "caf%C3%A9", id="latin-1"),
        pytest.param("\u65e5\u672c", "%E6%97%A5%E6%9C%AC", id="cjk"),
        pytest.param("a;b=c", "a%3Bb%3Dc", id="semicolon-equals"),
        pytest.param("..a", "..a", id="dots-inside-a-name"),
        pytest.param("user@example.org", "user%40example.org", id="email"),
    ],
)
def test_names_are_quoted_as_one_path_segment(
    http_mock: responses.RequestsMock, client: HubClient, name: str, segment: str
) -> None:
    http_mock.delete(f"{USERS}/{segment}/server", status=204)
    http_mock.delete(f"{USERS}/{segment}/servers/{segment}", status=204)
    http_mock.delete(f"{USERS}/{segment}", status=204)
    http_mock.get(f"{USERS}/{segment}", json=user(name))

    client.stop_server(name, "")
    client.stop_server(name, name)
    client.delete_user(name)
    assert client.get_user(name) == user(name)

    assert [path(c) for c in http_mock.calls] == [
        f"/hub/api/users/{segment}/server",
        f"/hub/api/users/{segment}/servers/{segment}",
        f"/hub/api/users/{segment}",
        f"/hub/api/users/{segment}",
    ]
    assert all(urlsplit(c.request.url).query == "" for c in http_mock.calls)
    assert all(urlsplit(c.request.url).fragment == "" for c in http_mock.calls)


@pytest.mark.parametrize("name", [".", ".."])
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c, n: c.stop_server(n, ""), id="stop-default-of-user"),
        pytest.param(lambda c, n: c.stop_server("alice", n), id="stop-named-server"),
        pytest.param(lambda c, n: c.delete_user(n), id="delete-user"),
        pytest.param(lambda c, n: c.get_user(n), id="get-user"),
    ],
)
def test_dot_segments_are_refused_without_a_request(
    http_mock: responses.RequestsMock,
    client: HubClient,
    name: str,
    call: Callable[[HubClient, str], object],
) -> None:
    # requests would normalize /users/./server to /users/server (the user "server")
    # and /users/alice/servers/.. to /users/alice (the user itself).
    with pytest.raises(HubError, match="relative path segment") as raised:
        call(client, name)
    assert repr(name) in str(raised.value)
    assert len(http_mock.calls) == 0


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(204, None, ActionResult(Outcome.STOPPED, 1), id="204-stopped"),
        pytest.param(200, {"name": ""}, ActionResult(Outcome.STOPPED, 1), id="200-stopped"),
        pytest.param(
            202,
            None,
            ActionResult(Outcome.PENDING, 1, "the hub is still stopping it"),
            id="202-pending",
        ),
        pytest.param(
            404,
            error_body(404, "alice has no server named 'gpu'"),
            ActionResult(Outcome.GONE, 1),
            id="404-gone",
        ),
        pytest.param(
            400,
            error_body(400, "alice:gpu is pending stop, please wait"),
            ActionResult(Outcome.PENDING, 1, "alice:gpu is pending stop, please wait"),
            id="400-pending-stop",
        ),
        pytest.param(
            400,
            error_body(400, "alice:gpu is pending spawn, please wait"),
            ActionResult(Outcome.PENDING, 1, "alice:gpu is pending spawn, please wait"),
            id="400-pending-spawn-old-hub",
        ),
    ],
)
def test_stop_outcomes(
    http_mock: responses.RequestsMock,
    client: HubClient,
    status: int,
    body: object,
    expected: ActionResult,
) -> None:
    url = f"{USERS}/alice/servers/gpu"
    if body is None:
        http_mock.delete(url, status=status, body="", content_type="text/plain")
    else:
        http_mock.delete(url, status=status, json=body)
    assert client.stop_server("alice", "gpu") == expected
    assert len(http_mock.calls) == 1


@pytest.mark.parametrize(
    "message",
    [
        "Cannot stop a server while it is being renamed",
        "Named servers are not enabled.",
        "Cannot delete the default server",
    ],
)
def test_other_400_on_stop_is_a_hub_error(
    http_mock: responses.RequestsMock, client: HubClient, message: str
) -> None:
    http_mock.delete(f"{USERS}/alice/servers/gpu", status=400, json=error_body(400, message))
    with pytest.raises(HubError) as raised:
        client.stop_server("alice", "gpu")
    assert type(raised.value) is HubError
    assert str(raised.value) == f"could not stop server 'alice/gpu': HTTP 400 ({message})"
    assert (raised.value.status, raised.value.attempts) == (400, 1)


def test_transient_then_stopped_counts_attempts(
    http_mock: responses.RequestsMock, client: HubClient, caplog: pytest.LogCaptureFixture
) -> None:
    http_mock.delete(f"{USERS}/alice/server", status=502)
    http_mock.delete(f"{USERS}/alice/server", status=204)
    assert client.stop_server("alice", "") == ActionResult(Outcome.STOPPED, 2)
    assert warnings_of(caplog) == [
        "stop server 'alice': HTTP 502 (attempt 1 of 3), retrying in 0.0s"
    ]


def test_stop_retries_exhausted(http_mock: responses.RequestsMock, client: HubClient) -> None:
    http_mock.delete(f"{USERS}/alice/servers/gpu", status=504)
    with pytest.raises(HubUnavailable) as raised:
        client.stop_server("alice", "gpu", remove=True)
    assert str(raised.value).startswith(
        "could not stop server 'alice/gpu': the hub answered HTTP 504 3 times"
    )
    assert raised.value.attempts == 3
    # every attempt carried the body
    assert [json.loads(c.request.body or "") for c in http_mock.calls] == [{"remove": True}] * 3


# -- deleting users ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(204, None, ActionResult(Outcome.DELETED, 1), id="204-deleted"),
        pytest.param(200, None, ActionResult(Outcome.DELETED, 1), id="200-deleted"),
        pytest.param(
            202,
            None,
            ActionResult(Outcome.PENDING, 1, "the hub is still stopping it"),
            id="202-pending",
        ),
        pytest.param(404, error_body(404, "Not Found"), ActionResult(Outcome.GONE, 1), id="404"),
        pytest.param(
            400,
            error_body(400, "bob's server is in the process of stopping, please wait."),
            ActionResult(
                Outcome.PENDING, 1, "bob's server is in the process of stopping, please wait."
            ),
            id="400-stopping",
        ),
    ],
)
def test_delete_user_outcomes(
    http_mock: responses.RequestsMock,
    client: HubClient,
    status: int,
    body: object,
    expected: ActionResult,
) -> None:
    if body is None:
        http_mock.delete(f"{USERS}/bob", status=status, body="")
    else:
        http_mock.delete(f"{USERS}/bob", status=status, json=body)
    assert client.delete_user("bob") == expected
    request = http_mock.calls[0].request
    assert (request.method, request.url, request.body) == ("DELETE", f"{USERS}/bob", None)


def test_delete_user_stopping_with_a_long_name_is_pending(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    # The hub's message starts with the name; "stopping" must not be lost to shortening.
    name = "x" * 250
    message = f"{name}'s server is in the process of stopping, please wait."
    http_mock.delete(f"{USERS}/{name}", status=400, json=error_body(400, message))
    result = client.delete_user(name)
    assert (result.outcome, result.attempts) == (Outcome.PENDING, 1)
    assert result.detail == message[:200]


def test_delete_user_other_400_is_a_hub_error(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.delete(f"{USERS}/bob", status=400, json=error_body(400, "Cannot delete yourself!"))
    with pytest.raises(HubError) as raised:
        client.delete_user("bob")
    assert type(raised.value) is HubError
    assert str(raised.value) == "could not delete user 'bob': HTTP 400 (Cannot delete yourself!)"


# -- reading one user -------------------------------------------------------------------


def test_get_user(http_mock: responses.RequestsMock, client: HubClient) -> None:
    record = {"name": "alice", "admin": False, "servers": {"": {"ready": True}}}
    http_mock.get(f"{USERS}/alice", json=record)
    assert client.get_user("alice") == record
    request = http_mock.calls[0].request
    assert request.url == f"{USERS}/alice"
    assert request.headers["Accept"] == "application/json"


def test_get_user_gone_is_none(http_mock: responses.RequestsMock, client: HubClient) -> None:
    http_mock.get(f"{USERS}/alice", status=404, json=error_body(404, "Not Found"))
    assert client.get_user("alice") is None
    assert len(http_mock.calls) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param({"json": ["alice"]}, HubProtocolError, "is not a JSON object", id="list"),
        pytest.param(
            {"body": "<html/>", "content_type": "text/html"},
            HubProtocolError,
            "is not JSON",
            id="html",
        ),
        pytest.param(
            {"status": 500, "json": error_body(500, "boom")},
            HubUnavailable,
            r"HTTP 500 \(boom\)",
            id="500",
        ),
    ],
)
def test_get_user_bad_answers(
    http_mock: responses.RequestsMock,
    client: HubClient,
    kwargs: dict[str, Any],
    error: type[HubError],
    message: str,
) -> None:
    http_mock.get(f"{USERS}/alice", **kwargs)
    with pytest.raises(error, match=message):
        client.get_user("alice")


# -- the token stays secret -------------------------------------------------------------


def _leaky_connection_error() -> requests.ConnectionError:
    return requests.ConnectionError(
        f"proxy said: bad header Authorization: token {TOKEN} [Errno 104] Connection reset"
    )


def scenario(
    method: str, url: str, kwargs: dict[str, Any], call: Callable[[HubClient], object], label: str
) -> Any:
    """One error path: the request the hub answers, how, and the client call that meets it."""
    return pytest.param((method, url, kwargs, call), id=label)


SCENARIOS = [
    scenario("GET", f"{BASE}/", {"status": 401}, lambda c: c.hub_version(), label="probe-401"),
    scenario(
        "GET",
        f"{BASE}/",
        {"body": "<html/>", "content_type": "text/html"},
        lambda c: c.hub_version(),
        label="probe-html",
    ),
    scenario("GET", f"{BASE}/", {"json": {}}, lambda c: c.hub_version(), label="probe-no-version"),
    scenario(
        "GET",
        USERS,
        {"status": 403, "json": error_body(403, "missing scope")},
        lambda c: list(listing(c, "ready")),
        label="list-403",
    ),
    scenario(
        "GET",
        USERS,
        {"status": 503},
        lambda c: list(listing(c, "ready")),
        label="list-503",
    ),
    scenario(
        "GET",
        USERS,
        {"status": 500},
        lambda c: list(listing(c, "ready")),
        label="list-500",
    ),
    scenario(
        "GET",
        USERS,
        {"json": {"items": []}},
        lambda c: list(listing(c, "ready")),
        label="list-malformed",
    ),
    scenario(
        "GET",
        USERS,
        {"body": _leaky_connection_error()},
        lambda c: list(listing(c, "ready")),
        label="list-connection-error",
    ),
    scenario(
        "GET",
        USERS,
        {"body": requests.exceptions.ReadTimeout(f"token {TOKEN}")},
        lambda c: list(listing(c, "ready")),
        label="list-timeout",
    ),
    scenario(
        "GET",
        USERS,
        {"body": requests.exceptions.SSLError(f"token {TOKEN}")},
        lambda c: list(listing(c, "ready")),
        label="list-ssl",
    ),
    scenario(
        "GET",
        USERS,
        {"body": requests.exceptions.ContentDecodingError(f"token {TOKEN}")},
        lambda c: list(listing(c, "ready")),
        label="list-other-request-error",
    ),
    scenario(
        "DELETE",
        f"{USERS}/a/server",
        {"status": 400, "json": error_body(400, "renaming")},
        lambda c: c.stop_server("a", ""),
        label="stop-400",
    ),
    scenario(
        "DELETE",
        f"{USERS}/a/server",
        {"status": 429, "headers": {"Retry-After": "1"}},
        lambda c: c.stop_server("a", ""),
        label="stop-429",
    ),
    scenario(
        "DELETE",
        f"{USERS}/a",
        {"status": 401},
        lambda c: c.delete_user("a"),
        label="delete-401",
    ),
    scenario(
        "GET",
        f"{USERS}/a",
        {"status": 403},
        lambda c: c.get_user("a"),
        label="get-403",
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_token_never_in_logs_or_errors(
    http_mock: responses.RequestsMock,
    client: HubClient,
    caplog: pytest.LogCaptureFixture,
    scenario: tuple[str, str, dict[str, Any], Callable[[HubClient], object]],
) -> None:
    method, url, kwargs, call = scenario
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 and tenacity included
    http_mock.add(method, url, **kwargs)
    with pytest.raises(HubError) as raised:
        call(client)
    error = raised.value
    shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error.args)
    assert TOKEN not in shown
    assert error.__cause__ is None
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in (record.exc_text or "")
    assert TOKEN not in caplog.text


# -- the hub's clock --------------------------------------------------------------------


def test_hub_now_follows_the_date_header(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    assert client.hub_now() is None
    http_mock.get(
        f"{BASE}/", json={"version": "6.1.1"}, headers={"Date": "Tue, 01 Dec 2026 10:00:00 GMT"}
    )
    client.hub_version()
    now = client.hub_now()
    assert now is not None
    assert now.tzinfo is not None
    offset = (now - datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)).total_seconds()
    assert 0 <= offset < 5


def test_hub_now_ignores_a_garbage_date(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(f"{BASE}/", json={"version": "6.1.1"}, headers={"Date": "the day after tomorrow"})
    client.hub_version()
    assert client.hub_now() is None


@pytest.mark.parametrize("status", [400, 403, 500])
def test_an_error_body_quoting_the_token_is_masked(
    http_mock: responses.RequestsMock, client: HubClient, status: int
) -> None:
    quoted = f"invalid credentials 'token {TOKEN}'"
    http_mock.delete(f"{USERS}/alice/server", status=status, json=error_body(status, quoted))
    with pytest.raises(HubError) as raised:
        client.stop_server("alice", "")
    assert TOKEN not in str(raised.value)
    assert "invalid credentials 'token ***'" in str(raised.value)
