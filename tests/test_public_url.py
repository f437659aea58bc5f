"""A password in --url never reaches any output: logs, reports, metrics, error messages.

Such a URL is refused before anything is sent (issue 13), by a message that does not
repeat it; ``safe_text.without_credentials`` is the one rule for showing URLs (its own
tests are in test_safe_text.py; the Pushgateway URL and any quoted URL go through it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import responses
from click.testing import CliRunner, Result

from idle_cull.command.cli import cli

SECRET = "s3cret-pass"
URL = f"http://svc:{SECRET}@hub.test:8081/hub/api"
TOKEN = "public-url-test-token-0123456789"
EMPTY_PAGE = {"items": [], "_pagination": {"offset": 0, "limit": 50, "total": 0, "next": None}}


@pytest.fixture(autouse=True)
def _no_hub_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN_FILE", "JUPYTERHUB_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


def run(tmp_path: Path, *args: str) -> tuple[Result, str]:
    """Run the command with every output it has; return the result and all files' text."""
    files = [tmp_path / "report.json", tmp_path / "metrics.prom"]
    result = CliRunner().invoke(
        cli,
        [
            f"--url={URL}",
            "--report=text",
            f"--report-file={files[0]}",
            f"--metrics-file={files[1]}",
            *args,
        ],
        env={"JUPYTERHUB_API_TOKEN": TOKEN},
        catch_exceptions=False,
    )
    written = "".join(path.read_text() for path in files if path.exists())
    return result, written


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_url_with_a_password_is_refused_without_showing_it(
    tmp_path: Path, log_format: str
) -> None:
    """Refused (issue 13): requests would send it as Basic auth instead of the token."""
    with responses.RequestsMock() as hub:  # nothing registered: any request would fail
        result, written = run(tmp_path, f"--log-format={log_format}")
        assert len(hub.calls) == 0
    assert result.exit_code == 2, result.stderr
    assert "--url must not contain a user or password" in result.stderr
    assert SECRET not in result.stdout + result.stderr + written


def test_a_bad_url_is_refused_without_showing_the_password(tmp_path: Path) -> None:
    result, written = run(tmp_path, f"--url=http://svc:{SECRET}@hub.test:8081/")
    assert result.exit_code == 2
    assert "--url must not contain a user or password" in result.stderr
    assert SECRET not in result.stdout + result.stderr + written
