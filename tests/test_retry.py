"""``idle_cull.hub.retry``: what is transient, how long to wait, one log line per retry.

No real sleeping: ``call_with_retries`` takes a ``sleep`` that records the waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
import requests

from idle_cull.hub.retry import (
    RetryPolicy,
    TransientHTTPError,
    call_with_retries,
    is_transient,
    parse_retry_after,
)

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)


# -- parse_retry_after ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2", 2.0, id="seconds"),
        pytest.param("0", 0.0, id="zero-seconds"),
        pytest.param(" 7 ", 7.0, id="seconds-padded"),
        pytest.param("120", 120.0, id="large-seconds-uncapped-here"),
        pytest.param("Thu, 26 Nov 2026 12:00:30 GMT", 30.0, id="date-30s-ahead"),
        pytest.param("Thu, 26 Nov 2026 13:00:00 +0100", 0.0, id="date-with-offset-is-now"),
        pytest.param("Thu, 26 Nov 2026 12:01:00 -0000", 60.0, id="date-naive-taken-as-utc"),
        pytest.param("Thu, 26 Nov 2026 11:59:00 GMT", 0.0, id="date-in-the-past-is-0"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="date-long-past-is-0"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("Mon, 99 Foo 2015 99:99:99 GMT", None, id="garbage-date"),
        pytest.param("1.5", None, id="fraction-not-allowed"),
        pytest.param("-1", None, id="negative"),
        pytest.param("1 2", None, id="two-numbers"),
        pytest.param("\u00b2", None, id="superscript-two-unicode-digit"),
        pytest.param("\u0661", None, id="arabic-indic-digit"),
        pytest.param("", None, id="empty"),
        pytest.param("   ", None, id="blank"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_date_defaults_to_the_current_time() -> None:
    soon = datetime.now(timezone.utc) + timedelta(seconds=100)
    wait = parse_retry_after(soon.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert wait is not None
    assert 95 < wait <= 100


# -- is_transient --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        pytest.param(TransientHTTPError(503, None), True, id="http-503"),
        pytest.param(TransientHTTPError(429, 2.0), True, id="http-429"),
        pytest.param(requests.ConnectionError("refused"), True, id="connection-error"),
        pytest.param(requests.Timeout("slow"), True, id="timeout"),
        pytest.param(requests.exceptions.ReadTimeout("slow"), True, id="read-timeout"),
        pytest.param(requests.exceptions.ConnectTimeout("slow"), True, id="connect-timeout"),
        pytest.param(requests.exceptions.SSLError("bad cert"), False, id="ssl-error"),
        pytest.param(requests.HTTPError("500"), False, id="requests-http-error"),
        pytest.param(requests.exceptions.InvalidHeader("bad"), False, id="invalid-header"),
        pytest.param(ValueError("bug"), False, id="value-error"),
        pytest.param(KeyError("bug"), False, id="key-error"),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_transient_http_error_carries_status_and_wait() -> None:
    error = TransientHTTPError(429, 2.5)
    assert (error.status, error.retry_after, str(error)) == (429, 2.5, "HTTP 429")


# -- call_with_retries ---------------------------------------------------------------


def failing(errors: list[BaseException], result: str = "ok") -> tuple[Callable[[], str], list[int]]:
    """A call that raises ``errors`` in turn, then returns ``result``; counts its calls."""
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return call, calls


INSTANT = RetryPolicy(attempts=3, initial_wait=0, max_wait=0, max_retry_after=30)


def test_success_first_time_does_not_sleep() -> None:
    waits: list[float] = []
    call, calls = failing([])
    assert call_with_retries(call, INSTANT, "list users", sleep=waits.append) == "ok"
    assert (len(calls), waits) == (1, [])


def test_transient_failures_then_success(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    waits: list[float] = []
    call, calls = failing([TransientHTTPError(503, None), requests.ConnectionError("refused")])
    assert call_with_retries(call, INSTANT, "list users", sleep=waits.append) == "ok"
    assert len(calls) == 3
    assert waits == [0.0, 0.0]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "list users: HTTP 503 (attempt 1 of 3), retrying in 0.0s",
        "list users: connection failed (attempt 2 of 3), retrying in 0.0s",
    ]
    assert all(r.name == "idle_cull.hub.retry" for r in warnings)


def test_exhausted_reraises_the_last_error_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    last = requests.Timeout("third")
    call, calls = failing([requests.Timeout("first"), requests.Timeout("second"), last])
    with pytest.raises(requests.Timeout) as raised:
        call_with_retries(call, INSTANT, "stop server 'a'", sleep=waits.append)
    assert raised.value is last
    assert len(calls) == 3
    assert len(waits) == 2  # no sleep after the last attempt
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert messages == [
        "stop server 'a': timed out (attempt 1 of 3), retrying in 0.0s",
        "stop server 'a': timed out (attempt 2 of 3), retrying in 0.0s",
    ]


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(requests.exceptions.SSLError("certificate verify failed"), id="ssl"),
        pytest.param(ValueError("a bug"), id="value-error"),
        pytest.param(requests.exceptions.InvalidHeader("bad"), id="invalid-header"),
    ],
)
def test_non_transient_error_is_raised_at_once(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    waits: list[float] = []
    call, calls = failing([error])
    with pytest.raises(type(error)) as raised:
        call_with_retries(call, INSTANT, "x", sleep=waits.append)
    assert raised.value is error
    assert (len(calls), waits) == (1, [])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_retry_after_is_waited_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    call, _ = failing([TransientHTTPError(429, 2.0)])
    assert call_with_retries(call, INSTANT, "delete user 'b'", sleep=waits.append) == "ok"
    assert waits == [2.0]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "delete user 'b': HTTP 429 (attempt 1 of 3), retrying in 2.0s"
    ]


def test_retry_after_is_capped_by_the_policy() -> None:
    waits: list[float] = []
    call, _ = failing([TransientHTTPError(503, 3600.0), TransientHTTPError(503, 0.0)])
    call_with_retries(call, INSTANT, "x", sleep=waits.append)
    assert waits == [30.0, 0.0]


def test_backoff_grows_exponentially_with_jitter_up_to_max_wait() -> None:
    policy = RetryPolicy(attempts=6, initial_wait=1.0, max_wait=4.0, max_retry_after=60)
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    for _ in range(50):
        waits: list[float] = []
        call, _ = failing([requests.ConnectionError("refused")] * 5)
        call_with_retries(call, policy, "x", sleep=waits.append)
        assert len(waits) == 5
        for wait, ceiling in zip(waits, ceilings, strict=True):
            assert ceiling / 2 <= wait <= ceiling


def test_backoff_without_retry_after_for_http_status() -> None:
    policy = RetryPolicy(attempts=2, initial_wait=0.5, max_wait=10, max_retry_after=60)
    waits: list[float] = []
    call, _ = failing([TransientHTTPError(502, None)])
    call_with_retries(call, policy, "x", sleep=waits.append)
    assert len(waits) == 1
    assert 0.25 <= waits[0] <= 0.5


def test_single_attempt_policy_never_retries() -> None:
    policy = RetryPolicy(attempts=1, initial_wait=0, max_wait=0, max_retry_after=0)
    waits: list[float] = []
    call, calls = failing([TransientHTTPError(503, None)])
    with pytest.raises(TransientHTTPError):
        call_with_retries(call, policy, "x", sleep=waits.append)
    assert (len(calls), waits) == (1, [])
