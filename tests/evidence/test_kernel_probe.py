"""``KernelSource``: the kernel probe as a source of evidence (issue 21 item 2).

Nothing that goes wrong while probing one server may escape ``Evidence.check``, and the
prober learns every server of a user that the pass expects to stop.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from idle_cull.evidence.base import Evidence, Target
from idle_cull.evidence.kernel_probe import KernelSource, ProbeFinding
from idle_cull.evidence.probe_tokens import ProbeTarget
from idle_cull.rules.busy_kernels import ProbeLimits, ProbeResult
from idle_cull.rules.policy import Action, ServerDecision

NOW = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)


def decision(user: str) -> ServerDecision:
    return ServerDecision(user, "", Action.STOP, "idle", last_activity=NOW, url=f"/user/{user}/")


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(RecursionError("maximum recursion depth exceeded"), id="recursion"),
        pytest.param(KeyError("execution_state"), id="key-error"),
        pytest.param(MemoryError(), id="memory"),
    ],
)
@pytest.mark.parametrize(
    ("policy", "kept"),
    [pytest.param("keep", True, id="keep"), pytest.param("cull", False, id="cull")],
)
def test_any_exception_while_gathering_evidence_is_a_failed_probe_of_that_server(
    error: BaseException, policy: str, kept: bool
) -> None:
    """Issue 21 item 2, made structural: on old main these exceptions left ``check``."""

    def prober(target: ProbeTarget) -> ProbeResult:
        if target.user == "ann":
            raise error
        return ProbeResult(kernels=0)

    limits = ProbeLimits(busy_timeout=0, probe_failure=policy)
    check = Evidence([KernelSource(prober, limits, max_age=0)])
    outcome = check.check(target(decision("ann"), "/user/ann/"), NOW)
    assert (outcome is not None) is kept
    assert check.check(target(decision("bob"), "/user/bob/"), NOW) is None  # bob: stopped
    (found,) = check.findings[("ann", "")]
    finding = found.detail
    assert isinstance(finding, ProbeFinding)
    assert finding.found == "failed"
    assert finding.result is not None
    assert finding.result.failure == f"unexpected {type(error).__name__} while probing"


def target(decision: ServerDecision, url: str | None) -> Target:
    """The server a decision is about, at ``url``, last active at ``NOW``."""
    return Target(decision.user, decision.server, decision.label, url, NOW, decision.age_seconds)


def test_the_expected_servers_of_a_user_reach_the_prober() -> None:
    targets: list[ProbeTarget] = []

    def prober(target: ProbeTarget) -> ProbeResult:
        targets.append(target)
        return ProbeResult(kernels=0)

    check = Evidence([KernelSource(prober, ProbeLimits(), max_age=0)])
    gpu = ServerDecision("ann", "gpu", Action.STOP, "idle", last_activity=NOW, url="/user/ann/gpu/")
    check.expect(target(d, d.url) for d in [decision("ann"), gpu, decision("bob")])
    check.check(target(gpu, gpu.url), NOW)
    assert targets == [ProbeTarget("ann", "gpu", "/user/ann/gpu/", frozenset({"", "gpu"}))]
