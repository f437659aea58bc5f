"""Probe tokens (issue 21 item 1).

``HubClient.new_token`` against a ``responses`` hub; ``ProbeTokens`` with small fakes. A
probe must only ever send a token owned by the probed user and confined to that user's
servers (what the kernel probe does with its findings: test_kernel_probe.py).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from idle_cull.errors import HubAuthError, HubError, HubProtocolError, TokenLifetimeTooLong
from idle_cull.evidence.probe_tokens import (
    MIN_LIFETIME,
    PROBE_TOKEN_NOTE,
    ProbeTarget,
    ProbeTokens,
    checked_secret,
    probe_scope,
    token_lifetime,
)
from idle_cull.hub.client import HubClient
from idle_cull.hub.retry import RetryPolicy

HUB = "http://hub.test/hub/api"
CULLER_TOKEN = "culler-T0KEN-0123456789abcdef"
SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
MINT_ANN = f"{HUB}/users/ann/tokens"


def ann(*servers: str, server: str = "") -> ProbeTarget:
    return ProbeTarget("ann", server, "/user/ann/", frozenset({server, *servers}))


def minted(user: str = "ann", secret: str = SECRET, **extra: Any) -> dict[str, Any]:
    """A token model as JupyterHub 3.1 to 6.1 answer it (the hub adds read:users:* scopes)."""
    scopes = extra.pop("scopes", [f"access:servers!server={user}/", f"read:users:name!user={user}"])
    return {"user": user, "kind": "api_token", "scopes": scopes, "token": secret, **extra}


@pytest.fixture
def hub() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[HubClient]:
    retry = RetryPolicy(attempts=1)
    hub_client = HubClient(HUB, CULLER_TOKEN, retry=retry, sleep=lambda _: None)
    yield hub_client
    hub_client.close()


# -- HubClient.new_token ---------------------------------------------------------------------


def test_a_mint_asks_for_the_scope_lifetime_and_note_and_returns_the_model(
    hub: responses.RequestsMock, client: HubClient
) -> None:
    hub.post(MINT_ANN, status=201, json=minted())
    model = client.new_token(
        "ann", scopes=["access:servers!server=ann/"], expires_in=60, note=PROBE_TOKEN_NOTE
    )
    assert model["token"] == SECRET
    (call,) = hub.calls
    assert json.loads(call.request.body or b"") == {
        "scopes": ["access:servers!server=ann/"],
        "expires_in": 60,
        "note": "idle-cull probe",
    }
    assert call.request.headers["Authorization"] == f"token {CULLER_TOKEN}"  # to the hub only


def test_a_refused_mint_names_the_missing_scope(
    hub: responses.RequestsMock, client: HubClient
) -> None:
    message = "Service ann not found or no permissions to generate tokens"
    hub.post(MINT_ANN, status=403, json={"status": 403, "message": message})
    with pytest.raises(HubAuthError, match="lacks the scope 'tokens'") as raised:
        client.new_token("ann", scopes=["x"], expires_in=60, note="n")
    assert "mint a probe token for 'ann'" in str(raised.value)


def test_a_lifetime_above_the_hubs_cap_names_the_cap(
    hub: responses.RequestsMock, client: HubClient
) -> None:
    message = "token expires_in: 600 must not exceed 30"
    hub.post(MINT_ANN, status=400, json={"status": 400, "message": message})
    with pytest.raises(TokenLifetimeTooLong) as raised:
        client.new_token("ann", scopes=["x"], expires_in=600, note="n")
    assert raised.value.limit == 30
    assert "token_expires_in_max_seconds" in str(raised.value)


def test_another_400_is_a_hub_error_with_the_hubs_message(
    hub: responses.RequestsMock, client: HubClient
) -> None:
    message = "Not assigning requested scopes access:servers!server=ann/ not held by User ann"
    hub.post(MINT_ANN, status=400, json={"status": 400, "message": message})
    with pytest.raises(HubError, match="not held by User ann") as raised:
        client.new_token("ann", scopes=["x"], expires_in=60, note="n")
    assert not isinstance(raised.value, TokenLifetimeTooLong)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>token " + SECRET.encode() + b"</html>", id="not-json"),
        pytest.param(b"[" * 40_000 + b"]" * 40_000, id="nested"),
        pytest.param(json.dumps([SECRET]).encode(), id="a-list"),
    ],
)
def test_a_malformed_answer_is_a_protocol_error_that_quotes_nothing_of_it(
    hub: responses.RequestsMock, client: HubClient, body: bytes
) -> None:
    hub.post(MINT_ANN, status=201, body=body)
    with pytest.raises(HubProtocolError) as raised:
        client.new_token("ann", scopes=["x"], expires_in=60, note="n")
    assert SECRET not in str(raised.value)


# -- what a minted token must look like before it is sent -------------------------------------


@pytest.mark.parametrize(
    ("model", "why"),
    [
        pytest.param(minted(secret=""), "has no token", id="empty-token"),
        pytest.param(minted(secret="a b"), "has no token", id="space-in-token"),
        pytest.param(minted(secret="x" * 300), "has no token", id="huge-token"),
        pytest.param({"user": "ann", "roles": ["token"], "token": SECRET}, "before 3.0", id="2.x"),
        pytest.param(minted(scopes=["access:servers"]), "beyond", id="unfiltered"),
        pytest.param(minted(scopes=["access:servers!server=bob/"]), "beyond", id="other-user"),
        pytest.param(minted(scopes=["admin:users!user=ann", "list:users"]), "beyond", id="more"),
        pytest.param(minted(scopes=["access:servers!user=annabel"]), "beyond", id="prefix"),
    ],
)
def test_a_token_not_confined_to_its_user_is_never_used(model: dict[str, Any], why: str) -> None:
    with pytest.raises(HubProtocolError, match=why) as raised:
        checked_secret(model, "ann")
    assert SECRET not in str(raised.value)


def test_a_token_confined_to_its_user_is_used() -> None:
    scopes = ["access:servers!user=ann", "read:users:groups!user=ann"]
    assert checked_secret(minted(scopes=scopes), "ann") == SECRET


@pytest.mark.parametrize(
    ("target", "scope"),
    [
        pytest.param(ann(), "access:servers!server=ann/", id="default-server"),
        pytest.param(ann(server="gpu"), "access:servers!server=ann/gpu", id="named-server"),
        pytest.param(ann("gpu"), "access:servers!user=ann", id="several-servers"),
    ],
)
def test_the_scope_is_the_server_or_the_users_servers(target: ProbeTarget, scope: str) -> None:
    assert probe_scope(target) == scope


@pytest.mark.parametrize(
    ("timeout", "attempts", "lifetime"),
    [
        pytest.param(5.0, 2, MIN_LIFETIME, id="default-probe"),
        pytest.param(30.0, 2, 180, id="slow-probe"),
        pytest.param(0.1, 1, MIN_LIFETIME, id="never-below-the-minimum"),
    ],
)
def test_token_lifetime(timeout: float, attempts: int, lifetime: int) -> None:
    assert token_lifetime(timeout, attempts) == lifetime


# -- ProbeTokens: one token per user per pass ------------------------------------------------


class FakeMinter:
    """Answers every mint like a 6.1 hub; ``cap`` models token_expires_in_max_seconds."""

    def __init__(self, cap: int | None = None) -> None:
        self.cap = cap
        self.asked: list[tuple[str, list[str], int]] = []
        self._lock = threading.Lock()

    def new_token(
        self, user: str, *, scopes: list[str], expires_in: int, note: str
    ) -> dict[str, Any]:
        assert note == PROBE_TOKEN_NOTE
        with self._lock:
            self.asked.append((user, scopes, expires_in))
            count = len(self.asked)
        if self.cap is not None and expires_in > self.cap:
            raise TokenLifetimeTooLong("capped", limit=self.cap)
        return minted(user, secret=f"{user}-{count}", scopes=scopes)


def test_a_users_token_is_minted_once_for_all_of_their_probes() -> None:
    minter = FakeMinter()
    tokens = ProbeTokens(minter, 60, probe_seconds=10)
    threads = [
        threading.Thread(target=tokens.token_for, args=(ann("", "gpu", server=s),))
        for s in ("", "gpu")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert minter.asked == [("ann", ["access:servers!user=ann"], 60)]
    assert tokens.token_for(ann("gpu")) == "ann-1"
    assert tokens.mints == 1


def test_a_token_about_to_expire_is_replaced() -> None:
    now = [100.0]
    minter = FakeMinter()
    tokens = ProbeTokens(minter, 60, probe_seconds=10, clock=lambda: now[0])
    assert tokens.token_for(ann()) == "ann-1"
    now[0] += 49  # 11 s left: still enough for one probe
    assert tokens.token_for(ann()) == "ann-1"
    now[0] += 2  # 9 s left: not enough
    assert tokens.token_for(ann()) == "ann-2"


def test_a_hub_that_caps_lifetimes_is_asked_for_its_cap_for_the_rest_of_the_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    minter = FakeMinter(cap=30)
    tokens = ProbeTokens(minter, 60, probe_seconds=10)
    assert tokens.token_for(ann()) == "ann-2"
    assert tokens.token_for(ProbeTarget("bob", "", "/user/bob/", frozenset({""}))) == "bob-3"
    assert [asked[2] for asked in minter.asked] == [60, 30, 30]
    assert "asking for 30s instead" in caplog.text
