"""``HubClient`` against the answers older JupyterHub releases really give.

Each body below was recorded from the release named in the test (see
``tests/support/hub_releases.txt``); the real-hub matrix (``scripts/test-hub``) runs the same situations
end to end. Where releases differ, idle-cull must report what happened, not guess.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from idle_cull.errors import HubAuthError, HubUnavailable
from idle_cull.hub.client import HubClient
from idle_cull.hub.retry import RetryPolicy
from idle_cull.models import Outcome
from idle_cull.preflight import missing_scopes, needed_scopes
from idle_cull.rules.policy import CullLimits

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
# GET /user's scopes for a service whose role has list:users, read:users:activity,
# read:servers and delete:servers: the same on 2.3.1, 3.1.1, 4.1.6, 5.5.4 and 6.1.1
SERVERS_ONLY_SCOPES = [
    "delete:servers",
    "list:users",
    "read:servers",
    "read:users:activity",
    "read:users:name",
]
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


def test_unknown_token_on_an_old_hub_is_named_by_the_who_am_i_check(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    """Before 4.0 listing with an unknown token answers like a missing scope (SCOPE_403);
    preflight asks GET /user first, which every release refuses to an unknown token."""
    http_mock.get(f"{BASE}/user", status=403, json=WHOAMI_403)
    with pytest.raises(HubAuthError, match=r"^the hub does not accept the API token") as raised:
        client.token_owner()
    assert "lacks" not in str(raised.value)


def test_a_known_token_lacking_list_users_on_an_old_hub_names_the_scope(
    http_mock: responses.RequestsMock, client: HubClient
) -> None:
    http_mock.get(USERS, status=403, json=SCOPE_403)
    with pytest.raises(HubAuthError, match=r"the token lacks the scope 'list:users'"):
        client.user_page("ready", 0)


def test_the_scopes_every_release_reports_satisfy_the_documented_role() -> None:
    assert missing_scopes(needed_scopes(CullLimits()), SERVERS_ONLY_SCOPES) == []
    lacking = " ".join(
        missing_scopes(needed_scopes(CullLimits(cull_users=True)), SERVERS_ONLY_SCOPES)
    )
    assert "delete:users" in lacking


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
