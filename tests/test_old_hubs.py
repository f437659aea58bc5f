"""A pass against hubs older than the ones the real-hub tests run: the runner's branches
for JupyterHub before 1.3 (no ``state`` filter: one listing of everyone) and before 2.0
(no pagination, no scopes: a missing field is an older record shape, not a hidden one).

The emulated hub answers as those versions do (see ``tests/support/emulated_hub.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.emulated_hub import URL, EmulatedHub, server_json, user_json


@pytest.fixture(params=["1.2.2", "1.5.0", "6.1.1"])
def hub_of_any_age(request: pytest.FixtureRequest) -> Iterator[EmulatedHub]:
    hub = EmulatedHub(version=request.param)
    with hub:
        yield hub


def serve_everyone(hub: EmulatedHub, users: list[dict[str, Any]]) -> None:
    """List ``users`` as this hub would: by state from 1.3 on, all at once before."""
    if hub.older_than((1, 3)):
        hub.serve_users(None, users)
    else:
        hub.serve_users("ready", [u for u in users if u["servers"]])
        hub.serve_users("inactive", [u for u in users if not u["servers"]])


def test_every_hub_age_gets_the_same_culls(hub_of_any_age: EmulatedHub) -> None:
    hub = hub_of_any_age
    serve_everyone(
        hub,
        [
            user_json("idle", idle=7200, servers=[server_json(idle=7200)]),
            user_json("busy", servers=[server_json(idle=5)]),
            user_json("gone", idle=7200),
        ],
    )
    hub.answer_stop("idle")
    hub.answer_user_deletion("gone")
    result = run("--timeout=1h", "--cull-users")
    assert result.exit_code == 0, result.stderr
    assert hub.deleted_urls() == [f"{URL}/users/idle/server", f"{URL}/users/gone"]
    assert "users_listed=3" in result.stderr


@pytest.mark.parametrize(
    ("version", "queried_states"),
    [
        pytest.param("1.2.2", [None], id="before-1.3-one-listing-of-everyone"),
        pytest.param("1.5.0", ["ready"], id="from-1.3-by-state"),
    ],
)
def test_the_state_filter_is_asked_only_of_hubs_that_know_it(
    version: str, queried_states: list[str | None]
) -> None:
    hub = EmulatedHub(version=version)
    with hub:
        serve_everyone(hub, [user_json("idle", servers=[server_json(idle=7200)])])
        hub.answer_stop("idle")
        result = run("--timeout=1h")
        assert result.exit_code == 0, result.stderr
        assert [query.get("state") for query in hub.listing_queries()] == queried_states
        assert hub.deleted_urls() == [f"{URL}/users/idle/server"]


@pytest.mark.parametrize("version", ["1.2.2", "1.5.0", "6.1.1"])
def test_cull_users_lists_everyone_once_on_every_hub(version: str) -> None:
    """Ready users and users without a server come from one unfiltered listing."""
    hub = EmulatedHub(version=version)
    with hub:
        serve_everyone(hub, [user_json("gone", idle=7200)])
        hub.answer_user_deletion("gone")
        result = run("--timeout=1h", "--cull-users")
        assert result.exit_code == 0, result.stderr
        assert [query.get("state") for query in hub.listing_queries()] == [None]
        assert hub.deleted_urls() == [f"{URL}/users/gone"]


@pytest.mark.parametrize(
    ("version", "exit_code"),
    [
        pytest.param("1.5.0", 0, id="before-2.0-an-older-shape"),
        pytest.param("6.1.1", 3, id="from-2.0-hidden-by-scopes"),
    ],
)
def test_a_record_without_admin_and_created_is_hidden_only_on_hubs_with_scopes(
    version: str, exit_code: int
) -> None:
    record = user_json("old-shape", servers=[server_json(idle=5)])
    del record["admin"], record["created"]
    hub = EmulatedHub(version=version)
    with hub:
        hub.serve_users("ready", [record])
        hub.serve_users("inactive", [])
        result = run("--timeout=1h", "--cull-users")
        assert result.exit_code == exit_code, result.stderr
        assert ("the token cannot read admin, created of users" in result.stderr) == (
            exit_code == 3
        )
        assert hub.listing_queries() != []
        assert hub.deleted_urls() == []
