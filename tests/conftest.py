"""Fixtures for the in-process tests (tests/integration has its own, with a real hub)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import responses

from tests.fakehub import URL

MANAGED_SERVICE_VARIABLES = ("JUPYTERHUB_SERVICE_NAME", "JUPYTERHUB_CLIENT_ID")


@pytest.fixture
def hub() -> Iterator[responses.RequestsMock]:
    """A `responses` hub that answers the version probe; tests register the rest."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{URL}/", json={"version": "6.1.1"})
        yield mock


@pytest.fixture(autouse=True)
def _no_idle_cull_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """IDLE_CULL_* in the developer's shell would set options in every CLI test, and a
    shell inside a hub-managed service would make every pass refuse to run."""
    for name in list(os.environ):
        if name.startswith("IDLE_CULL_") or name in MANAGED_SERVICE_VARIABLES:
            monkeypatch.delenv(name)
