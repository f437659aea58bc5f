"""``--state-dir`` end to end in-process: CliRunner, the emulated hub and ``responses`` servers.

Two passes share a directory: the second mints nothing; a kept token the server refuses
is replaced once; an unsafe directory is exit 2 before anything is sent, from every
source of the option; no kept secret reaches a log line or the report.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import Result

from idle_cull.evidence.token_state import current_uid, state_file_name
from tests.support.cli import run
from tests.support.emulated_hub import URL, EmulatedHub, server_json, user_json

PROXY = "http://proxy.test"
KERNELS = f"{PROXY}/user/ann/api/kernels"


def busy_ann(hub: EmulatedHub, refused: set[str]) -> None:
    """ann's idle server, whose kernel is busy: probed, then kept. Its server refuses the
    tokens in ``refused`` (the hub revoked them) as jupyterhub-singleuser does: 403."""
    record = server_json(idle=7200)
    record["url"] = "/user/ann/"
    hub.serve_users("ready", [user_json("ann", idle=7200, servers=[record])])
    stamp = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    kernels = [{"id": "k", "name": "python3", "execution_state": "busy", "last_activity": stamp}]

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        if request.headers["Authorization"].removeprefix("token ") in refused:
            return 403, {}, '{"message": "Forbidden"}'
        return 200, {"Content-Type": "application/json"}, json.dumps(kernels)

    hub.add_callback(responses.GET, KERNELS, callback=answer)


def probing(state: Path, *args: str) -> Result:
    return run(
        "--timeout=1h",
        "--probe-kernels",
        f"--proxy-url={PROXY}",
        f"--state-dir={state}",
        "--report=json",
        "--log-level=debug",
        *args,
    )


def kernel_requests(hub: EmulatedHub) -> list[str]:
    return [
        c.request.headers["Authorization"]
        for c in hub.calls
        if (c.request.url or "").startswith(KERNELS)
    ]


def no_secret_in(result: Result, hub: EmulatedHub) -> None:
    for secret in hub.minted:
        assert secret not in result.stdout + result.stderr


def test_a_second_pass_mints_nothing_and_probes_with_the_kept_token(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    busy_ann(emulated_hub, set())
    state = tmp_path / "state"
    first = probing(state)
    second = probing(state)
    assert (first.exit_code, second.exit_code) == (0, 0), second.stderr
    assert len(emulated_hub.mint_requests) == 1
    assert emulated_hub.mint_requests[0][1]["expires_in"] == 3600
    assert kernel_requests(emulated_hub) == [f"token {emulated_hub.minted[0]}"] * 2
    for result in (first, second):
        report = json.loads(result.stdout)
        ann = next(e for e in report["entries"] if e["user"] == "ann")
        assert ann["probe"]["found"] == "busy"
        no_secret_in(result, emulated_hub)
    assert [p.name for p in state.iterdir()] == [state_file_name(URL)]


def test_a_kept_token_the_server_refuses_is_replaced_once_and_the_probe_succeeds(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    refused: set[str] = set()
    busy_ann(emulated_hub, refused)
    state = tmp_path / "state"
    assert probing(state).exit_code == 0
    refused.add(emulated_hub.minted[0])  # the hub revoked it
    result = probing(state)
    assert result.exit_code == 0, result.stderr
    assert len(emulated_hub.minted) == 2
    kept, fresh = emulated_hub.minted
    assert kernel_requests(emulated_hub) == [f"token {kept}", f"token {kept}", f"token {fresh}"]
    ann = next(e for e in json.loads(result.stdout)["entries"] if e["user"] == "ann")
    assert ann["probe"]["found"] == "busy"
    assert "retrying once with a new one" in result.stderr
    no_secret_in(result, emulated_hub)
    assert probing(state).exit_code == 0  # the replacement was kept: no third mint
    assert len(emulated_hub.minted) == 2


def open_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "open"
    directory.mkdir()
    directory.chmod(0o770)
    return directory


@pytest.mark.parametrize("source", ["cli", "env", "toml"])
def test_an_unsafe_directory_is_exit_2_in_one_line_before_anything_is_sent(
    emulated_hub: EmulatedHub, tmp_path: Path, source: str
) -> None:
    directory = open_dir(tmp_path)
    args = ["--timeout=1h", "--probe-kernels", f"--proxy-url={PROXY}"]
    env: dict[str, str] = {}
    if source == "cli":
        args.append(f"--state-dir={directory}")
    elif source == "env":
        env["IDLE_CULL_STATE_DIR"] = str(directory)
    else:
        config = tmp_path / "idle-cull.toml"
        config.write_text(f'state-dir = "{directory}"\n')
        args.append(f"--config={config}")
    result = run(*args, env=env)
    assert result.exit_code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "--state-dir" in line]
    assert len(errors) == 1, result.stderr
    assert "chmod 700" in errors[0]
    assert "Traceback" not in result.stderr
    assert len(emulated_hub.calls) == 0


def test_a_directory_of_another_user_is_exit_2(
    emulated_hub: EmulatedHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("idle_cull.evidence.token_state.current_uid", lambda: current_uid() + 4242)
    result = run("--timeout=1h", f"--state-dir={tmp_path}")
    assert result.exit_code == 2
    assert "is owned by uid" in result.stderr
    assert not emulated_hub.mint_requests


def test_a_symbolic_link_in_place_of_the_state_file_is_exit_2(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir(0o700)
    state.chmod(0o700)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}")
    (state / state_file_name(URL)).symlink_to(elsewhere)
    result = run("--timeout=1h", f"--state-dir={state}")
    assert result.exit_code == 2
    (line,) = [line for line in result.stderr.splitlines() if "symbolic link" in line]
    assert "remove the link" in line
    assert len(emulated_hub.calls) == 0
    assert elsewhere.read_text() == "{}"


def test_a_symbolic_link_as_the_directory_is_exit_2(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    real = tmp_path / "real"
    real.mkdir(0o700)
    real.chmod(0o700)
    (tmp_path / "state").symlink_to(real)
    result = run("--timeout=1h", f"--state-dir={tmp_path / 'state'}")
    assert result.exit_code == 2
    assert "is a symbolic link; give the real directory's path" in result.stderr
    assert len(emulated_hub.calls) == 0
