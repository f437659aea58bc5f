"""Fixtures for the in-process tests (tests/integration has its own, with a real hub)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
import requests
import responses

from tests.fakehub import URL

# What GET /user answers for a token with every scope any configuration needs (expanded,
# as the hub reports them), and the admin:groups that lets group rules be checked.
TOKEN_OWNER = {
    "kind": "service",
    "name": "idle-cull",
    "scopes": [
        "list:users", "read:users", "read:users:name", "read:users:activity",
        "read:users:groups", "read:servers", "delete:servers", "delete:users",
        "read:groups", "read:groups:name",
    ],
}  # fmt: skip
MANAGED_SERVICE_VARIABLES = ("JUPYTERHUB_SERVICE_NAME", "JUPYTERHUB_CLIENT_ID")


@pytest.fixture
def missing_groups() -> set[str]:
    """Groups the `hub` fixture does not have (it has every other group a test names)."""
    return set()


@pytest.fixture
def hub(missing_groups: set[str]) -> Iterator[responses.RequestsMock]:
    """A `responses` hub that answers the version probe, the token's scopes and its
    groups; tests register the rest."""

    def group(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        name = unquote((request.path_url or "").rsplit("/", 1)[1])
        if name in missing_groups:
            return 404, {}, json.dumps({"status": 404, "message": f"No such group: {name}"})
        return 200, {}, json.dumps({"kind": "group", "name": name, "users": []})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{URL}/", json={"version": "6.1.1"})
        mock.get(f"{URL}/user", json=TOKEN_OWNER)
        mock.add_callback(responses.GET, re.compile(rf"{re.escape(URL)}/groups/[^/]+$"), callback=group)
        yield mock


@pytest.fixture(autouse=True)
def _no_idle_cull_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """IDLE_CULL_* in the developer's shell would set options in every CLI test, and a
    shell inside a hub-managed service would make every pass refuse to run."""
    for name in list(os.environ):
        if name.startswith("IDLE_CULL_") or name in MANAGED_SERVICE_VARIABLES:
            monkeypatch.delenv(name)
