"""``--probe-kernels`` end to end in-process: CliRunner, a `responses` hub and servers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.emulated_hub import ALL_SCOPES, URL, EmulatedHub, server_json, user_json

PROXY = "http://proxy.test"


def idle_user(name: str, **server: Any) -> dict[str, Any]:
    record = server_json(idle=7200, **server)
    record["url"] = f"/user/{name}/"
    return user_json(name, idle=7200, servers=[record])


def kernels_of(name: str) -> str:
    return f"{PROXY}/user/{name}/api/kernels"


def busy_kernel(hours_ago: float = 1) -> dict[str, Any]:
    """A busy kernel whose last message was that long ago (the CLI reads the real clock)."""
    last = datetime.now(timezone.utc) - timedelta(hours=hours_ago)
    stamp = last.isoformat().replace("+00:00", "Z")
    return {"id": "k", "name": "python3", "execution_state": "busy", "last_activity": stamp}


def proxy_calls(emulated_hub: EmulatedHub) -> list[str]:
    return [
        c.request.url or "" for c in emulated_hub.calls if (c.request.url or "").startswith(PROXY)
    ]


def probe_run(*args: str) -> Any:
    return run("--timeout=1h", "--probe-kernels", f"--proxy-url={PROXY}", *args)


@pytest.fixture
def scoped(emulated_hub: EmulatedHub) -> EmulatedHub:
    """The emulated hub; its token holds every scope, access:servers included."""
    assert "access:servers" in (emulated_hub.token_scopes or [])
    return emulated_hub


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--probe-kernels"], "--probe-kernels needs --proxy-url", id="no-proxy-url"),
        pytest.param(
            ["--probe-kernels", "--proxy-url=http://emulated_hub.test/jupyter/"],
            "must be the proxy's origin without a path",
            id="proxy-url-with-path",
        ),
        pytest.param(
            ["--probe-kernels", "--proxy-url=proxy-public"], "is not an http(s) URL", id="no-scheme"
        ),
        pytest.param(
            ["--probe-kernels", "--proxy-url=http://u:p@proxy"], "user name or password", id="creds"
        ),
        pytest.param(
            ["--probe-kernels", f"--proxy-url={PROXY}", "--probe-timeout=0"],
            "--probe-timeout must be a positive",
            id="zero-probe-timeout",
        ),
    ],
)
def test_bad_probe_options_are_usage_errors_before_anything_is_sent(
    emulated_hub: EmulatedHub, args: list[str], message: str
) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(emulated_hub.calls) == 0
    assert "Traceback" not in result.stderr


def test_a_busy_server_is_kept_and_an_idle_one_stopped(scoped: EmulatedHub) -> None:
    scoped.serve_users("ready", [idle_user("ann"), idle_user("bob")])
    scoped.get(kernels_of("ann"), json=[busy_kernel()])
    scoped.get(kernels_of("bob"), json=[{"id": "k", "name": "ir", "execution_state": "idle"}])
    scoped.answer_stop("bob")
    result = probe_run("--report=json")
    assert result.exit_code == 0, result.stderr
    assert scoped.deleted_urls() == [f"{URL}/users/bob/server"]
    assert "probe server ann in " in result.stderr
    assert "kernel python3 busy since " in result.stderr
    assert "; busy 2h < 1d (--busy-timeout)" in result.stderr
    assert all("no_track_activity=1" in url for url in proxy_calls(scoped))
    report = json.loads(result.stdout)
    ann = next(e for e in report["entries"] if e["user"] == "ann")
    # one request: the probe (no re-check GET: the listing is younger than --recheck-after)
    assert (ann["outcome"], ann["probe"]["found"], ann["attempts"]) == ("skipped", "busy", 1)
    assert report["counts"]["probes"]["kept_busy"] == 1
    assert "server_skipped=1" in result.stderr
    assert "probe_kept_busy=1 probe_failed=0" in result.stderr


def test_without_the_recheck_the_listed_url_is_probed(scoped: EmulatedHub) -> None:
    scoped.serve_users("ready", [idle_user("ann")])
    scoped.get(kernels_of("ann"), json=[busy_kernel()])
    result = probe_run("--no-recheck")
    assert result.exit_code == 0, result.stderr
    assert scoped.deleted_urls() == []
    assert [c.request.url for c in scoped.calls if "/users/ann" in (c.request.url or "")] == []


def test_a_token_without_access_servers_fails_before_listing(emulated_hub: EmulatedHub) -> None:
    emulated_hub.token_scopes = [s for s in ALL_SCOPES if s != "access:servers"]
    emulated_hub.serve_users("ready", [idle_user("ann")])
    result = probe_run()
    assert result.exit_code == 3
    assert "access:servers (to ask servers about their kernels (--probe-kernels))" in result.stderr
    assert emulated_hub.listing_queries() == []
    assert proxy_calls(emulated_hub) == []


def test_without_probing_access_servers_is_not_required(emulated_hub: EmulatedHub) -> None:
    emulated_hub.token_scopes = [s for s in ALL_SCOPES if s != "access:servers"]
    emulated_hub.serve_users("ready", [])
    assert run("--timeout=1h").exit_code == 0


def test_a_dry_run_probes_nothing(scoped: EmulatedHub) -> None:
    scoped.serve_users("ready", [idle_user("ann")])
    result = probe_run("--dry-run", "--report=json")
    assert result.exit_code == 0, result.stderr
    assert proxy_calls(scoped) == []
    (entry,) = json.loads(result.stdout)["entries"]
    assert entry["detail"] == "--dry-run; would probe its kernels first"
    assert entry["probe"]["found"] == "would_probe"


def test_max_age_stops_without_a_probe(scoped: EmulatedHub) -> None:
    scoped.serve_users("ready", [idle_user("ann", age=90000)])
    scoped.answer_stop("ann")
    result = run("--timeout=1d", "--max-age=1d", "--probe-kernels", f"--proxy-url={PROXY}")
    assert result.exit_code == 0, result.stderr
    assert scoped.deleted_urls() == [f"{URL}/users/ann/server"]
    assert proxy_calls(scoped) == []


@pytest.mark.parametrize(
    ("args", "stopped"),
    [
        pytest.param([], False, id="kept-by-default"),
        pytest.param(["--probe-failure=cull"], True, id="culled-when-asked"),
        pytest.param(["--busy-timeout=1h"], True, id="not-kept-past-the-busy-limit"),
    ],
)
def test_a_failed_probe(scoped: EmulatedHub, args: list[str], stopped: bool) -> None:
    scoped.serve_users("ready", [idle_user("ann")])
    scoped.get(kernels_of("ann"), status=404)
    scoped.answer_stop("ann")
    result = probe_run(*args)
    assert result.exit_code == 0, result.stderr
    assert scoped.deleted_urls() == ([f"{URL}/users/ann/server"] if stopped else [])
    assert "probe failed (HTTP 404: no /api/kernels (not a Jupyter server?))" in result.stderr


def test_metrics_count_probes(scoped: EmulatedHub, tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    scoped.serve_users("ready", [idle_user("ann"), idle_user("bob")])
    scoped.get(kernels_of("ann"), json=[busy_kernel()])
    scoped.get(kernels_of("bob"), status=500)
    metrics = tmp_path / "idle_cull.prom"
    result = probe_run(f"--metrics-file={metrics}")
    assert result.exit_code == 0, result.stderr
    text = metrics.read_text()
    assert 'idle_cull_last_run_probes{result="kept_busy"} 1.0' in text
    assert 'idle_cull_last_run_probes{result="failed"} 1.0' in text
    assert 'idle_cull_last_run_probes{result="kept_failed"} 1.0' in text


def test_without_probing_reports_and_metrics_are_unchanged(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    pytest.importorskip("prometheus_client")
    emulated_hub.serve_users("ready", [idle_user("ann")])
    emulated_hub.answer_stop("ann")
    metrics = tmp_path / "idle_cull.prom"
    result = run("--timeout=1h", "--report=json", f"--metrics-file={metrics}")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert "probes" not in report["counts"]
    assert "probe" not in report["entries"][0]
    assert "idle_cull_last_run_probes" not in metrics.read_text()
    assert "probe_kept_busy" not in result.stderr


def test_a_dry_run_does_not_count_a_max_age_stop_as_a_would_be_probe(scoped: EmulatedHub) -> None:
    scoped.serve_users("ready", [idle_user("ann", age=90000), idle_user("bob")])
    result = run(
        "--timeout=1h", "--max-age=1d", "--probe-kernels", f"--proxy-url={PROXY}", "--dry-run"
    )
    assert result.exit_code == 0, result.stderr
    assert "DRY RUN: 1 of them would be probed for busy kernels first" in result.stderr
    assert proxy_calls(scoped) == []


def test_warn_within_probes_nothing(scoped: EmulatedHub) -> None:
    soon = server_json(idle=3300)
    soon["url"] = "/user/erin/"
    scoped.serve_users("ready", [user_json("erin", idle=3300, servers=[soon])])
    result = probe_run("--warn-within=15m", "--report=json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["counts"]["upcoming"] == 1
    assert proxy_calls(scoped) == []


def test_a_hub_before_2_0_reports_no_scopes_and_is_probed() -> None:
    old_hub = EmulatedHub(version="1.5.0")
    with old_hub:
        old_hub.serve_users("ready", [idle_user("ann")])
        old_hub.get(kernels_of("ann"), json=[busy_kernel()])
        result = probe_run()
        assert result.exit_code == 0, result.stderr
        assert old_hub.deleted_urls() == []
        assert len(proxy_calls(old_hub)) == 1
