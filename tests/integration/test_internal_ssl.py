"""idle-cull's ``--ssl-enabled`` against a real hub running JupyterHub's internal SSL.

With ``c.JupyterHub.internal_ssl = True`` the hub API is https, signed by the hub's own CA,
and it demands a client certificate. The flags must find both where JupyterHub writes them
(``<internal-certs-location>/hub-ca`` and ``/hub-internal``), so only a hub that generated
its own certificates proves the layout, not certificates made up by the test.

One internal-SSL hub serves the module (start-up generates five CAs: a few seconds); the
session's plain-http hub is not started for these tests.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.cli import IDLE, PAST_IDLE, cull, servers_of
from tests.support.realhub import LOG_FILE, HarnessError, RealHub


@pytest.fixture(scope="module")
def ssl_module_hub() -> Iterator[RealHub]:
    """One hub with internal SSL for this module; stopped (with its proxy) whatever happens."""
    try:
        real_hub = RealHub.start(internal_ssl=True)
    except HarnessError as exc:
        pytest.fail(f"cannot start a JupyterHub with internal SSL:\n{exc}", pytrace=False)
    try:
        yield real_hub
    finally:
        real_hub.stop()


@pytest.fixture
def ssl_hub(ssl_module_hub: RealHub) -> RealHub:
    """The module's internal-SSL hub, reset to empty so each test builds its own scene."""
    ssl_module_hub.reset()
    return ssl_module_hub


def hub_log_since(real_hub: RealHub, offset: int) -> str:
    with (real_hub.workdir / LOG_FILE).open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def error_lines(stderr: str) -> list[str]:
    """idle-cull's log lines at error level (the default text format tags them ``ERROR``)."""
    return [line for line in stderr.splitlines() if "ERROR" in line]


def test_the_hub_really_runs_internal_ssl(ssl_hub: RealHub) -> None:
    """Guards the other tests: they would prove nothing against a plain-http hub."""
    assert ssl_hub.api_url.startswith("https://127.0.0.1:")
    assert ssl_hub.internal_certs is not None
    for path in ssl_hub.tls_files:
        assert path.is_file(), path
    log = hub_log_since(ssl_hub, 0)
    assert "Hub API listening on https://127.0.0.1:" in log
    assert "Proxy API at https://" in log  # configurable-http-proxy's own start-up line
    # The hub's CA but no client certificate: the hub refuses, so the key pair matters too.
    ca, _cert, _key = ssl_hub.tls_files
    with requests.Session() as session:
        session.trust_env = False  # else $REQUESTS_CA_BUNDLE would replace verify
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(f"{ssl_hub.api_url}/", verify=str(ca), timeout=10)


def test_ssl_enabled_culls_idle_server_and_keeps_active_one(ssl_hub: RealHub) -> None:
    ssl_hub.create_users(["tls-idle", "tls-busy"])
    ssl_hub.start_server("tls-idle")
    ssl_hub.start_server("tls-busy")
    time.sleep(PAST_IDLE)
    ssl_hub.touch("tls-busy")
    log_start = (ssl_hub.workdir / LOG_FILE).stat().st_size
    result = cull(
        ssl_hub,
        f"--url={ssl_hub.api_url}",
        "--ssl-enabled",
        f"--internal-certs-location={ssl_hub.internal_certs}",
        f"--timeout={IDLE}",
    )
    assert result.returncode == 0, result.stderr
    assert servers_of(ssl_hub, "tls-idle") == set()
    assert servers_of(ssl_hub, "tls-busy") == {""}
    assert "stop server tls-idle: stopped" in result.stderr
    assert "server_stopped=1" in result.stderr
    assert "ssl=True" in result.stderr  # the start-of-pass settings line
    # The stop went through the hub's TLS API with the culler's own token.
    assert "DELETE /hub/api/users/tls-idle/server (idle-cull@127.0.0.1)" in hub_log_since(
        ssl_hub, log_start
    )


def test_https_url_without_ssl_enabled_exits_3_and_culls_nothing(ssl_hub: RealHub) -> None:
    ssl_hub.create_users(["tls-victim"])
    ssl_hub.start_server("tls-victim")
    time.sleep(PAST_IDLE)  # idle: only the failed handshake can save it
    result = cull(ssl_hub, f"--url={ssl_hub.api_url}", f"--timeout={IDLE}")
    assert result.returncode == 3, result.stderr
    errors = error_lines(result.stderr)
    tls_errors = [line for line in errors if "TLS" in line]
    assert len(tls_errors) == 1, result.stderr
    assert "TLS handshake with https://127.0.0.1:" in tls_errors[0]
    assert "check --ssl-enabled and --internal-certs-location" in tls_errors[0]
    assert "nothing was culled" in result.stderr
    assert "Traceback" not in result.stderr
    assert servers_of(ssl_hub, "tls-victim") == {""}


def test_missing_certificates_exit_2_naming_the_files(ssl_hub: RealHub, tmp_path: Path) -> None:
    """Half a certificate directory (the CA only) names exactly the files that are missing."""
    ssl_hub.create_users(["tls-kept"])
    ssl_hub.start_server("tls-kept")
    time.sleep(PAST_IDLE)
    ca, _cert, _key = ssl_hub.tls_files
    (tmp_path / "hub-ca").mkdir()
    shutil.copy(ca, tmp_path / "hub-ca" / "hub-ca.crt")
    result = cull(
        ssl_hub,
        f"--url={ssl_hub.api_url}",
        "--ssl-enabled",
        f"--internal-certs-location={tmp_path}",
        f"--timeout={IDLE}",
    )
    assert result.returncode == 2, result.stderr
    [error] = error_lines(result.stderr)
    assert str(tmp_path / "hub-internal" / "hub-internal.crt") in error
    assert str(tmp_path / "hub-internal" / "hub-internal.key") in error
    assert "hub-ca.crt" not in error  # present, so not reported
    assert "--internal-certs-location" in error
    assert servers_of(ssl_hub, "tls-kept") == {""}


def test_ssl_enabled_with_http_url_exits_2(ssl_hub: RealHub) -> None:
    ssl_hub.create_users(["tls-plain"])
    ssl_hub.start_server("tls-plain")
    time.sleep(PAST_IDLE)
    http_url = ssl_hub.api_url.replace("https://", "http://", 1)
    result = cull(
        ssl_hub,
        f"--url={http_url}",
        "--ssl-enabled",
        f"--internal-certs-location={ssl_hub.internal_certs}",
        f"--timeout={IDLE}",
    )
    assert result.returncode == 2, result.stderr
    assert "--ssl-enabled needs an https:// --url" in result.stderr
    assert servers_of(ssl_hub, "tls-plain") == {""}
