"""``HubClient`` against the answers older JupyterHub releases really give.

Each body below was recorded from the release named in the test (see
``tests/support/hub_releases.txt``); the real-hub matrix (``scripts/test-hub``) runs the same situations
end to end. Where releases differ, idle-cull must report what happened, not guess.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import responses

from idle_cull.config import RetryPolicy
from idle_cull.errors import HubAuthError, HubUnavailable
from idle_cull.hub import HubClient
from idle_cull.models import Outcome

BASE = "http://hub.test:8081/hub/api"
USERS = f"{BASE}/users"
TOKEN = "compat-T0KEN-0123456789abcdef"
FAST = RetryPolicy(attempts=3, initial_wait=0, max_wait=0, max_retry_after=30)


def scope_403(scope: str) -> dict[str, object]:
    """JupyterHub 2.3.1 and 3.1.1 to a token they do not know (4.0 and later say "Missing or
    invalid credentials.") and to a known token lacking ``scope``: the same answer."""
    message = f"Action is not authorized with current scopes; requires any of [{scope}]"
    return {"status": 403, "message": message}


SCOPE_403 = scope_403("list:users")
# JupyterHub 2.3.1 to 4.1.6, GET /user with a token they do not know
WHOAMI_403 = {"status": 403, "message": "Forbidden"}
# JupyterHub 2.3.1 to 4.1.6, GET /user with a known service token (abridged)
WHOAMI_200 = {"kind": "service", "name": "idle-cull-noscope", "scopes": ["read:users:activity"]}
# JupyterHub 2.3.1 to 4.1.6, DELETE /users/{name}/server and /servers/{server} for a user
# they do not have (5.5.4 and 6.1.1: 404)
GONE_500 = {"status": 500, "message": "Internal Server Error"}
NOT_FOUND = {"status": 404, "message": "Not Found"}


@pytest.fixture
def http_mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[HubClient]:
    hub_client = HubClient(BASE, TOKEN, retry=FAST, sleep=lambda _: None)
    yield hub_client
    hub_client.close()


def test_unknown_token_on_a_3x_hub_is_not_called_a_missing_scope(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(USERS, status=403, json=SCOPE_403)
    http_mock.get(f"{BASE}/user", status=403, json=WHOAMI_403)
    with pytest.raises(HubAuthError) as raised:
        client.user_page("ready", 0)
    message = str(raised.value)
    assert message.startswith("could not read the user list: the hub does not accept the API token")
    assert "GET /hub/api/user refused the token too" in message
    assert "lacks the scope" not in message
    assert raised.value.status == 403
    assert TOKEN not in message


def test_known_token_without_the_scope_on_a_3x_hub_names_the_scope(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(USERS, status=403, json=SCOPE_403)
    http_mock.get(f"{BASE}/user", json=WHOAMI_200)
    with pytest.raises(HubAuthError, match=r"the token lacks the scope 'list:users'"):
        client.user_page("ready", 0)


def test_who_am_i_is_asked_once_per_client(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.delete(f"{USERS}/alice/server", status=403, json=scope_403("delete:servers"))
    http_mock.delete(f"{USERS}/bob/server", status=403, json=scope_403("delete:servers"))
    http_mock.get(f"{BASE}/user", json=WHOAMI_200)
    for name in ("alice", "bob"):
        with pytest.raises(HubAuthError, match=r"lacks the scope 'delete:servers'"):
            client.stop_server(name, "")
    assert [c.request.url for c in http_mock.calls].count(f"{BASE}/user") == 1


def test_who_am_i_that_cannot_be_asked_keeps_the_scope_message(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(USERS, status=403, json=SCOPE_403)
    http_mock.get(f"{BASE}/user", body=requests.ConnectionError("refused"))
    with pytest.raises(HubAuthError, match=r"lacks the scope 'list:users'"):
        client.user_page("ready", 0)


@pytest.mark.parametrize(
    ("server", "remove", "path"),
    [
        pytest.param("", False, "/server", id="default"),
        pytest.param("lab", False, "/servers/lab", id="named"),
        pytest.param("lab", True, "/servers/lab", id="named-remove"),
    ],
)
def test_stop_for_a_user_a_4x_hub_no_longer_has_is_gone(
    http_mock: responses.RequestsMock, client: HubClient, server: str, remove: bool, path: str
) -> None:
    http_mock.delete(f"{USERS}/bob{path}", status=500, json=GONE_500)
    http_mock.get(f"{USERS}/bob", status=404, json=NOT_FOUND)
    result = client.stop_server("bob", server, remove=remove)
    assert result.outcome is Outcome.GONE
    assert result.detail == "the hub no longer has the user"
    assert result.attempts == 1  # a 500 is not retried; the look-up is not an attempt


def test_500_on_stop_stays_a_failure_when_the_look_up_fails_too(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.delete(f"{USERS}/bob/server", status=500, json=GONE_500)
    http_mock.get(f"{USERS}/bob", status=500, json=GONE_500)
    with pytest.raises(HubUnavailable, match=r"stop server 'bob': the hub failed with HTTP 500"):
        client.stop_server("bob", "")
