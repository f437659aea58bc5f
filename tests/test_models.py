"""Parsing the hub's user records, old shapes and hostile values included."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from dateutil.parser import isoparse
from hypothesis import given, settings
from hypothesis import strategies as st

from idle_cull.models import RecordError, User, parse_timestamp

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "2026-11-26T10:00:00.123456Z", datetime(2026, 11, 26, 10, 0, 0, 123456, UTC), id="utc-z"
        ),
        pytest.param(
            "2026-11-26T10:00:00", datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC), id="naive-is-utc"
        ),
        pytest.param(
            "2026-11-26T12:00:00+02:00",
            datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC),
            id="offset-converted",
        ),
        pytest.param(None, None, id="null"),
    ],
)
def test_parse_timestamp(text: str | None, expected: datetime | None) -> None:
    assert parse_timestamp(text, field="t") == expected


@pytest.mark.parametrize("garbage", ["yesterday", "", "2026-13-45T99:00:00Z", 12345, ["2026"]])
def test_garbage_timestamp_rejects_the_record(garbage: object) -> None:
    with pytest.raises(RecordError, match="timestamp"):
        parse_timestamp(garbage, field="last_activity")


def test_user_from_current_hub() -> None:
    user = User.from_api(
        {
            "name": "a/b c%",
            "admin": True,
            "groups": ["gpu"],
            "created": "2026-01-01T00:00:00Z",
            "last_activity": "2026-11-26T10:00:00Z",
            "servers": {
                "": {
                    "name": "",
                    "ready": True,
                    "pending": None,
                    "started": "2026-11-26T09:00:00Z",
                    "last_activity": None,
                },
                "nb": {
                    "name": "nb",
                    "ready": False,
                    "pending": "spawn",
                    "started": None,
                    "last_activity": None,
                    "user_options": {"profile": "gpu"},
                },
            },
        }
    )
    assert user.name == "a/b c%"
    assert user.admin is True
    assert user.groups == ("gpu",)
    assert [s.name for s in user.servers] == ["", "nb"]
    assert user.servers[1].pending == "spawn"
    assert user.servers[1].user_options == {"profile": "gpu"}
    assert user.hidden == frozenset()


def test_fields_hidden_by_scopes_are_named() -> None:
    user = User.from_api({"name": "bob", "last_activity": None, "servers": {}})
    assert user.hidden == {"admin", "created", "groups"}
    assert user.admin is None


def test_pre_0_9_hub_single_server_shape() -> None:
    user = User.from_api(
        {
            "name": "old",
            "server": "/user/old/",
            "pending": None,
            "last_activity": "2017-01-01T00:00:00",
        }
    )
    assert len(user.servers) == 1
    server = user.servers[0]
    assert server.is_default
    assert server.ready
    assert server.last_activity == datetime(2017, 1, 1, tzinfo=UTC)


def test_pre_0_9_hub_user_without_server() -> None:
    assert (
        User.from_api(
            {"name": "old", "server": None, "pending": None, "last_activity": None}
        ).servers
        == ()
    )


@pytest.mark.parametrize(
    ("record", "message"),
    [
        pytest.param("alice", "not an object", id="not-a-dict"),
        pytest.param({"admin": False}, "without a name", id="no-name"),
        pytest.param({"name": ""}, "without a name", id="empty-name"),
        pytest.param({"name": "x", "servers": []}, "servers is not an object", id="servers-list"),
        pytest.param(
            {"name": "x", "servers": {"": "up"}}, "is not an object", id="server-not-dict"
        ),
        pytest.param({"name": "x", "groups": "gpu"}, "groups is not a list", id="groups-string"),
        pytest.param(
            {"name": "x", "last_activity": "soon"},
            "user 'x': last_activity",
            id="bad-timestamp-names-user",
        ),
    ],
)
def test_unusable_records_raise_record_error(record: object, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        User.from_api(record)


# --- the fast timestamp path agrees with dateutil ------------------------------------------


def two_digits(usual_max: int, usual_min: int = 0) -> st.SearchStrategy[str]:
    """Mostly in range, sometimes anything: both paths must agree on either."""
    usual = st.integers(usual_min, usual_max)
    return st.one_of(usual, usual, usual, st.integers(0, 99)).map(lambda n: f"{n:02d}")


two = two_digits(59)
hub_like_timestamps = st.builds(
    lambda year, month, day, hour, minute, second, fraction, zone: (
        f"{year:04d}-{month}-{day}T{hour}:{minute}:{second}{fraction}{zone}"
    ),
    st.integers(1, 9999),
    two_digits(12, 1),
    two_digits(28, 1),
    two_digits(24),
    two,
    two,
    st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=8).map(lambda d: f".{d}")),
    st.one_of(
        st.just(""),
        st.just("Z"),
        st.builds(lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from("+-"), two_digits(23), two),
    ),
)


def reference(value: str) -> datetime | str:
    """What dateutil alone made of a timestamp (as parse_timestamp normalises it)."""
    try:
        parsed = isoparse(value)
        return (
            parsed.replace(tzinfo=timezone.utc)
            if parsed.tzinfo is None
            else parsed.astimezone(timezone.utc)
        )
    except (ValueError, OverflowError):
        return "rejected"


def ours(value: str) -> datetime | str | None:
    try:
        return parse_timestamp(value, field="t")
    except RecordError:
        return "rejected"


@settings(max_examples=500)
@given(st.one_of(hub_like_timestamps, st.text(max_size=40)))
def test_fast_timestamp_parsing_agrees_with_dateutil(value: str) -> None:
    assert ours(value) == reference(value)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-26T04:14:31.123456Z",
        "2026-11-26T04:14:31Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T04:14:31+00:60",
        "2026-11-26T04:14:31.1234567Z",
        "2026-11-26T04:14:31\u0660Z",
    ],
)
def test_edge_timestamps_parse_as_dateutil_does(value: str) -> None:
    assert ours(value) == reference(value)
