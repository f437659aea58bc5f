"""Which failures are worth another try, how long to wait, and one log line per retry.

Only what is transient and safe to repeat is retried: connection failures, timeouts,
429 and 502/503/504. Stopping a server or deleting a user is idempotent on the hub
(a repeat answers 404 or 204), so a retried DELETE cannot do harm.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TypeVar

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

__all__ = [
    "TRANSIENT_STATUSES",
    "RetryPolicy",
    "TransientHTTPError",
    "call_with_retries",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a transient failure before reporting it."""

    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 10.0
    max_retry_after: float = 60.0


class TransientHTTPError(Exception):
    """An HTTP answer that says "try again later"."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit alone accepts "²", which float() refuses
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def is_transient(error: BaseException) -> bool:
    if isinstance(error, requests.exceptions.SSLError):
        return False  # a certificate problem does not heal by waiting
    # A body cut off mid-way (a proxy or the hub restarting) is a dropped connection too.
    return isinstance(
        error,
        (
            TransientHTTPError,
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ),
    )


def _wait_for(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientHTTPError) and error.retry_after is not None:
            return min(error.retry_after, policy.max_retry_after)
        # Exponential backoff, jittered between half and all of the step, so that many
        # culler threads (or several cullers behind one proxy) do not retry in lockstep.
        ceiling = min(policy.max_wait, policy.initial_wait * 2 ** (state.attempt_number - 1))
        return random.uniform(ceiling / 2, ceiling)

    return wait


def _describe(error: BaseException | None) -> str:
    if isinstance(error, TransientHTTPError):
        return f"HTTP {error.status}"
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.ConnectionError):
        return "connection failed"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "answer cut off"
    return type(error).__name__


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    give_up: Callable[[], bool] = lambda: False,
) -> T:
    """Run ``call`` until it succeeds, fails for good, or the attempts run out.

    The last error is re-raised unchanged so the caller can translate it into a
    ``HubError`` with a message fit for its own context. ``give_up`` ends the retries
    early (a deadline passed, or a signal asked the pass to stop).
    """

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: %s (attempt %d of %d), retrying in %.1fs",
            what,
            _describe(error),
            state.attempt_number,
            policy.attempts,
            wait,
        )

    out_of_attempts = stop_after_attempt(policy.attempts)

    def stop(state: RetryCallState) -> bool:
        return bool(out_of_attempts(state)) or give_up()

    retrying = Retrying(
        stop=stop,
        wait=_wait_for(policy),
        retry=retry_if_exception(is_transient),
        before_sleep=log_retry,
        sleep=sleep,
        reraise=True,
    )
    return retrying(call)
