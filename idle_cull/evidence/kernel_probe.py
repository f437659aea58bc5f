"""``--probe-kernels`` in a pass: the step between the re-check and the stop.

The runner hands every server it is about to stop to ``BusyCheck.check`` (from its
worker threads, so probes run concurrently within ``--concurrency``). The probe itself
is ``kernels.KernelProbe`` with a token of the server's user (``probe_tokens``), the
decision ``busy.decide_probed``; this module joins them, logs one line per probe, and
records what each probe found for the report. A dry run probes nothing: ``would_probe``
only records that the server would have been asked.

``check`` is the one place where evidence about one server is gathered, and whatever
goes wrong while gathering it (an exception of any kind, from the token, the request or
the answer) becomes a failed probe of that server, decided by ``--probe-failure`` like
any other: evidence about one server can fail only that server's decision, never the pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from idle_cull.errors import ConfigError
from idle_cull.evidence.probe_tokens import ProbeTarget
from idle_cull.models import Outcome
from idle_cull.rules.busy_kernels import (
    ProbeLimits,
    ProbeResult,
    ProbeVerdict,
    Verdict,
    decide_probed,
)
from idle_cull.rules.busy_kernels import probe_wanted as _probe_wanted
from idle_cull.rules.policy import ServerDecision
from idle_cull.urls import requestable_url

__all__ = [
    "PROBE_TIMEOUT",
    "BusyCheck",
    "ProbeFinding",
    "ProbeOutcome",
    "Prober",
    "validate_proxy_url",
]

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0  # seconds per attempt: a Jupyter server answers in milliseconds
Prober = Callable[[ProbeTarget], ProbeResult]
Key = tuple[str, str]  # (user, server)


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


@dataclass(frozen=True)
class ProbeOutcome:
    """A probe that keeps the server: the action result the runner reports instead."""

    outcome: Outcome
    attempts: int
    detail: str


class BusyCheck:
    """Probes servers about to be stopped and keeps the busy ones; thread-safe."""

    def __init__(self, prober: Prober, limits: ProbeLimits, max_age: float) -> None:
        self._prober = prober
        self._limits = limits
        self._max_age = max_age
        self._lock = threading.Lock()
        self._findings: dict[Key, ProbeFinding] = {}
        self._expected: dict[str, frozenset[str]] = {}  # user -> servers it may probe

    @property
    def findings(self) -> Mapping[Key, ProbeFinding]:
        with self._lock:
            return dict(self._findings)

    def wanted(self, decision: ServerDecision) -> bool:
        """Not for a server ``--max-age`` stops: busy kernels never override it."""
        return _probe_wanted(decision.age_seconds, self._max_age)

    def expect(self, decisions: Iterable[ServerDecision]) -> None:
        """The servers this pass is about to stop, before the first probe: a user with
        several of them probed gets one token for all (``probe_tokens.probe_scope``)."""
        servers: dict[str, set[str]] = {}
        for decision in decisions:
            if self.wanted(decision):
                servers.setdefault(decision.user, set()).add(decision.server)
        with self._lock:
            self._expected = {user: frozenset(names) for user, names in servers.items()}

    def would_probe(self, decision: ServerDecision) -> bool:
        """Dry run: record that this server would be probed; nothing is sent."""
        if not self.wanted(decision):
            return False
        self._record(decision, ProbeFinding(None, None))
        return True

    def check(
        self,
        decision: ServerDecision,
        url: str | None,
        last_activity: datetime | None,
        now: datetime,
    ) -> ProbeOutcome | None:
        """Probe the server at ``url``; the outcome that keeps it, or ``None`` to stop it.

        ``last_activity`` is the hub's freshest record of the server (``started`` when it
        has none), which the busy limit is measured from.
        """
        if not self.wanted(decision):
            return None
        result = self._gather(decision, url)
        verdict = decide_probed(result, last_activity, now, self._limits)
        self._record(decision, ProbeFinding(result, verdict))
        took = "" if result.seconds is None else f" in {result.seconds:.2f}s"
        level = logging.WARNING if result.failed else logging.INFO
        log.log(level, "probe server %s%s: %s", decision.label, took, verdict.reason)
        if verdict.verdict is Verdict.STOP:
            return None
        return ProbeOutcome(Outcome.SKIPPED, result.attempts, f"probe: {verdict.reason}")

    def _gather(self, decision: ServerDecision, url: str | None) -> ProbeResult:
        """The probe's result; any exception while gathering it is a failed probe of this
        server only (named by its type: its text may quote what a server sent)."""
        with self._lock:
            expected = self._expected.get(decision.user, frozenset())
        target = ProbeTarget(decision.user, decision.server, url, expected | {decision.server})
        try:
            return self._prober(target)
        except Exception as error:  # the structural boundary: see the module docstring
            return ProbeResult.failed_with(
                f"unexpected {type(error).__name__} while probing", attempts=0
            )

    def _record(self, decision: ServerDecision, finding: ProbeFinding) -> None:
        with self._lock:
            self._findings[(decision.user, decision.server)] = finding


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
