"""Fixtures for every test: a clean environment; the emulated hub for in-process tests.

tests/integration/conftest.py adds the real hub.

A developer's or an operator's shell must not change what a test sees: a
``JUPYTERHUB_API_TOKEN_FILE`` left exported used to fail 46 CLI tests, and a proxy
variable or a ``~/.netrc`` would reach the CLI subprocesses that the integration tests
run and the hub they start. So the variables below are removed, and ``HOME`` is an empty
directory, once for the session (before any session fixture starts a hub) and again for
every test (in case something set one without ``monkeypatch``). Subprocesses inherit the
cleaned ``os.environ``. ``tests/test_clean_environment.py`` checks it from a polluted shell.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.emulated_hub import EmulatedHub
from tests.support.environment import is_shell_influence
from tests.support.releases import UnknownRelease, find_release


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--hub-release``: which JupyterHub the real-hub tests start (scripts/test-hub)."""
    parser.addoption(
        "--hub-release",
        metavar="RELEASE",
        default=None,
        help="run the real-hub tests against this release of tests/support/hub_releases.txt "
        "(default: the newest)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """An unknown ``--hub-release`` is a usage error before anything starts."""
    try:
        find_release(config.getoption("--hub-release"))
    except UnknownRelease as exc:
        raise pytest.UsageError(str(exc)) from None


def clean_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Remove what the shell could influence; point ``HOME`` at ``home`` (no ~/.netrc)."""
    for name in [n for n in os.environ if is_shell_influence(n)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture(scope="session", autouse=True)
def clean_session_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The clean environment for session fixtures (the real hub); yields the empty HOME."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as monkeypatch:
        clean_environment(monkeypatch, home)
        yield home


@pytest.fixture(autouse=True)
def clean_test_environment(
    monkeypatch: pytest.MonkeyPatch, clean_session_environment: Path
) -> None:
    """The same for each test, undone after it by ``monkeypatch``."""
    clean_environment(monkeypatch, clean_session_environment)


@pytest.fixture
def emulated_hub() -> Iterator[EmulatedHub]:
    """A JupyterHub 6.1.1 on `responses`; tests say which users it lists."""
    hub = EmulatedHub()
    with hub:
        yield hub
