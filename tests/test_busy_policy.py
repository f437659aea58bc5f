"""The pure busy-kernel decision: a probe's result, the hub's record, now and limits."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from idle_cull.command.settings import Settings
from idle_cull.errors import ConfigError
from idle_cull.rules.busy_kernels import (
    BusyKernel,
    ProbeLimits,
    ProbeResult,
    Verdict,
    busy_reference,
    decide_probed,
    probe_wanted,
)
from idle_cull.rules.policy import CullLimits

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
H = 3600.0


def ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def busy(*since_hours: float | None) -> ProbeResult:
    kernels = tuple(BusyKernel("python3", None if h is None else ago(h)) for h in since_hours)
    return ProbeResult(kernels=len(kernels), busy=kernels)


KEEP = ProbeLimits()  # busy timeout 1 day, failures kept
LIMIT_8H = ProbeLimits(busy_timeout=8 * H)
CULL_FAILURES = ProbeLimits(busy_timeout=8 * H, probe_failure="cull")
NO_LIMIT = ProbeLimits(busy_timeout=0)


@pytest.mark.parametrize(
    ("probe", "hub_activity", "limits", "verdict", "reason"),
    [
        pytest.param(ProbeResult(), ago(2), KEEP, Verdict.STOP, "no kernels", id="no-kernels"),
        pytest.param(
            ProbeResult(kernels=2),
            ago(2),
            KEEP,
            Verdict.STOP,
            "none of its 2 kernel(s) busy",
            id="only-idle-kernels",
        ),
        pytest.param(
            busy(2),
            ago(2),
            LIMIT_8H,
            Verdict.KEEP_BUSY,
            "kernel python3 busy since 2026-11-26T10:00:00Z; busy 2h < 8h (--busy-timeout)",
            id="busy-within-limit",
        ),
        pytest.param(
            busy(9),
            ago(9),
            LIMIT_8H,
            Verdict.STOP,
            "kernel python3 busy since 2026-11-26T03:00:00Z, but busy 9h >= 8h (--busy-timeout)",
            id="busy-past-limit",
        ),
        pytest.param(
            busy(8),
            ago(8),
            LIMIT_8H,
            Verdict.STOP,
            "kernel python3 busy since 2026-11-26T04:00:00Z, but busy 8h >= 8h (--busy-timeout)",
            id="busy-exactly-at-limit",
        ),
        # Our own earlier probes moved the hub's record (the proxy counts them): the
        # busy kernel's last message is older, and the limit counts from it.
        pytest.param(
            busy(9),
            ago(1),
            LIMIT_8H,
            Verdict.STOP,
            "kernel python3 busy since 2026-11-26T03:00:00Z, but busy 9h >= 8h (--busy-timeout)",
            id="hub-record-moved-by-probes",
        ),
        # A kernel that keeps sending output while the hub saw nothing for long.
        pytest.param(
            busy(0.1),
            ago(9),
            LIMIT_8H,
            Verdict.STOP,
            "kernel python3 busy since 2026-11-26T11:54:00Z, but busy 9h >= 8h (--busy-timeout)",
            id="hub-record-older",
        ),
        pytest.param(
            busy(None),
            ago(2),
            LIMIT_8H,
            Verdict.KEEP_BUSY,
            "kernel python3 busy; busy 2h < 8h (--busy-timeout)",
            id="busy-since-unknown",
        ),
        pytest.param(
            busy(None),
            None,
            LIMIT_8H,
            Verdict.KEEP_BUSY,
            "kernel python3 busy; kept while busy",
            id="nothing-to-measure-from",
        ),
        pytest.param(
            busy(300),
            ago(300),
            NO_LIMIT,
            Verdict.KEEP_BUSY,
            "kernel python3 busy since 2026-11-14T00:00:00Z; kept while busy",
            id="no-busy-limit",
        ),
        pytest.param(
            busy(3, 1, None),
            ago(3),
            LIMIT_8H,
            Verdict.KEEP_BUSY,
            "kernel python3 busy since 2026-11-26T09:00:00Z (+2 more busy); "
            "busy 3h < 8h (--busy-timeout)",
            id="several-busy",
        ),
        pytest.param(
            ProbeResult.failed_with("HTTP 404"),
            ago(2),
            LIMIT_8H,
            Verdict.KEEP_FAILED,
            "probe failed (HTTP 404); kept (--probe-failure=keep)",
            id="failure-kept",
        ),
        pytest.param(
            ProbeResult.failed_with("HTTP 404"),
            ago(9),
            LIMIT_8H,
            Verdict.STOP,
            "probe failed (HTTP 404), and idle 9h >= 8h (--busy-timeout)",
            id="failure-protects-no-longer-than-busy-limit",
        ),
        pytest.param(
            ProbeResult.failed_with("HTTP 404"),
            ago(300),
            NO_LIMIT,
            Verdict.KEEP_FAILED,
            "probe failed (HTTP 404); kept (--probe-failure=keep)",
            id="failure-no-limit",
        ),
        pytest.param(
            ProbeResult.failed_with("HTTP 500"),
            ago(1),
            CULL_FAILURES,
            Verdict.STOP,
            "probe failed (HTTP 500); --probe-failure=cull",
            id="failure-culled-when-asked",
        ),
        pytest.param(
            busy(1),
            ago(1),
            CULL_FAILURES,
            Verdict.KEEP_BUSY,
            "kernel python3 busy since 2026-11-26T11:00:00Z; busy 1h < 8h (--busy-timeout)",
            id="cull-on-failure-still-keeps-busy",
        ),
    ],
)
def test_decide_probed(
    probe: ProbeResult,
    hub_activity: datetime | None,
    limits: ProbeLimits,
    verdict: Verdict,
    reason: str,
) -> None:
    decided = decide_probed(probe, hub_activity, NOW, limits)
    assert (decided.verdict, decided.reason) == (verdict, reason)
    assert decided.keeps is (verdict is not Verdict.STOP)


@pytest.mark.parametrize(
    ("age", "max_age", "wanted"),
    [
        pytest.param(5 * H, 0.0, True, id="no-max-age"),
        pytest.param(5 * H, 6 * H, True, id="younger-than-max-age"),
        pytest.param(6 * H, 6 * H, False, id="max-age-always-wins"),
        pytest.param(None, 6 * H, True, id="age-unknown"),
    ],
)
def test_probe_wanted(age: float | None, max_age: float, wanted: bool) -> None:
    assert probe_wanted(age, max_age) is wanted


def test_busy_reference_is_the_older_of_hub_record_and_newest_busy_message() -> None:
    kernels = busy(5, 2).busy
    assert busy_reference(kernels, ago(1)) == ago(2)
    assert busy_reference(kernels, ago(3)) == ago(3)
    assert busy_reference(busy(None).busy, None) is None


def test_the_policy_imports_no_io() -> None:
    import idle_cull.rules.busy_kernels as module  # noqa: PLC0415

    source = Path(module.__file__ or "").read_text()
    for name in ("requests", "click", "tenacity", "concurrent", "urllib"):
        assert f"import {name}" not in source
        assert f"from {name}" not in source


def test_an_unknown_probe_failure_setting_is_a_usage_error() -> None:
    with pytest.raises(ConfigError, match="--probe-failure must be keep or cull"):
        Settings(
            url="http://hub.test/hub/api",
            token="t0ken-0123456789",
            limits=CullLimits(),
            probe_kernels=True,
            proxy_url="http://proxy.test",
            probe_limits=ProbeLimits(probe_failure="maybe"),
        )
