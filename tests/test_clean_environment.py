"""Every test starts from a clean environment, whatever the shell that runs pytest exports.

The first test runs the CLI tests in a pytest subprocess from a polluted shell: a token
file that does not exist, another hub URL, proxies that refuse connections, a CA bundle
and a ``~/.netrc`` with a password for the test hub. Without the autouse fixtures of
``tests/conftest.py`` most of those CLI tests fail. The subprocess also runs the other
tests of this module, which pass trivially in a clean shell but there check that the
planted variables reach neither a test, nor a session fixture (the real hub starts in
one), nor a subprocess (the integration tests run idle-cull as one).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.environment import is_shell_influence

REPO_ROOT = Path(__file__).resolve().parent.parent
THIS = Path(__file__).resolve().relative_to(REPO_ROOT)
PLANTED = {
    "JUPYTERHUB_API_TOKEN_FILE": "/nonexistent",
    "JUPYTERHUB_API_URL": "http://polluted.invalid:8081/hub/api",
    "JUPYTERHUB_API_TOKEN": "token-from-the-shell",
    "JUPYTERHUB_REQUEST_TIMEOUT": "0.001",
    "IDLE_CULL_TIMEOUT": "1",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "no_proxy": "",
    "REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem",
    "CURL_CA_BUNDLE": "/nonexistent/ca.pem",
}


def influences(environment: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in environment.items() if is_shell_influence(name)}


def netrc_of(environment: dict[str, str]) -> Path:
    return Path(environment.get("HOME", "/nonexistent")) / ".netrc"


def test_a_polluted_shell_fails_no_cli_test(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("machine hub.test login intruder password from-the-shell\n")
    environment = {**os.environ, **PLANTED, "HOME": str(home)}
    checks = [f"{THIS}::{name}" for name in CHECKED_IN_THE_POLLUTED_SHELL]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/command/test_cli.py",
            *checks,
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed is not None
    assert int(passed[1]) > len(checks)  # the CLI tests ran too


def test_no_shell_variable_reaches_a_test() -> None:
    assert influences(dict(os.environ)) == {}
    assert not netrc_of(dict(os.environ)).exists()


@pytest.fixture(scope="session")
def session_environment() -> dict[str, str]:
    """The environment a session fixture sees, as the real hub's launcher does."""
    return dict(os.environ)


def test_no_shell_variable_reaches_a_session_fixture(session_environment: dict[str, str]) -> None:
    assert influences(session_environment) == {}
    assert not netrc_of(session_environment).exists()


def test_no_shell_variable_reaches_a_subprocess() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    environment = json.loads(child.stdout)
    assert influences(environment) == {}
    assert not netrc_of(environment).exists()


CHECKED_IN_THE_POLLUTED_SHELL = [
    test_no_shell_variable_reaches_a_test.__name__,
    test_no_shell_variable_reaches_a_session_fixture.__name__,
    test_no_shell_variable_reaches_a_subprocess.__name__,
]
