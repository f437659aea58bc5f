"""Whole passes against hubs before 1.3 (no state filter) and before 2.0 (no pagination).

The hub is emulated with ``responses``: ``GET /`` answers the old version, ``GET /users``
answers a plain list (pagination came with 2.0) filtered by ``state`` only from 1.3 on,
and timestamps are naive UTC, as old hubs wrote them. Each test checks the requests the
pass made and what it decided.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from idle_cull.config import RetryPolicy, Settings
from idle_cull.errors import HubAuthError
from idle_cull.hub import HubClient, parse_version
from idle_cull.policy import CullLimits
from idle_cull.report import Report
from idle_cull.runner import run_pass
from tests.factories import NOW, server_json, user_json

URL = "http://old-hub.test:8081/hub/api"
TOKEN = "old-hub-token-0123456789abcdef"
HOUR = 3600.0


def naive(record: dict[str, Any]) -> dict[str, Any]:
    """The record as a hub before 2.0 wrote it: timestamps without a zone (UTC)."""

    def strip(value: Any) -> Any:
        if isinstance(value, str) and value.endswith("Z"):
            return value[:-1]
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        return value

    return {key: strip(value) for key, value in record.items()}


def old_records() -> dict[str, dict[str, Any]]:
    return {
        r["name"]: naive(r)
        for r in [
            user_json("idle", idle=3 * HOUR, servers=[server_json(idle=3 * HOUR)]),
            user_json("busy", idle=60, servers=[server_json(idle=60)]),
            user_json("gone", idle=5 * HOUR),  # no server at all
        ]
    }


Answer = tuple[int, dict[str, str], str]


class OldHub:
    """An old hub's users: ``GET /users`` is one plain list, filtered by ``state`` from
    1.3 on; a stop empties the user's ``servers``, which the re-check then reads."""

    def __init__(self, mock: responses.RequestsMock, version: str, *, without: str = "") -> None:
        self.version = parse_version(version)
        self.records = old_records()
        for record in self.records.values():
            record.pop(without, None)
        self.listings: list[dict[str, str]] = []
        mock.get(URL + "/", json={"version": version})
        mock.add_callback(responses.GET, URL + "/users", callback=self.list_users)
        for name in self.records:
            mock.add_callback(responses.GET, f"{URL}/users/{name}", callback=self.user(name))
        mock.add_callback(responses.DELETE, f"{URL}/users/idle/server", callback=self.stop)
        mock.delete(f"{URL}/users/idle", status=204)
        mock.delete(f"{URL}/users/gone", status=204)

    def list_users(self, request: requests.PreparedRequest) -> Answer:
        query = dict(parse_qsl(urlsplit(str(request.url)).query))
        self.listings.append(query)
        state = query.get("state") if self.version >= (1, 3) else None
        records = [
            r
            for r in self.records.values()
            if state is None or bool(r["servers"]) == (state == "ready")
        ]
        if self.version < (2, 0):
            return 200, {}, json.dumps(records)
        pagination = {"offset": 0, "limit": 50, "total": len(records), "next": None}
        return 200, {}, json.dumps({"items": records, "_pagination": pagination})

    def user(self, name: str) -> Callable[[requests.PreparedRequest], Answer]:
        return lambda _request: (200, {}, json.dumps(self.records[name]))

    def stop(self, _request: requests.PreparedRequest) -> Answer:
        self.records["idle"]["servers"] = {}
        return 204, {}, ""


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def cull(limits: CullLimits, *, page_size: int = 2) -> Report:
    settings = Settings(url=URL, token=TOKEN, limits=limits, clock="local", api_page_size=page_size)
    client = HubClient(URL, TOKEN, retry=RetryPolicy(attempts=1), sleep=lambda _: None)
    try:
        return run_pass(settings, client, clock=lambda: NOW)
    finally:
        client.close()


def acted(mock: responses.RequestsMock) -> list[str]:
    return [f"{c.request.method} {urlsplit(str(c.request.url)).path}" for c in mock.calls if c.request.method == "DELETE"]


def results(report: Report) -> dict[str, str]:
    return {f"{e.kind} {e.label}": e.result for e in report.entries}


def test_a_hub_before_1_3_is_listed_once_without_a_state_filter(mock: responses.RequestsMock) -> None:
    hub = OldHub(mock, "1.2.0")
    report = cull(CullLimits(timeout=HOUR))
    # one request, no state parameter, and no second page although the list is longer
    # than the page size: a plain list is the whole listing
    assert hub.listings == [{"offset": "0", "limit": "2"}]
    assert report.users_listed == 3
    assert acted(mock) == ["DELETE /hub/api/users/idle/server"]
    assert results(report) == {"server idle": "stopped"}
    assert report.counts()["server_kept"] == 1
    assert report.exit_status() == 0


def test_a_hub_before_1_3_culls_users_from_the_same_single_listing(mock: responses.RequestsMock) -> None:
    hub = OldHub(mock, "1.2.0")
    report = cull(CullLimits(timeout=HOUR, cull_users=True))
    assert hub.listings == [{"offset": "0", "limit": "2"}]  # not one listing per state
    assert report.users_listed == 3
    assert acted(mock)[0] == "DELETE /hub/api/users/idle/server"  # stops before deletions
    assert sorted(acted(mock)[1:]) == ["DELETE /hub/api/users/gone", "DELETE /hub/api/users/idle"]
    assert results(report) == {"server idle": "stopped", "user idle": "deleted", "user gone": "deleted"}


def test_a_1_x_hub_is_listed_per_state_in_plain_lists(mock: responses.RequestsMock) -> None:
    hub = OldHub(mock, "1.5.0")
    report = cull(CullLimits(timeout=HOUR, cull_users=True))
    assert hub.listings == [
        {"offset": "0", "limit": "2", "state": "ready"},
        {"offset": "0", "limit": "2", "state": "inactive"},
    ]
    assert report.users_listed == 3
    assert sorted(acted(mock)) == [
        "DELETE /hub/api/users/gone",
        "DELETE /hub/api/users/idle",
        "DELETE /hub/api/users/idle/server",
    ]
    assert acted(mock)[0] == "DELETE /hub/api/users/idle/server"  # stops before deletions
    assert results(report) == {"server idle": "stopped", "user idle": "deleted", "user gone": "deleted"}


@pytest.mark.parametrize("missing", ["admin", "created"])
def test_a_hub_before_2_0_has_no_scopes_so_absent_fields_do_not_fail_the_pass(
    mock: responses.RequestsMock, missing: str
) -> None:
    """Before 2.0 no scope hides a field; from 2.0 on an absent one fails the pass."""
    OldHub(mock, "1.5.0", without=missing)
    report = cull(CullLimits(timeout=HOUR, cull_users=True))
    assert report.users_listed == 3
    assert "DELETE /hub/api/users/idle/server" in acted(mock)


def test_the_same_listing_from_a_2_0_hub_fails_on_the_hidden_field(mock: responses.RequestsMock) -> None:
    OldHub(mock, "2.0.0", without="created")
    with pytest.raises(HubAuthError, match="cannot read created"):
        cull(CullLimits(timeout=HOUR, cull_users=True))
    assert acted(mock) == []
