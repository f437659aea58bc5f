"""The boundary's wiring of the probes and of the first signal: ``--activity-source=server``
is one probe per server that includes what ``--probe-kernels`` asks (never both), and the
first SIGTERM ends the pass gracefully with its name as the reason, and the previous
handler is put back afterwards."""

from __future__ import annotations

import os
import signal
from contextlib import closing

import pytest

from idle_cull.command.boundary import _probe_source, cancel_on_signals, probe_locator
from idle_cull.command.settings import ActivitySource
from idle_cull.evidence.kernel_probe import KernelSource
from idle_cull.evidence.probe_tokens import ProbeTokens
from idle_cull.evidence.server_activity import ServerActivitySource
from idle_cull.hub.client import HubClient
from idle_cull.runner import PassControl
from tests.support.settings import URL, settings

PROXY = "http://proxy-public"


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        pytest.param({"probe_kernels": True}, KernelSource, id="probe-kernels"),
        pytest.param(
            {"activity": ActivitySource(activity_source="server")},
            ServerActivitySource,
            id="server-source",
        ),
        pytest.param(
            {"activity": ActivitySource(activity_source="server"), "probe_kernels": True},
            ServerActivitySource,
            id="server-source-includes-the-kernel-probe",
        ),
    ],
)
def test_one_probe_source_per_mode(overrides: dict[str, object], kind: type) -> None:
    chosen = settings(proxy_url=PROXY, **overrides)
    with closing(HubClient(URL, "t0ken-for-tests")) as client:
        tokens = ProbeTokens(client, 60, probe_seconds=10.0)
        source, close = _probe_source(chosen, tokens, PassControl(), probe_locator(chosen))
        try:
            assert type(source) is kind
        finally:
            close()


def test_the_first_sigterm_ends_the_pass_gracefully_with_its_name() -> None:
    control = PassControl()
    before = signal.getsignal(signal.SIGTERM)
    with cancel_on_signals(control):
        os.kill(os.getpid(), signal.SIGTERM)
    assert control.stopped()
    assert control.reason == "SIGTERM received"
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is back
