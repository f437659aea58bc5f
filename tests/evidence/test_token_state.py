"""``--state-dir``: probe tokens kept between passes (issue 24), in a ``tmp_path``.

The directory's checks (a configuration error), the file (never trusted when odd: a
warning and fresh mints), ``ProbeTokens`` reusing what an earlier instance saved, and the
one replacement of a kept token a server refuses (``ServerAPI``, with ``responses``).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import responses

from idle_cull.errors import ConfigError, HubAuthError
from idle_cull.evidence.probe_tokens import (
    PROBE_TOKEN_NOTE,
    STORED_LIFETIME,
    ProbeTarget,
    ProbeTokens,
    RenewableToken,
)
from idle_cull.evidence.server_api import Answer, ServerAPI
from idle_cull.evidence.token_state import (
    MAX_STATE_BYTES,
    StoredToken,
    TokenState,
    check_state_dir,
    state_file_name,
)

HUB = "http://hub.test/hub/api"
PROXY = "http://proxy.test"
KERNELS = f"{PROXY}/user/ann/api/kernels"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


def ann(*servers: str, server: str = "") -> ProbeTarget:
    return ProbeTarget("ann", server, "/user/ann/", frozenset({server, *servers}))


class FakeMinter:
    """Answers every mint like a 6.1 hub, with a distinct secret each time."""

    def __init__(self, expires_at: str | None = None) -> None:
        self.asked: list[tuple[str, list[str], int]] = []
        self.expires_at = expires_at
        self._lock = threading.Lock()

    def new_token(
        self, user: str, *, scopes: list[str], expires_in: int, note: str
    ) -> dict[str, Any]:
        assert note == PROBE_TOKEN_NOTE
        with self._lock:
            self.asked.append((user, scopes, expires_in))
            count = len(self.asked)
        model: dict[str, Any] = {
            "user": user,
            "scopes": [*scopes, f"read:users:name!user={user}"],
            "token": f"secret{user}{count:026d}",
        }
        if self.expires_at is not None:
            model["expires_at"] = self.expires_at
        return model


class Clocks:
    """A wall clock and a monotonic one that move together."""

    def __init__(self) -> None:
        self.wall = NOW
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


def tokens_in(
    directory: Path, minter: FakeMinter, clocks: Clocks, *, probe_seconds: float = 10
) -> ProbeTokens:
    """One pass's ``ProbeTokens`` with the state of ``directory``, as the boundary builds it."""
    return ProbeTokens(
        minter,
        STORED_LIFETIME,
        probe_seconds=probe_seconds,
        clock=lambda: clocks.mono,
        wall=lambda: clocks.wall,
        state=TokenState(directory, HUB),
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    check_state_dir(directory)
    return directory


def state_file(directory: Path) -> Path:
    return directory / state_file_name(HUB)


# -- reuse across passes ---------------------------------------------------------------------


def test_a_second_pass_reuses_the_first_ones_token(state_dir: Path) -> None:
    minter, clocks = FakeMinter(), Clocks()
    first = tokens_in(state_dir, minter, clocks)
    secret = first.token_for(ann())
    first.save()
    clocks.advance(600)  # the next scheduled pass, ten minutes later
    second = tokens_in(state_dir, minter, clocks)
    assert second.token_for(ann()) == secret
    assert isinstance(second.token_for(ann()), RenewableToken)
    assert len(minter.asked) == 1
    assert minter.asked[0] == ("ann", ["access:servers!server=ann/"], STORED_LIFETIME)
    assert (second.mints, second.reused) == (0, 2)


def test_without_a_state_directory_every_pass_mints() -> None:
    minter, clocks = FakeMinter(), Clocks()
    for _ in range(2):
        tokens = ProbeTokens(minter, 60, probe_seconds=10, clock=lambda: clocks.mono)
        tokens.token_for(ann())
        tokens.save()  # nothing to save to: a no-op
    assert len(minter.asked) == 2


@pytest.mark.parametrize(
    ("later", "mints"),
    [
        pytest.param(STORED_LIFETIME - 11, 1, id="11s-left-enough-for-a-10s-probe"),
        pytest.param(STORED_LIFETIME - 9, 2, id="9s-left-not-enough"),
        pytest.param(STORED_LIFETIME + 1, 2, id="expired"),
    ],
)
def test_a_kept_token_is_reused_only_with_enough_life_left(
    state_dir: Path, later: float, mints: int
) -> None:
    minter, clocks = FakeMinter(), Clocks()
    first = tokens_in(state_dir, minter, clocks)
    first.token_for(ann())
    first.save()
    clocks.advance(later)
    tokens_in(state_dir, minter, clocks).token_for(ann())
    assert len(minter.asked) == mints


def test_the_hubs_earlier_expiry_is_the_one_kept(state_dir: Path) -> None:
    """A hub whose expires_at is earlier than our reckoning (its clock behind, a cap) wins."""
    soon = (NOW + timedelta(seconds=120)).isoformat().replace("+00:00", "Z")
    minter, clocks = FakeMinter(expires_at=soon), Clocks()
    first = tokens_in(state_dir, minter, clocks)
    first.token_for(ann())
    first.save()
    stored = json.loads(state_file(state_dir).read_text())["tokens"]["ann"]
    assert stored["expires_at"] == (NOW + timedelta(seconds=120)).isoformat()
    clocks.advance(115)  # 5 s left on the hub's clock: not enough for a 10 s probe
    tokens_in(state_dir, minter, clocks).token_for(ann())
    assert len(minter.asked) == 2


def test_a_later_hub_expiry_does_not_stretch_the_token(state_dir: Path) -> None:
    late = (NOW + timedelta(days=1)).isoformat()
    minter, clocks = FakeMinter(expires_at=late), Clocks()
    first = tokens_in(state_dir, minter, clocks)
    first.token_for(ann())
    first.save()
    stored = json.loads(state_file(state_dir).read_text())["tokens"]["ann"]
    assert stored["expires_at"] == (NOW + timedelta(seconds=STORED_LIFETIME)).isoformat()


@pytest.mark.parametrize(
    ("first_target", "second_target", "mints"),
    [
        pytest.param(ann(), ann(), 1, id="same-server"),
        pytest.param(ann("gpu"), ann(), 1, id="user-wide-covers-one-server"),
        pytest.param(ann(), ann(server="gpu"), 2, id="another-server"),
        pytest.param(ann(), ann("gpu"), 2, id="one-server-does-not-cover-user-wide"),
    ],
)
def test_a_kept_token_is_reused_only_where_its_scope_covers(
    state_dir: Path, first_target: ProbeTarget, second_target: ProbeTarget, mints: int
) -> None:
    minter, clocks = FakeMinter(), Clocks()
    first = tokens_in(state_dir, minter, clocks)
    first.token_for(first_target)
    first.save()
    tokens_in(state_dir, minter, clocks).token_for(second_target)
    assert len(minter.asked) == mints


def test_a_kept_token_is_only_for_the_user_it_was_minted_for(state_dir: Path) -> None:
    minter, clocks = FakeMinter(), Clocks()
    first = tokens_in(state_dir, minter, clocks)
    ann_secret = first.token_for(ann())
    first.save()
    bob = ProbeTarget("bob", "", "/user/bob/", frozenset({""}))
    assert tokens_in(state_dir, minter, clocks).token_for(bob) != ann_secret
    assert [user for user, _, _ in minter.asked] == ["ann", "bob"]


def test_the_file_is_written_only_when_something_changed_and_drops_expired_entries(
    state_dir: Path,
) -> None:
    minter, clocks = FakeMinter(), Clocks()
    first = tokens_in(state_dir, minter, clocks)
    first.token_for(ann())
    first.save()
    written = state_file(state_dir).stat().st_mtime_ns
    clocks.advance(60)
    reusing = tokens_in(state_dir, minter, clocks)
    reusing.token_for(ann())
    os.utime(state_file(state_dir), ns=(1, 1))
    reusing.save()  # nothing minted: not written
    assert state_file(state_dir).stat().st_mtime_ns == 1 != written
    clocks.advance(STORED_LIFETIME)  # ann's token has expired
    bob = ProbeTarget("bob", "", "/user/bob/", frozenset({""}))
    later = tokens_in(state_dir, minter, clocks)
    later.token_for(bob)
    later.save()
    assert set(json.loads(state_file(state_dir).read_text())["tokens"]) == {"bob"}


def test_the_file_is_0600_and_the_directory_0700(tmp_path: Path) -> None:
    directory = tmp_path / "new"
    old_umask = os.umask(0)  # the modes must not depend on the operator's umask
    try:
        check_state_dir(directory)
    finally:
        os.umask(old_umask)
    minter, clocks = FakeMinter(), Clocks()
    tokens = tokens_in(directory, minter, clocks)
    tokens.token_for(ann())
    tokens.save()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(state_file(directory).stat().st_mode) == 0o600
    assert [p.name for p in directory.iterdir()] == [state_file_name(HUB)]  # no temp left


def test_two_hubs_sharing_a_directory_keep_two_files(state_dir: Path) -> None:
    assert state_file_name(HUB) != state_file_name("http://other.test/hub/api")
    assert state_file_name(HUB) == state_file_name("http://user:pw@hub.test/hub/api/")


# -- the directory: a configuration error when unsafe --------------------------------------


def test_a_missing_parent_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="parent directory must exist"):
        check_state_dir(tmp_path / "no" / "state")


def directory_of(mode: int) -> Any:
    """Makes a directory of exactly ``mode``, whatever the umask."""

    def make(path: Path) -> None:
        path.mkdir()
        path.chmod(mode)

    return make


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda p: p.symlink_to(p.parent), "is a symbolic link", id="symlink"),
        pytest.param(lambda p: p.write_text(""), "is not a directory", id="a-file"),
        pytest.param(directory_of(0o770), "open to other users", id="group-writable"),
        pytest.param(directory_of(0o740), "open to other users", id="group-readable"),
        pytest.param(directory_of(0o705), "open to other users", id="world-readable"),
        pytest.param(directory_of(0o500), "not writable", id="read-only"),
    ],
)
def test_an_unsafe_directory_is_a_configuration_error(
    tmp_path: Path, make: Any, message: str
) -> None:
    if message == "not writable" and os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    directory = tmp_path / "state"
    make(directory)
    with pytest.raises(ConfigError, match=message) as raised:
        check_state_dir(directory)
    assert "\n" not in str(raised.value)


def test_a_directory_of_another_user_is_a_configuration_error(state_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"owned by uid \d+, not by uid 4242"):
        check_state_dir(state_dir, uid=lambda: 4242)


# -- the file: never trusted when odd --------------------------------------------------------


def valid_document(**changes: Any) -> dict[str, Any]:
    entry = {
        "token": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "scope": "access:servers!server=ann/",
        "expires_at": (NOW + timedelta(hours=1)).isoformat(),
    }
    document: dict[str, Any] = {"version": 1, "hub": HUB, "tokens": {"ann": entry}}
    for key, value in changes.items():
        if key in entry:
            entry[key] = value
        else:
            document[key] = value
    return document


def test_a_valid_file_is_loaded(state_dir: Path) -> None:
    state_file(state_dir).write_text(json.dumps(valid_document()))
    os.chmod(state_file(state_dir), 0o600)
    loaded = TokenState(state_dir, HUB).load(NOW)
    assert loaded == {
        "ann": StoredToken(
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "access:servers!server=ann/",
            NOW + timedelta(hours=1),
        )
    }


HOSTILE = [
    pytest.param(b"{not json", "not valid JSON", id="corrupt"),
    pytest.param(b"\xff\xfe", "not valid JSON", id="not-utf8"),
    pytest.param(b"[]", "not a JSON object", id="a-list"),
    pytest.param(b"[" * 10_000 + b"]" * 10_000, "nested too deeply", id="nested-10000"),
    pytest.param(json.dumps(valid_document(token=12345)).encode(), "not a stored", id="int-secret"),
    pytest.param(
        json.dumps(valid_document(token="a b")).encode(), "not a stored", id="secret-with-space"
    ),
    pytest.param(
        json.dumps(valid_document(scope="admin:users")).encode(), "not a stored", id="other-scope"
    ),
    pytest.param(
        json.dumps(valid_document(scope="access:servers!user=bob")).encode(),
        "not a stored",
        id="another-users-scope",
    ),
    pytest.param(
        json.dumps(valid_document(expires_at="tomorrow")).encode(), "not a stored", id="bad-date"
    ),
    pytest.param(
        json.dumps(valid_document(expires_at="2026-12-07T13:00:00")).encode(),
        "not a stored",
        id="naive-date",
    ),
    pytest.param(
        json.dumps(valid_document(tokens=["ann"])).encode(), "not a JSON object", id="tokens-list"
    ),
    pytest.param(
        json.dumps(valid_document(hub="http://other.test/hub/api")).encode(),
        "another hub URL",
        id="another-hub",
    ),
    pytest.param(json.dumps(valid_document(version=2)).encode(), "version 1", id="version"),
]


@pytest.mark.parametrize(("content", "why"), HOSTILE)
def test_an_odd_file_is_one_warning_and_the_pass_mints(
    state_dir: Path, content: bytes, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = state_file(state_dir)
    path.write_bytes(content)
    os.chmod(path, 0o600)
    minter, clocks = FakeMinter(), Clocks()
    tokens = tokens_in(state_dir, minter, clocks)
    tokens.token_for(ann())
    assert len(minter.asked) == 1
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    message = record.getMessage()
    assert why in message
    assert "\n" not in message
    assert "0f1e2d3c4b5a69788796a5b4c3d2e1f0" not in caplog.text
    tokens.save()  # replaced by a good one
    assert "ann" in json.loads(path.read_text())["tokens"]


def test_a_100_mb_file_is_not_read(state_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = state_file(state_dir)
    with path.open("wb") as file:
        file.truncate(100 * 1024 * 1024)  # sparse: costs no disk
    os.chmod(path, 0o600)
    assert TokenState(state_dir, HUB).load(NOW) == {}
    assert f"larger than {MAX_STATE_BYTES:,} bytes" in caplog.text


@pytest.mark.parametrize(
    ("plant", "why"),
    [
        pytest.param("symlink", "symbolic link", id="symlink"),
        pytest.param("fifo", "not a regular file", id="fifo"),
        pytest.param("directory", "not a regular file", id="directory"),
        pytest.param("open-mode", "other users may read", id="mode-0644"),
    ],
)
def test_a_planted_file_is_not_read(
    state_dir: Path, tmp_path: Path, plant: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = state_file(state_dir)
    good = tmp_path / "elsewhere.json"
    good.write_text(json.dumps(valid_document()))
    os.chmod(good, 0o600)
    if plant == "symlink":
        path.symlink_to(good)
    elif plant == "fifo":
        os.mkfifo(path, 0o600)
    elif plant == "directory":
        path.mkdir()
    else:
        path.write_text(json.dumps(valid_document()))
        os.chmod(path, 0o644)
    assert TokenState(state_dir, HUB).load(NOW) == {}
    assert why in caplog.text


def test_a_file_of_another_user_is_not_read(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = state_file(state_dir)
    path.write_text(json.dumps(valid_document()))
    os.chmod(path, 0o600)
    assert TokenState(state_dir, HUB, uid=lambda: 4242).load(NOW) == {}
    assert "owned by uid" in caplog.text


def test_saving_replaces_a_symlink_and_never_writes_through_it(
    state_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "victim"
    target.write_text("keep me")
    state_file(state_dir).symlink_to(target)
    minter, clocks = FakeMinter(), Clocks()
    tokens = tokens_in(state_dir, minter, clocks)
    tokens.token_for(ann())
    tokens.save()
    assert target.read_text() == "keep me"
    assert not state_file(state_dir).is_symlink()


def test_a_save_that_fails_is_one_warning(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state_file(state_dir).mkdir()  # the rename cannot replace a directory
    minter, clocks = FakeMinter(), Clocks()
    tokens = tokens_in(state_dir, minter, clocks)
    tokens.token_for(ann())
    tokens.save()
    assert "could not save probe tokens" in caplog.text
    assert [p.name for p in state_dir.iterdir()] == [state_file_name(HUB)]  # temp removed


# -- a kept token the server refuses: one mint, one retry -------------------------------


@pytest.fixture
def servers() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def refusing(kept: str, status: int) -> Any:
    """A server that refuses ``kept`` (the hub revoked it) and answers [] to any other."""

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        if request.headers["Authorization"] == f"token {kept}":
            return status, {}, '{"message": "Forbidden"}'
        return 200, {"Content-Type": "application/json"}, "[]"

    return answer


def probe(tokens: ProbeTokens) -> Answer:
    """What every source does: ask ``tokens`` for ann's token, then ``ServerAPI.get`` with it
    (with a retry of transient failures, as the probes allow)."""
    api = ServerAPI(PROXY, timeout=2, max_bytes=1024, sleep=lambda _: None)
    try:
        answer = api.get(KERNELS, tokens.token_for(ann()), attempts=2)
    finally:
        api.close()
    assert isinstance(answer, Answer)
    return answer


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_kept_token_is_replaced_once_and_the_probe_succeeds(
    state_dir: Path,
    servers: responses.RequestsMock,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    minter, clocks = FakeMinter(), Clocks()
    first = tokens_in(state_dir, minter, clocks)
    kept = first.token_for(ann())
    first.save()
    servers.add_callback(responses.GET, KERNELS, callback=refusing(kept, status))
    second = tokens_in(state_dir, minter, clocks)
    assert probe(second).status == 200
    assert probe(second).status == 200  # the replacement, straight away
    assert len(minter.asked) == 2  # the first pass's, and one replacement
    sent = [c.request.headers["Authorization"] for c in servers.calls]
    fresh = f"token secretann{2:026d}"
    assert sent == [f"token {kept}", fresh, fresh]
    second.save()
    assert json.loads(state_file(state_dir).read_text())["tokens"]["ann"]["token"] == fresh[6:]
    for secret in (kept, fresh[6:]):
        assert secret not in caplog.text


def test_a_fresh_token_that_is_refused_is_not_retried(servers: responses.RequestsMock) -> None:
    """Only a kept token may have been revoked: a refused fresh one is the answer."""
    servers.get(KERNELS, status=403)
    minter = FakeMinter()
    tokens = ProbeTokens(minter, 60, probe_seconds=10)
    assert probe(tokens).status == 403
    assert len(servers.calls) == 1
    assert len(minter.asked) == 1


def test_a_replacement_that_is_refused_too_ends_the_probe_without_a_loop(
    servers: responses.RequestsMock,
) -> None:
    servers.get(KERNELS, status=403)
    renewals: list[str] = []

    def renewed() -> str:
        renewals.append("x")
        return "replacement-T0KEN"

    api = ServerAPI(PROXY, timeout=2, max_bytes=1024, sleep=lambda _: None)
    try:
        token = RenewableToken("kept-T0KEN-abcdef", replacement=lambda: None, renewed=renewed)
        answer = api.get(KERNELS, token, attempts=2)
    finally:
        api.close()
    assert isinstance(answer, Answer)
    assert answer.status == 403
    assert len(servers.calls) == 2
    assert renewals == ["x"]


class RefusingMinter(FakeMinter):
    def new_token(
        self, user: str, *, scopes: list[str], expires_in: int, note: str
    ) -> dict[str, Any]:
        if self.asked:
            raise HubAuthError("could not mint a probe token for 'ann': no", status=403)
        return super().new_token(user, scopes=scopes, expires_in=expires_in, note=note)


def test_a_replacement_that_cannot_be_minted_leaves_the_refusal(
    state_dir: Path, servers: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    minter, clocks = RefusingMinter(), Clocks()
    first = tokens_in(state_dir, minter, clocks)
    first.token_for(ann())
    first.save()
    servers.get(KERNELS, status=403)
    assert probe(tokens_in(state_dir, minter, clocks)).status == 403
    assert len(servers.calls) == 1
    assert "a server refused the kept probe token of 'ann'" in caplog.text
