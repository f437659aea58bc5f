"""``--state-dir`` against a real hub and a real jupyterhub-singleuser server (issue 24).

One user of the session's single-user hub (``singleuser_session``) whose server runs a
busy kernel, so every pass probes it and keeps it. Three whole passes of the command with
one state directory: the first mints the user's probe token, the second mints nothing
and its probe still succeeds, and after the token is revoked through the hub's API the
third mints once and its probe succeeds too.

The server is told to keep a token check for 1 s instead of jupyterhub-singleuser's
5 minutes (``HubOAuth.cache_max_age``), in this user's own config only: with the default,
a revoked token keeps working at a server that checked it in the last 5 minutes, and the
third pass would see no refusal at all. About 10 s with the hub already started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from idle_cull.evidence.probe_tokens import PROBE_TOKEN_NOTE
from tests.support.reports import validate
from tests.support.singleuser import SingleUserHub

pytestmark = pytest.mark.integration

USER = "keeper"
IDLE = 2  # --timeout: the server must be older than this to be probed


def cull(su: SingleUserHub, state: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """One probing pass about USER only, with the state directory; (process, report)."""
    hub = su.hub
    others = [u["name"] for u in hub.users() if u["name"] != USER]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_URL"] = hub.api_url
    env["JUPYTERHUB_API_TOKEN"] = hub.culler_token
    command = [
        sys.executable,
        "-m",
        "idle_cull",
        f"--timeout={IDLE}",
        "--activity-source=server",
        f"--proxy-url={su.public_url}",
        f"--state-dir={state}",
        "--report=json",
        "--report-kept",
        *(f"--exclude-user={other}" for other in others),
    ]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    report: dict[str, Any] = json.loads(result.stdout) if result.stdout.strip() else {}
    if report:
        validate(report)
    return result, report


def probe_tokens(su: SingleUserHub) -> dict[str, dict[str, Any]]:
    """USER's probe tokens as the hub lists them, by id."""
    body = su.hub.api(
        "GET", f"/users/{USER}/tokens", token=su.hub.culler_token, expect=(200,)
    ).json()
    return {t["id"]: t for t in body["api_tokens"] if t.get("note") == PROBE_TOKEN_NOTE}


def activity_of(report: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(
        e["activity"] for e in report["entries"] if e["kind"] == "server" and e["user"] == USER
    )
    return found


@pytest.fixture
def keeper(singleuser_session: SingleUserHub) -> Any:
    """USER's server with a busy kernel, its token checks cached for 1 s; stopped after."""
    su = singleuser_session
    config_dir = su.hub.workdir / "home" / USER / ".jupyter"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"HubOAuth": {"cache_max_age": 1}})
    )
    su.fresh_user(USER)
    su.run_silently(USER, su.start_kernel(USER))
    yield su
    su.hub.stop_server(USER)


def test_kept_tokens_are_reused_and_a_revoked_one_is_replaced_once(
    keeper: SingleUserHub, tmp_path: Path
) -> None:
    su, state = keeper, tmp_path / "state"
    time.sleep(IDLE + 0.5)  # the server is old enough for its limit: every pass probes it
    before = set(probe_tokens(su))

    for number in (1, 2):
        result, report = cull(su, state)
        assert result.returncode == 0, result.stderr
        assert activity_of(report)["found"] == "protected_busy_kernel", (number, report)
    minted = {i: t for i, t in probe_tokens(su).items() if i not in before}
    assert len(minted) == 1, minted  # the second pass minted nothing
    ((token_id, revoked),) = minted.items()
    kept_secret = json.loads(next(state.iterdir()).read_text())["tokens"][USER]["token"]

    su.hub.api(
        "DELETE", f"/users/{USER}/tokens/{token_id}", token=su.hub.culler_token, expect=(204,)
    )
    time.sleep(1.5)  # past the server's 1 s cache of the token's check
    result, report = cull(su, state)
    assert result.returncode == 0, result.stderr
    assert activity_of(report)["found"] == "protected_busy_kernel", report
    # what jupyterhub-singleuser answers a token the hub no longer knows
    assert "HTTP 403 for a probe token kept from an earlier pass" in result.stderr
    replaced = [t for i, t in probe_tokens(su).items() if i not in before]
    assert len(replaced) == 1  # one mint: the revoked one is gone, its replacement listed
    assert replaced[0]["created"] != revoked["created"]  # sqlite may reuse the id
    stored = json.loads(next(state.iterdir()).read_text())["tokens"][USER]["token"]
    assert stored != kept_secret
    for secret in (stored, kept_secret):
        assert secret not in result.stdout + result.stderr
    assert su.server_model(USER) is not None
