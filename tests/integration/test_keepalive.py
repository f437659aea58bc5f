"""The keep-alive file on real single-user servers (issue 25): what keeps, what cannot.

Real jupyterhub-singleuser servers behind the real configurable-http-proxy
(``tests/support/singleuser.py``); the files are written into the server's root directory
as a user's terminal would (``tests/support/userfiles.py``) and read through the proxy
with a token minted for the user, as a pass reads them. The decision is the pure
``postponement`` with the real reading and the real clock.

One server serves every test of this module (a real server costs seconds to start);
each test writes the file it needs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dateutil.parser import isoparse

from idle_cull.rules.postponement import KEEP_ALIVE_FILE, Postponement, Reading, postponement
from tests.support.singleuser import FaultyProbeTarget, SingleUserHub
from tests.support.userfiles import UserFiles

UTC = timezone.utc
USER = "keeper"
LIMIT = 8 * 3600.0
ACTIVITY_SETTLES = 3.5  # the fixture's activity intervals are 1 s (plus jitter and a poll)


@pytest.fixture(scope="module")
def files(singleuser_session: SingleUserHub) -> Iterator[UserFiles]:
    singleuser_session.fresh_user(USER)
    with UserFiles(singleuser_session) as files:
        yield files
        files.clear(USER)
    singleuser_session.stop_all_servers()


def decide(reading: Reading) -> tuple[Postponement, datetime]:
    now = datetime.now(UTC)
    return postponement(reading, now, LIMIT, UTC), now


def assert_within_the_limit(decided: Postponement, reading: Reading, now: datetime) -> None:
    """The one promise whatever the file holds: never past the limit after it was written."""
    if decided.until is None:
        return
    assert reading.file is not None
    assert decided.until <= min(reading.file.last_modified, now) + timedelta(seconds=LIMIT)


def test_a_file_within_the_limit_keeps_the_server(files: UserFiles) -> None:
    files.write(USER, "2h\n")
    reading = files.read(USER)
    decided, now = decide(reading)
    assert reading.file is not None
    assert reading.file.content == "2h\n"
    assert abs((reading.file.last_modified - now).total_seconds()) < 30
    assert decided.keeps(now)
    until = reading.file.last_modified + timedelta(hours=2)
    assert decided.until == until
    assert decided.reason == f"user postponed until {until:%H:%M} (limit 8h)" or (
        decided.reason.startswith("user postponed until ")  # across midnight: with the date
    )


def test_the_reader_sends_the_users_own_token_never_the_cullers(files: UserFiles) -> None:
    files.write(USER, "1h")
    assert files.read(USER).file is not None
    hub = files.hub.hub
    assert files.tokens_handed_out
    for token in files.tokens_handed_out:
        assert token not in (hub.culler_token, hub.admin_token, hub.prober_token)
        owner = hub.api("GET", "/user", token=token, expect=(200,)).json()
        assert (owner["kind"], owner["name"]) == ("user", USER)


def test_a_file_past_the_limit_does_not_keep(files: UserFiles) -> None:
    written = datetime.now(UTC) - timedelta(hours=9)
    files.write(USER, "23:59", written=written)
    reading = files.read(USER)
    decided, now = decide(reading)
    assert not decided.keeps(now)
    assert decided.reason.startswith("postponement ended at ")
    assert decided.reason.endswith("(limit 8h)")


def test_no_file_keeps_nothing(files: UserFiles) -> None:
    files.clear(USER)
    reading = files.read(USER)
    assert (reading.file, reading.reason) == (None, "no keep-alive file")
    assert decide(reading)[0].until is None


def hostile_target(kind: str, tmp_path: Path) -> Path:
    if kind == "outside":
        target = tmp_path / "elsewhere.txt"
        target.write_text("99h\n")
        return target
    return Path({"passwd": "/etc/passwd", "zero": "/dev/zero"}[kind])


HOURS_AGO_9 = timedelta(hours=-9)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        pytest.param(
            lambda f: f.write(USER, b"2h\n" * 700_000),
            "ignored: the file is 2,100,000 bytes, more than a time or duration",
            id="huge",
        ),
        pytest.param(
            lambda f: f.write(USER, b"\xff\xfe2\x00h\n"), "ignored: not a text file", id="binary"
        ),
        pytest.param(
            lambda f: f.write(USER, "9999-12-31T23:59"),
            "asked for later; limit 8h",
            id="far-future",
        ),
        pytest.param(
            lambda f: f.write(USER, "2020-01-01T00:00"),
            "postponement ended at 2020-01-01 00:00 (limit 8h)",
            id="past-date",
        ),
        pytest.param(
            lambda f: f.write(USER, "2h", datetime.now(UTC) + timedelta(days=3650)),
            "ignored: the file's modification time is in the future",
            id="touched-into-the-future",
        ),
        pytest.param(
            lambda f: f.write(USER, "soon please"),
            "ignored: 'soon please' is not an end time or a duration",
            id="garbage",
        ),
        pytest.param(
            lambda f: f.directory(USER),
            f"ignored: {KEEP_ALIVE_FILE} is a directory, not a file",
            id="directory",
        ),
        pytest.param("outside", "postponement ended at", id="symlink-elsewhere-written-long-ago"),
        pytest.param(
            "passwd",
            "ignored: the file is longer than a time or duration",
            id="symlink-to-etc-passwd",
        ),
        pytest.param("zero", "ignored: not a text file", id="symlink-to-dev-zero"),
    ],
)
def test_hostile_contents_never_keep_past_the_limit_nor_fail(
    files: UserFiles, tmp_path: Path, setup: object, reason: str
) -> None:
    if isinstance(setup, str):
        files.symlink(USER, hostile_target(setup, tmp_path), datetime.now(UTC) + HOURS_AGO_9)
    else:
        setup(files)  # type: ignore[operator]
    started = time.monotonic()
    reading = files.read(USER)
    assert time.monotonic() - started < 10
    decided, now = decide(reading)
    assert reason in decided.reason, decided
    assert_within_the_limit(decided, reading, now)
    if "later" in reason:
        assert decided.keeps(now)
    else:
        assert not decided.keeps(now)
    files.clear(USER)


@pytest.mark.parametrize(
    ("status", "stall", "reason"),
    [
        pytest.param(404, False, "no keep-alive file", id="no-contents-api"),
        pytest.param(500, False, "not read: HTTP 500", id="500"),
        pytest.param(200, True, "not read: no answer within 3s", id="hangs"),
    ],
)
def test_a_server_without_a_contents_api_falls_back_to_no_postponement(
    files: UserFiles, status: int, stall: bool, reason: str
) -> None:
    files.write(USER, "2h")
    with (
        FaultyProbeTarget(status, stall=stall) as target,
        UserFiles(files.hub, proxy_url=target.url) as elsewhere,
    ):
        started = time.monotonic()
        reading = elsewhere.read(USER)
        took = time.monotonic() - started
        assert target.requests >= 1
    assert (reading.file, reading.reason) == (None, reason)
    assert took < 8
    assert decide(reading)[0].until is None


def hub_record(hub: SingleUserHub) -> datetime:
    model = hub.server_model(USER)
    assert model is not None
    return isoparse(model["last_activity"])


def test_reading_never_moves_the_servers_own_activity(files: UserFiles) -> None:
    """What moves and what does not when the file is read (compare the kernel probe's test).

    The server's own ``last_activity`` (``/api/status``) never moves: every read carries
    ``no_track_activity``. The hub's record does not move for a missing file (404: the
    proxy counts only answers below 300 as activity), which is every server without the
    file; it does move for a file that is there, since configurable-http-proxy counts
    every successful proxied answer and the hub copies it (docs/how-to/users-in-the-loop.md
    says what that costs: after a postponement ends, at most one more idle timeout).
    """
    hub = files.hub
    files.clear(USER)
    own_before = hub.status(USER)["last_activity"]  # through the proxy: activity, once
    time.sleep(ACTIVITY_SETTLES)
    hub_before = hub_record(hub)
    for _ in range(3):
        assert files.read(USER).reason == "no keep-alive file"
    time.sleep(ACTIVITY_SETTLES)
    assert hub_record(hub) == hub_before
    files.write(USER, "2h")
    read_at = time.time()
    assert files.read(USER).file is not None
    time.sleep(ACTIVITY_SETTLES)
    assert hub.status(USER)["last_activity"] == own_before
    assert hub_record(hub).timestamp() >= read_at - 1
    files.clear(USER)
