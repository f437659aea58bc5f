"""Exit statuses: one table (``ExitStatus``) rendered by --help and the text report, and
one ladder (``command.boundary.exit_status_for``) from every exception class to a status."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from idle_cull import errors
from idle_cull.command.boundary import exit_status_for
from idle_cull.command.cli import cli
from idle_cull.exits import ExitStatus
from idle_cull.output.render import render_text
from idle_cull.output.report import Report

EXPECTED_STATUS = {
    errors.IdleCullError: ExitStatus.ACTION_FAILED,
    errors.ConfigError: ExitStatus.USAGE,
    errors.MetricsUnavailable: ExitStatus.USAGE,
    errors.HubError: ExitStatus.HUB_UNUSABLE,
    errors.HubAuthError: ExitStatus.HUB_UNUSABLE,
    errors.HubUnavailable: ExitStatus.HUB_UNUSABLE,
    errors.HubProtocolError: ExitStatus.HUB_UNUSABLE,
    errors.TokenLifetimeTooLong: ExitStatus.HUB_UNUSABLE,  # in practice: one failed probe
    errors.RoutesUnavailable: ExitStatus.HUB_UNUSABLE,  # --probe-via=route-target, at start
    errors.PassInterrupted: ExitStatus.ACTION_FAILED,
    errors.LockHeld: ExitStatus.LOCKED,
    errors.ClocksDisagree: ExitStatus.CLOCKS_DISAGREE,
    errors.OutputError: ExitStatus.OUTPUT_FAILED,
    errors.PushgatewayError: ExitStatus.OUTPUT_FAILED,
}


def test_every_exception_class_is_placed_in_the_ladder() -> None:
    """A new exception class must be given its status here (and so, thought about)."""
    assert {getattr(errors, name) for name in errors.__all__} == set(EXPECTED_STATUS)


@pytest.mark.parametrize(
    ("kind", "status"), list(EXPECTED_STATUS.items()), ids=lambda v: getattr(v, "__name__", str(v))
)
def test_exception_maps_to_its_status(kind: type[errors.IdleCullError], status: ExitStatus) -> None:
    assert exit_status_for(kind("boom")) is status


def test_every_status_has_a_distinct_one_line_meaning() -> None:
    meanings = [status.meaning for status in ExitStatus]
    assert all(meanings)
    assert len(set(meanings)) == len(meanings)
    assert not any("\n" in meaning for meaning in meanings)


def test_help_lists_every_status_with_its_meaning() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = [
        line.split(None, 1) for line in result.output.split("Exit status:\n", 1)[1].splitlines()
    ]
    for status in ExitStatus:
        assert [str(int(status)), status.meaning] in listed, status.name


@pytest.mark.parametrize("status", list(ExitStatus), ids=lambda s: s.name)
def test_text_report_ends_with_the_meaning_of_its_status(status: ExitStatus) -> None:
    started = datetime(2026, 1, 1, tzinfo=timezone.utc)
    report = Report(hub_url="http://hub.test:8081/hub/api", started_at=started, finished_at=started)
    assert render_text(report, status).endswith(f"exit status {int(status)}: {status.meaning}\n")
