"""The report (``idle_cull.output.report``): masked as a whole before it is published."""

from __future__ import annotations

from idle_cull.models import Outcome
from idle_cull.output.render import render_json
from idle_cull.output.report import Entry, ExitStatus
from idle_cull.rules.policy import Action, ServerDecision
from tests.support.reports import a_report

TOKEN = "hardening-token-0123456789abcdef"


def test_the_report_is_masked_as_a_whole_before_it_is_published() -> None:
    report = a_report()
    decision = ServerDecision(user="ann", server="", action=Action.STOP, reason="idle")
    report.entries.append(Entry("server", decision).settled(Outcome.FAILED, 1, f"echo {TOKEN}"))
    report.rejected_records.append(f"record quoting {TOKEN}")
    report.error = f"error quoting {TOKEN}"
    report.mask(TOKEN)
    assert TOKEN not in render_json(report, ExitStatus.ACTION_FAILED)
    assert report.entries[0].detail == "echo ***"
