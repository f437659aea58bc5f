"""``--probe-kernels`` end to end in-process: CliRunner, a `responses` hub and servers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.cli import run
from tests.support.emulated_hub import (
    ALL_SCOPES,
    TOKEN,
    URL,
    EmulatedHub,
    server_json,
    user_json,
)

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


def proxy_requests(emulated_hub: EmulatedHub) -> list[Any]:
    return [c.request for c in emulated_hub.calls if (c.request.url or "").startswith(PROXY)]


def proxy_calls(emulated_hub: EmulatedHub) -> list[str]:
    return [
        c.request.url or "" for c in emulated_hub.calls if (c.request.url or "").startswith(PROXY)
    ]


def probe_run(*args: str) -> Any:
    return run("--timeout=1h", "--probe-kernels", f"--proxy-url={PROXY}", *args)


@pytest.fixture
def scoped(emulated_hub: EmulatedHub) -> EmulatedHub:
    """The emulated hub; its token holds every scope, tokens included."""
    assert "tokens" in (emulated_hub.token_scopes or [])
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
    rechecks = [c.request for c in scoped.calls if c.request.method == "GET"]
    assert [r.url for r in rechecks if "/users/ann" in (r.url or "")] == []


def test_a_token_without_the_tokens_scope_fails_before_listing(emulated_hub: EmulatedHub) -> None:
    emulated_hub.token_scopes = [s for s in ALL_SCOPES if s not in ("tokens", "read:tokens")]
    emulated_hub.serve_users("ready", [idle_user("ann")])
    result = probe_run()
    assert result.exit_code == 3
    assert (
        "tokens (to mint each user whose server is read a token for that server only"
        in result.stderr
    )
    assert emulated_hub.listing_queries() == []
    assert emulated_hub.mint_requests == []
    assert proxy_calls(emulated_hub) == []


def test_probing_does_not_need_access_servers(scoped: EmulatedHub) -> None:
    """The culler itself never talks to a server with its own token any more."""
    assert "access:servers" not in (scoped.token_scopes or [])
    scoped.serve_users("ready", [idle_user("ann")])
    scoped.get(kernels_of("ann"), json=[busy_kernel()])
    assert probe_run().exit_code == 0


def test_without_probing_the_tokens_scope_is_not_required(emulated_hub: EmulatedHub) -> None:
    emulated_hub.token_scopes = [s for s in ALL_SCOPES if s not in ("tokens", "read:tokens")]
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


@pytest.mark.parametrize("version", ["1.5.0", "2.3.1"])
def test_a_hub_before_3_0_refuses_probing_before_anything_is_acted_on(version: str) -> None:
    """Such a hub ignores the scopes asked for a new token (checked on 2.3.1): no token
    limited to one user's servers can be had, and ours is never sent to a server."""
    old_hub = EmulatedHub(version=version)
    with old_hub:
        old_hub.serve_users("ready", [idle_user("ann")])
        old_hub.answer_stop("ann")
        result = probe_run("--report=json")
        assert result.exit_code == 2, result.stderr
        assert f"--probe-kernels needs JupyterHub 3.0 or later, and this hub is {version}" in (
            result.stderr
        )
        assert "Traceback" not in result.stderr
        assert old_hub.listing_queries() == []
        assert old_hub.mint_requests == []
        assert old_hub.deleted_urls() == []
        assert proxy_calls(old_hub) == []
        assert json.loads(result.stdout)["error"].startswith("--probe-kernels needs")


# -- issue 21 item 1: a probe carries a token of the probed user, never the culler's ---------


def test_each_probe_sends_a_token_of_its_own_user_and_never_ours(scoped: EmulatedHub) -> None:
    scoped.serve_users("ready", [idle_user("ann"), idle_user("bob")])
    scoped.get(kernels_of("ann"), json=[busy_kernel()])
    scoped.get(kernels_of("bob"), json=[])
    scoped.answer_stop("bob")
    result = probe_run("--report=json")
    assert result.exit_code == 0, result.stderr
    sent = {
        urlsplit(r.url).path.split("/")[2]: r.headers["Authorization"]
        for r in proxy_requests(scoped)
    }
    minted = dict(zip([user for user, _ in scoped.mint_requests], scoped.minted, strict=True))
    assert sent == {"ann": f"token {minted['ann']}", "bob": f"token {minted['bob']}"}
    assert all(TOKEN not in value for value in sent.values())
    for user, body in scoped.mint_requests:
        assert body["scopes"] == [f"access:servers!server={user}/"]
        assert body["note"] == "idle-cull probe"
        assert isinstance(body["expires_in"], int)
        assert 60 <= body["expires_in"] <= 120  # the default --probe-timeout: 5 s x 2 attempts
    for secret in scoped.minted:  # neither logged nor reported
        assert secret not in result.stdout + result.stderr


def test_a_user_with_several_probed_servers_gets_one_token_for_them(scoped: EmulatedHub) -> None:
    default, named = server_json(idle=7200), server_json(idle=7200, name="gpu")
    default["url"], named["url"] = "/user/ann/", "/user/ann/gpu/"
    scoped.serve_users("ready", [user_json("ann", idle=7200, servers=[default, named])])
    scoped.get(kernels_of("ann"), json=[busy_kernel()])
    scoped.get(f"{PROXY}/user/ann/gpu/api/kernels", json=[busy_kernel()])
    result = probe_run("--concurrency=4")
    assert result.exit_code == 0, result.stderr
    assert [body["scopes"] for _, body in scoped.mint_requests] == [["access:servers!user=ann"]]
    assert {r.headers["Authorization"] for r in proxy_requests(scoped)} == {
        f"token {scoped.minted[0]}"
    }


def test_a_refused_mint_fails_only_that_servers_probe(scoped: EmulatedHub) -> None:
    message = "Service ann not found or no permissions to generate tokens"
    scoped.mint_refusals["ann"] = (403, {"status": 403, "message": message})
    scoped.serve_users("ready", [idle_user("ann"), idle_user("bob")])
    scoped.get(kernels_of("bob"), json=[])
    scoped.answer_stop("bob")
    result = probe_run("--report=json")
    assert result.exit_code == 0, result.stderr
    assert scoped.deleted_urls() == [f"{URL}/users/bob/server"]
    assert proxy_calls(scoped) == [f"{kernels_of('bob')}?no_track_activity=1"]
    ann = next(e for e in json.loads(result.stdout)["entries"] if e["user"] == "ann")
    assert ann["outcome"] == "skipped"
    assert ann["probe"]["failure"].startswith("no probe token: could not mint a probe token")
    assert "lacks the scope 'tokens'" in ann["probe"]["failure"]


# -- issue 21 item 2: evidence about one server can fail only that server's decision -------


@pytest.mark.parametrize(
    ("policy", "ann_stopped"),
    [pytest.param("keep", False, id="keep"), pytest.param("cull", True, id="cull")],
)
def test_a_deeply_nested_answer_fails_only_that_servers_probe(
    scoped: EmulatedHub, tmp_path: Path, policy: str, ann_stopped: bool
) -> None:
    """40 KB of ``[[[...`` raised RecursionError out of the pass: traceback, exit 1, no
    report, and the idle servers after that user were not stopped."""
    scoped.serve_users("ready", [idle_user("ann"), idle_user("bob")])
    scoped.get(kernels_of("ann"), body=b"[" * 40_000 + b"]" * 40_000)
    scoped.get(kernels_of("bob"), json=[])
    scoped.answer_stop("ann")
    scoped.answer_stop("bob")
    report_file = tmp_path / "report.json"
    result = probe_run(f"--probe-failure={policy}", f"--report-file={report_file}")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    stopped = [f"{URL}/users/ann/server"] if ann_stopped else []
    assert sorted(scoped.deleted_urls()) == [*stopped, f"{URL}/users/bob/server"]
    report = json.loads(report_file.read_text())
    ann = next(e for e in report["entries"] if e["user"] == "ann")
    assert ann["probe"]["failure"] == "the answer is not JSON"
    assert report["counts"]["probes"]["failed"] == 1
