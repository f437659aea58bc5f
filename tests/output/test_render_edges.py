"""The report's edges: with ``--activity-source=server`` each server entry says what its
own activity showed (null where it was not asked, ``would_probe`` in a dry run) and the
counts say how many; an interrupted pass says so in the text report."""

from __future__ import annotations

from datetime import timedelta

from idle_cull.output.render import render_text, report_document
from idle_cull.output.report import ExitStatus
from idle_cull.rules.evidence import Finding
from idle_cull.rules.server_activity import ActivityFinding
from tests.support.records import NOW
from tests.support.reports import settled_report, validate

IDLE_SINCE = NOW - timedelta(hours=3)


def activity_report() -> dict[tuple[str, str], dict[str, object] | None]:
    """Each server entry's ``activity``, keyed by (user, server)."""
    report = settled_report(
        activity_source="server",
        findings={
            ("bob", "gpu"): (
                Finding(
                    "server",
                    detail=ActivityFinding(
                        source="server", idle_since=IDLE_SINCE, reason="no kernel busy"
                    ),
                ),
            ),
            ("alice", ""): (Finding("server"),),
        },
    )
    document = report_document(report, ExitStatus.OK)
    validate(document)
    return {
        (entry["user"], entry["server"]): entry["activity"]
        for entry in document["entries"]
        if entry["kind"] == "server"
    }


def test_a_server_entry_says_what_its_own_activity_showed() -> None:
    assert activity_report()[("bob", "gpu")] == {
        "found": "idle",
        "source": "server",
        "idle_since": IDLE_SINCE.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "reason": "no kernel busy",
    }


def test_a_server_that_would_have_been_asked_says_would_probe() -> None:
    assert activity_report()[("alice", "")] == {
        "found": "would_probe",
        "source": "server",
        "idle_since": None,
        "reason": None,
    }


def test_a_server_not_asked_has_null_activity() -> None:
    unasked = [key for key, found in activity_report().items() if found is None]
    assert unasked, "the small hub has servers the probe did not ask"


def test_the_counts_give_servers_by_what_their_activity_showed() -> None:
    report = settled_report(
        activity_source="server", findings={("alice", ""): (Finding("server"),)}
    )
    counts = report_document(report, ExitStatus.OK)["counts"]
    assert counts["activity"]["would_probe"] == 1


def test_an_interrupted_pass_says_why_in_the_text_report() -> None:
    report = settled_report(interrupted="SIGTERM received")
    text = render_text(report, ExitStatus.ACTION_FAILED)
    assert "INTERRUPTED: SIGTERM received" in text.splitlines()
