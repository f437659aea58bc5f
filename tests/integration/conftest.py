"""Fixtures for tests against a real JupyterHub (see ``tests/support/realhub.py``).

One hub per session (``shared_real_hub``) keeps the suite fast (start-up is seconds, a
reset milliseconds); the function-scoped ``real_hub`` resets it so every test starts from
an empty hub. (``emulated_hub``, in tests/conftest.py, is the in-process stand-in.)
A missing jupyterhub or configurable-http-proxy is a failure, not a skip: a CI run that
silently skipped the integration tests would look green while testing nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.realhub import HarnessError, RealHub
from tests.support.releases import HubRelease, find_release
from tests.support.singleuser import SingleUserHub
from tests.support.workloads import Workloads

INTEGRATION_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration (only those) with ``integration``."""
    for item in items:
        if INTEGRATION_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def hub_release(pytestconfig: pytest.Config) -> HubRelease:
    """The JupyterHub release of this run (``--hub-release``; default: the newest).

    Tests that start hubs of their own pass ``release=hub_release.name``.
    """
    return find_release(pytestconfig.getoption("--hub-release"))


@pytest.fixture(scope="session")
def shared_real_hub(hub_release: HubRelease) -> Iterator[RealHub]:
    """Start one real hub for the session; stop it (and its proxy) at the end, whatever happens."""
    hub = _start_or_fail(hub_release)
    try:
        yield hub
    finally:
        hub.stop()


def _start_or_fail(release: HubRelease) -> RealHub:
    """A missing jupyterhub or proxy fails every integration test with one clear message."""
    try:
        return RealHub.start(release=release.name)
    except HarnessError as exc:
        message = str(exc)
    pytest.fail(
        f"cannot start the real JupyterHub for integration tests:\n{message}", pytrace=False
    )


@pytest.fixture
def real_hub(shared_real_hub: RealHub) -> RealHub:
    """The session hub, reset to empty: no users, servers or groups; instant stops."""
    shared_real_hub.page_limit = RealHub.page_limit
    shared_real_hub.reset()
    return shared_real_hub


@pytest.fixture(scope="session")
def singleuser_session() -> Iterator[SingleUserHub]:
    """A second hub, spawning real jupyterhub-singleuser servers (``tests/support/singleuser.py``).

    Only the busy-kernel tests use it; a real server costs seconds to start, so tests share
    the servers they start and stop only what they cull.
    """
    try:
        hub = SingleUserHub.start()
    except HarnessError as exc:
        pytest.fail(f"cannot start the single-user hub:\n{exc}", pytrace=False)
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="session")
def workloads() -> Iterator[Workloads]:
    """A third hub, whose real single-user servers each run one kind of work (a tab left
    open, a busy kernel, a printing terminal, ...: ``tests/support/workloads.py``), for the
    server-activity tests (issue 24). About 20-30 s to set up; torn down at the end."""
    try:
        started = Workloads.start()
    except HarnessError as exc:
        pytest.fail(f"cannot start the workloads hub:\n{exc}", pytrace=False)
    try:
        yield started
    finally:
        started.stop()
