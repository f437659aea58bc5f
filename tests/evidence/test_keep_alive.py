"""The keep-alive file (``rules/postponement.py``, ``evidence/keep_alive.py``): what a user writes, what it keeps.

The pure part is table-driven with ``now`` passed in; the reader is tested against
``responses`` (the contents API as jupyter_server answers it, and as others do not), and
against real single-user servers in tests/integration/test_keepalive.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st

from idle_cull.evidence.keep_alive import KeepAliveReader
from idle_cull.evidence.probe_tokens import ProbeTarget
from idle_cull.evidence.proxy_routes import through_proxy
from idle_cull.rules.postponement import (
    CLOCK_SKEW,
    KEEP_ALIVE_FILE,
    KeepAliveError,
    KeepAliveFile,
    Reading,
    postponement,
    read_request,
)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
HOUR = 3600.0
PROXY = "http://proxy.test"
URL = f"{PROXY}/user/ann/api/contents/{KEEP_ALIVE_FILE}"


def file(content: str, written: datetime = NOW - timedelta(minutes=10)) -> Reading:
    return Reading(KeepAliveFile(content, written))


# -- what the user wrote ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "written", "zone", "expected"),
    [
        pytest.param("2h", NOW, UTC, NOW + timedelta(hours=2), id="duration"),
        pytest.param(" 1h30m\n", NOW, UTC, NOW + timedelta(minutes=90), id="duration-with-newline"),
        pytest.param("90M", NOW, UTC, NOW + timedelta(minutes=90), id="upper-case-unit"),
        pytest.param("18:00", NOW, UTC, NOW.replace(hour=18), id="clock-time-later-today"),
        pytest.param(
            "9:30",
            NOW,
            UTC,
            NOW.replace(hour=9, minute=30) + timedelta(days=1),
            id="clock-time-passed-means-tomorrow",
        ),
        pytest.param("14:00", NOW, UTC, NOW + timedelta(days=1), id="clock-time-now-is-tomorrow"),
        pytest.param("18:00", NOW, BERLIN, NOW.replace(hour=17), id="clock-time-in-the-zone"),
        pytest.param(
            "2026-12-08T06:00", NOW, UTC, datetime(2026, 12, 8, 6, tzinfo=UTC), id="date-time"
        ),
        pytest.param(
            "2026-12-08 06:00:30",
            NOW,
            BERLIN,
            datetime(2026, 12, 8, 5, 0, 30, tzinfo=UTC),
            id="date-time-with-space-in-the-zone",
        ),
        pytest.param(
            "2026-12-08T06:00+02:00",
            NOW,
            BERLIN,
            datetime(2026, 12, 8, 4, tzinfo=UTC),
            id="date-time-with-offset",
        ),
        pytest.param(
            "2026-12-08T06:00Z", NOW, BERLIN, datetime(2026, 12, 8, 6, tzinfo=UTC), id="date-time-z"
        ),
    ],
)
def test_what_a_user_writes_means(
    text: str, written: datetime, zone: ZoneInfo, expected: datetime
) -> None:
    assert read_request(text, written, zone) == expected


def test_a_clock_time_across_a_daylight_saving_change_keeps_its_wall_time() -> None:
    written = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)  # 22:00 in Berlin, summer time
    # 08:00 the next morning is after the change to winter time (UTC+1)
    assert read_request("08:00", written, BERLIN) == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("  \n", "empty", id="blank"),
        pytest.param("tonight", "is not an end time or a duration", id="word"),
        pytest.param("600", "is not an end time or a duration", id="number-without-unit"),
        pytest.param("-2h", "is not an end time or a duration", id="negative"),
        pytest.param("25:00", "is not an end time or a duration", id="hour-25"),
        pytest.param("2026-02-30T10:00", "is not a date and time that exists", id="february-30"),
        pytest.param("18:00\n20:00", "more than one short line", id="two-lines"),
        pytest.param("2h" * 100, "more than one short line", id="long"),
        pytest.param("\x1b[31m2h", "more than one short line", id="escape-sequence"),
        pytest.param("nan", "is not an end time or a duration", id="nan"),
        pytest.param("1e9h", "is not an end time or a duration", id="exponent"),
    ],
)
def test_what_cannot_be_a_postponement_says_why(text: str, why: str) -> None:
    with pytest.raises(KeepAliveError, match=why) as raised:
        read_request(text, NOW, UTC)
    assert "write an end time like 18:00 or a duration like 2h" in str(raised.value) or (
        "exists" in why
    )


# -- what it keeps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reading", "limit", "until", "reason"),
    [
        pytest.param(
            file("18:00"),
            8 * HOUR,
            NOW.replace(hour=18),
            "user postponed until 18:00 (limit 8h)",
            id="within-the-limit",
        ),
        pytest.param(
            file("2h", NOW - timedelta(hours=1)),
            8 * HOUR,
            NOW + timedelta(hours=1),
            "user postponed until 15:00 (limit 8h)",
            id="duration-from-the-write",
        ),
        pytest.param(
            file("23:00", NOW - timedelta(hours=1)),
            4 * HOUR,
            NOW + timedelta(hours=3),
            "user postponed until 17:00 (asked for later; limit 4h)",
            id="capped-from-the-write",
        ),
        pytest.param(
            file("2h", NOW - timedelta(hours=3)),
            8 * HOUR,
            None,
            "postponement ended at 13:00 (limit 8h)",
            id="ended",
        ),
        pytest.param(
            file("23:00", NOW - timedelta(hours=5)),
            4 * HOUR,
            None,
            "postponement ended at 13:00 (limit 4h)",
            id="past-the-limit",
        ),
        pytest.param(
            file("9999-12-31T23:59"),
            8 * HOUR,
            NOW + timedelta(hours=7, minutes=50),
            "user postponed until 21:50 (asked for later; limit 8h)",
            id="far-future",
        ),
        pytest.param(
            file("999999w"),
            8 * HOUR,
            NOW + timedelta(hours=7, minutes=50),
            "user postponed until 21:50 (asked for later; limit 8h)",
            id="huge-duration",
        ),
        pytest.param(
            file("2020-01-01T00:00"),
            8 * HOUR,
            None,
            "postponement ended at 2020-01-01 00:00 (limit 8h)",
            id="past-date",
        ),
        pytest.param(
            file("02:00", NOW - timedelta(minutes=10)),
            20 * HOUR,
            datetime(2026, 12, 8, 2, tzinfo=UTC),
            "user postponed until 2026-12-08 02:00 (limit 20h)",
            id="tomorrow",
        ),
        pytest.param(file("18:00"), 0, None, "postponing is off (limit 0)", id="off"),
        pytest.param(
            Reading(None, "no keep-alive file"), 8 * HOUR, None, "no keep-alive file", id="no-file"
        ),
        pytest.param(
            file("soon"),
            8 * HOUR,
            None,
            "ignored: 'soon' is not an end time or a duration; write an end time like "
            "18:00 or a duration like 2h",
            id="garbage",
        ),
        pytest.param(
            file("2h", NOW + timedelta(days=365 * 70)),
            8 * HOUR,
            None,
            "ignored: the file's modification time is in the future",
            id="touched-into-the-future",
        ),
        pytest.param(
            file("18:00", datetime(1, 1, 1, tzinfo=UTC)),
            8 * HOUR,
            None,
            "postponement ended at 0001-01-01 08:00 (limit 8h)",
            id="year-one",
        ),
    ],
)
def test_a_postponement_never_outlasts_the_limit_from_the_write(
    reading: Reading, limit: float, until: datetime | None, reason: str
) -> None:
    decided = postponement(reading, NOW, limit, UTC)
    assert decided.until == until
    assert decided.reason == reason
    assert decided.keeps(NOW) is (until is not None)


def test_a_modification_time_within_the_clock_skew_counts_from_now() -> None:
    """A server's clock a little ahead is not an attack; the bound then counts from now."""
    ahead = NOW + timedelta(seconds=CLOCK_SKEW - 1)
    decided = postponement(file("99h", ahead), NOW, 2 * HOUR, UTC)
    assert decided.until == NOW + timedelta(hours=2)


@given(
    content=st.text(max_size=80),
    written_offset=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    limit=st.floats(min_value=0, max_value=1e7, allow_nan=False),
)
def test_no_content_and_no_modification_time_keeps_longer_than_the_limit(
    content: str, written_offset: float, limit: float
) -> None:
    written = NOW + timedelta(seconds=written_offset)
    decided = postponement(file(content, written), NOW, limit, BERLIN)
    if decided.until is not None:
        assert NOW < decided.until <= NOW + timedelta(seconds=limit + CLOCK_SKEW)
        assert decided.until <= min(written, NOW) + timedelta(seconds=limit)


# -- reading it --------------------------------------------------------------------------------


def model(content: str | None = None, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": KEEP_ALIVE_FILE,
        "path": KEEP_ALIVE_FILE,
        "type": "file",
        "size": 6,
        "last_modified": "2026-12-07T13:50:00.000001Z",
        "content": content,
        "format": None if content is None else "text",
    }
    base.update(fields)
    return base


def at(url: str | None) -> ProbeTarget:
    """Ann's default server at ``url``, as the reader is asked about it."""
    return ProbeTarget("ann", "", url, frozenset({""}))


@pytest.fixture
def reader() -> Iterator[KeepAliveReader]:
    reader = KeepAliveReader(through_proxy(PROXY), timeout=2)
    yield reader
    reader.close()


def add(rsps: responses.RequestsMock, status: int, body: object, content: str) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    rsps.add(
        responses.GET,
        URL,
        status=status,
        body=text,
        match=[
            responses.matchers.query_param_matcher(
                {"content": content, "no_track_activity": "1"}, strict_match=False
            )
        ],
    )


@responses.activate
def test_a_small_text_file_is_read_with_the_users_token_and_without_tracking(
    reader: KeepAliveReader,
) -> None:
    add(responses.mock, 200, model(), "0")
    add(responses.mock, 200, model("18:00\n"), "1")
    reading = reader.read(at("/user/ann/"), lambda: "users-own-token")
    assert reading == Reading(
        KeepAliveFile("18:00\n", datetime(2026, 12, 7, 13, 50, 0, 1, tzinfo=UTC)), requests=2
    )
    first, second = responses.calls
    for call in (first, second):
        assert call.request.headers["Authorization"] == "token users-own-token"
        assert "no_track_activity=1" in (call.request.url or "")
    assert "type=file" in (second.request.url or "")
    assert "format=text" in (second.request.url or "")


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        pytest.param(
            [(404, {"message": "file or directory does not exist", "reason": None}, "0")],
            "no keep-alive file",
            id="no-file",
        ),
        pytest.param(
            [(404, "<html>Not Found</html>", "0")],
            "no keep-alive file",
            id="no-contents-api",
        ),
        pytest.param(
            [(200, model(type="directory", size=None), "0")],
            f"ignored: {KEEP_ALIVE_FILE} is a directory, not a file",
            id="directory",
        ),
        pytest.param(
            [(200, model(size=10**9), "0")],
            "ignored: the file is 1,000,000,000 bytes, more than a time or duration",
            id="huge",
        ),
        pytest.param(
            [(200, model(), "0"), (400, {"message": "not UTF-8 encoded"}, "1")],
            "ignored: not a text file",
            id="binary",
        ),
        pytest.param(
            [(200, model(), "0"), (200, model("x" * 20_000), "1")],
            "ignored: answer larger than 16 KiB",
            id="grew-between-the-requests",
        ),
        pytest.param(
            [(200, model(), "0"), (200, model("2h", last_modified="yesterday"), "1")],
            "ignored: the server gave no usable last_modified",
            id="bad-timestamp",
        ),
        pytest.param([(500, "oops", "0")], "not read: HTTP 500", id="500"),
        pytest.param([(302, "", "0")], "not read: HTTP 302", id="redirect-not-followed"),
        pytest.param(
            [(200, "[[[" * 20_00, "0")], "not read: the answer is not a contents model", id="nested"
        ),
        pytest.param(
            [(200, "<html>login</html>", "0")],
            "not read: the answer is not a contents model",
            id="html",
        ),
    ],
)
@responses.activate
def test_whatever_the_server_answers_is_a_reading_with_a_reason(
    reader: KeepAliveReader, answers: list[tuple[int, object, str]], reason: str
) -> None:
    for status, body, content in answers:
        add(responses.mock, status, body, content)
    reading = reader.read(at("/user/ann/"), lambda: "t")
    assert (reading.file, reading.reason) == (None, reason)
    assert reading.requests == len(answers)


@responses.activate
def test_a_connection_failure_is_a_reading_with_a_reason(reader: KeepAliveReader) -> None:
    responses.add(responses.GET, URL, body=requests.ConnectionError("refused"))
    reading = reader.read(at("/user/ann/"), lambda: "t")
    assert (reading.file, reading.reason) == (None, "not read: ConnectionError")


@pytest.mark.parametrize(
    "url", ["//evil.test/user/ann/", "http://evil.test/", "/user/ann/?x=1", ""]
)
def test_a_server_url_that_is_not_a_plain_path_gets_no_token(
    reader: KeepAliveReader, url: str
) -> None:
    def no_token() -> str:
        raise AssertionError("a token was asked for")

    reading = reader.read(at(url or None), no_token)
    assert reading.file is None
    assert reading.reason.startswith("the hub gave no usable server url")
