"""Fixtures for the in-process tests (tests/integration has its own, with a real hub)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from tests.support.emulated_hub import URL


@pytest.fixture
def hub() -> Iterator[responses.RequestsMock]:
    """A `responses` hub that answers the version probe; tests register the rest."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{URL}/", json={"version": "6.1.1"})
        yield mock
