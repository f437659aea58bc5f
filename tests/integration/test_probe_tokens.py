"""What a probed server receives, and what it can do with it: issue 21 item 1, on a real hub.

A probe goes through the real proxy to the user's server, which runs code the user
controls. Here that server is the hub fixture's no-op server, which records the
``Authorization`` header of every ``/api/kernels`` request, as anything a user starts on
that port could. The test then plays the user: it takes what was captured and tries it
against the hub. Before issue 21 the header was the culler's own token, and the stop of
another user's server succeeded.

The culler here is ``idle-cull-prober``, whose role holds what both the old and the new
code need (``access:servers`` and ``tokens``), so the test fails on the old code for the
reason it exists, not for a missing scope.
"""

from __future__ import annotations

import time

import pytest

from tests.support.cli import IDLE, PAST_IDLE, cull
from tests.support.realhub import RealHub


def captured_header(hub: RealHub, user: str) -> str:
    """The ``Authorization`` header the probe of ``user``'s default server carried."""
    seen = [p for p in hub.kernel_probes_seen() if p["path"].startswith(f"/user/{user}/")]
    assert len(seen) == 1, hub.kernel_probes_seen()
    return seen[0]["authorization"]


@pytest.mark.matrix
def test_a_probed_server_receives_nothing_it_can_use_against_another_user(
    real_hub: RealHub,
) -> None:
    hub = real_hub
    if hub.version_info < (3,):
        pytest.skip("JupyterHub before 3.0 refuses --probe-kernels (its own test)")
    hub.create_users(["mallory", "victim"])
    hub.start_server("mallory")
    hub.start_server("victim")
    time.sleep(PAST_IDLE)
    hub.touch("victim")  # active: the pass leaves the victim alone, nothing else does
    result = cull(
        hub,
        f"--timeout={IDLE}",
        "--probe-kernels",
        f"--proxy-url={hub.public_url}",
        token=hub.prober_token,
    )
    assert result.returncode == 0, result.stderr
    assert "probe server mallory" in result.stderr

    header = captured_header(hub, "mallory")
    scheme, _, captured = header.partition(" ")
    assert scheme == "token"
    secrets = (hub.prober_token, hub.culler_token, hub.admin_token, hub.servers_only_token)
    assert captured not in secrets
    assert captured not in result.stdout + result.stderr  # the minted token is never logged

    # The user reuses what their server received, against the hub's API.
    stop = hub.api("DELETE", "/users/victim/server", token=captured)
    assert stop.status_code == 403, stop.text
    listing = hub.api("GET", "/users", token=captured)
    assert listing.status_code == 403, listing.text
    assert "" in (hub.user("victim") or {}).get("servers", {})
    # It is mallory's own token, confined to mallory's own server.
    owner = hub.api("GET", "/user", token=captured, expect=(200,)).json()
    assert (owner["kind"], owner["name"]) == ("user", "mallory")
    assert "access:servers!server=mallory/" in owner["scopes"]
    assert all(
        scope.split("!", 1)[-1].startswith(("user=mallory", "server=mallory/"))
        for scope in owner["scopes"]
    )


@pytest.mark.matrix
def test_a_hub_that_cannot_mint_confined_tokens_refuses_probing(real_hub: RealHub) -> None:
    """JupyterHub 2.x ignores the scopes asked for a new token: exit 2, nothing sent."""
    hub = real_hub
    if hub.version_info >= (3,):
        pytest.skip("from JupyterHub 3.0 a token can be confined to one user's servers")
    hub.create_users(["mallory"])
    hub.start_server("mallory")
    time.sleep(PAST_IDLE)
    result = cull(
        hub,
        f"--timeout={IDLE}",
        "--probe-kernels",
        f"--proxy-url={hub.public_url}",
        token=hub.prober_token,
    )
    assert result.returncode == 2, result.stderr
    assert "--probe-kernels needs JupyterHub 3.0 or later" in result.stderr
    assert hub.kernel_probes_seen() == []
    assert "" in (hub.user("mallory") or {}).get("servers", {})
