"""``--probe-kernels`` in a pass: the step between the re-check and the stop.

The runner hands every server it is about to stop to ``Evidence.check``
(``evidence.base``), which asks ``KernelSource.gather`` from the pass's worker threads,
so probes run concurrently within ``--concurrency``. The probe itself is
``kernel_api.KernelProbe`` with a token of the server's user (``probe_tokens``), the
decision ``rules.busy_kernels.decide_probed``; this module joins them, logs one line per
probe, and returns what the probe found as a ``Finding`` for the report. A dry run
probes nothing: ``would_gather`` only records that the server would have been asked.

``gather`` is the one place where the kernels of one server are asked about, and whatever
goes wrong while gathering it (an exception of any kind, from the token, the request or
the answer) becomes a failed probe of that server, decided by ``--probe-failure`` like
any other: evidence about one server can fail only that server's decision, never the pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from idle_cull.errors import ConfigError
from idle_cull.evidence.base import Asks, Target
from idle_cull.evidence.probe_tokens import ExpectedServers, ProbeTarget
from idle_cull.rules.busy_kernels import (
    ProbeLimits,
    ProbeResult,
    ProbeVerdict,
    Verdict,
    decide_probed,
    describe_busy,
)
from idle_cull.rules.busy_kernels import probe_wanted as _probe_wanted
from idle_cull.rules.evidence import Finding
from idle_cull.urls import requestable_url

__all__ = [
    "KERNEL_PROBE_TIMEOUT",
    "KernelSource",
    "ProbeFinding",
    "Prober",
    "validate_proxy_url",
]

log = logging.getLogger(__name__)

KERNEL_PROBE_TIMEOUT = 5.0  # seconds per attempt: a Jupyter server answers in milliseconds
Prober = Callable[[ProbeTarget], ProbeResult]


@dataclass(frozen=True)
class ProbeFinding:
    """What the probe found for one server and what it meant; ``result`` is ``None``
    when the server was not asked (a dry run: it would have been)."""

    result: ProbeResult | None
    verdict: ProbeVerdict | None

    @property
    def found(self) -> str:
        """``busy``, ``not_busy``, ``failed`` or ``would_probe``: the report's word."""
        if self.result is None:
            return "would_probe"
        if self.result.failed:
            return "failed"
        return "busy" if self.result.busy else "not_busy"


class KernelSource:
    """``--probe-kernels`` as a source of evidence: a busy kernel (or a failed probe,
    kept closed) keeps a server the pass is about to stop; thread-safe."""

    name = "kernels"
    asks = Asks.CANDIDATES

    def __init__(self, prober: Prober, limits: ProbeLimits, max_age: float) -> None:
        self._prober = prober
        self._limits = limits
        self._max_age = max_age
        self._expected = ExpectedServers()

    def wanted(self, target: Target) -> bool:
        """Not for a server ``--max-age`` stops: busy kernels never override it."""
        return _probe_wanted(target.age_seconds, self._max_age)

    def expect(self, targets: Sequence[Target]) -> None:
        """The servers this pass is about to stop, before the first probe: a user with
        several of them probed gets one token for all (``probe_tokens.probe_scope``)."""
        self._expected.expect(targets)

    def would_gather(self, target: Target) -> Finding:
        """Dry run: this server would be probed; nothing is sent."""
        return Finding(self.name, detail=ProbeFinding(None, None))

    def gather(self, target: Target, now: datetime) -> Finding:
        """Probe the server; ``target.last_activity`` is the hub's freshest record of it,
        which the busy limit is measured from."""
        result = self._probe(target)
        verdict = decide_probed(result, target.last_activity, now, self._limits)
        took = "" if result.seconds is None else f" in {result.seconds:.2f}s"
        level = logging.WARNING if result.failed else logging.INFO
        log.log(level, "probe server %s%s: %s", target.label, took, verdict.reason)
        return Finding(
            self.name,
            keep=f"probe: {verdict.reason}" if verdict.verdict is not Verdict.STOP else None,
            busy=describe_busy(result.busy) if result.busy else None,
            failed=result.failure,
            attempts=result.attempts,
            detail=ProbeFinding(result, verdict),
        )

    def _probe(self, target: Target) -> ProbeResult:
        """The probe's result; any exception while gathering it is a failed probe of this
        server only (named by its type: its text may quote what a server sent)."""
        try:
            return self._prober(self._expected.target_for(target))
        except Exception as error:  # the structural boundary: see the module docstring
            return ProbeResult.failed_with(
                f"unexpected {type(error).__name__} while probing", attempts=0
            )


def validate_proxy_url(url: str) -> None:
    """The proxy's public origin, to which server url paths (``/user/ann/``) are added.

    A path would be doubled (the server urls already start with the hub's base_url), and
    credentials in the URL would be sent along with the token: both refused.
    """
    parts = requestable_url(
        url, "--proxy-url", "the proxy's public URL, http://proxy-public or https://hub.example.org"
    )
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ConfigError(
            f"--proxy-url {url!r} must be the proxy's origin without a path: the servers' "
            "urls (/user/<name>/, after the hub's base_url) are added to it"
        )
    if parts.username or parts.password:
        raise ConfigError(f"--proxy-url must not contain a user name or password: {url!r}")
