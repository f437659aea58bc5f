"""The benchmark machinery of ``tests/benchmarks`` at tiny sizes: it runs and its figures are sane.

Nothing here asserts speed: the figures depend on the machine. The real benchmarks are
run with ``./scripts/bench`` (see ``tests/benchmarks/README.md``), not by pytest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.benchmarks import __main__ as bench_main
from tests.benchmarks import hubimpact, hubscale, listing, memory, pagecost, startup
from tests.benchmarks.common import (
    markdown_table,
    python_env,
    ratio,
    run_measured,
    upstream_python,
)
from tests.benchmarks.contenders import run_raw
from tests.benchmarks.hub_server import fake_hub
from tests.benchmarks.scene import Case


def test_case_parsing_and_labels() -> None:
    case = Case.parse("1000x500x0.5")
    assert (case.users, case.servers, case.stop_delay) == (1000, 500, 0.5)
    assert case.label == "N=1000 M=500 D=0.5s"
    with pytest.raises(ValueError, match="USERSxSERVERSxSTOP_SECONDS"):
        Case.parse("1000x500")
    with pytest.raises(ValueError, match="servers must be between"):
        Case(10, 11, 0)


def test_markdown_table_aligns_numbers_and_marks_missing_figures() -> None:
    table = markdown_table(["name", "seconds"], [["a", 1.234], ["b", None], ["c", 123.4]])
    lines = table.splitlines()
    assert lines[0] == "| name | seconds |"
    assert lines[1] == "|------|--------:|"
    assert lines[2:] == ["| a    |    1.23 |", "| b    |     n/a |", "| c    |     123 |"]
    assert ratio(2.0, 1.0) == 2.0
    assert ratio(None, 1.0) is None


def test_run_measured_reports_the_commands_own_usage(tmp_path: Path) -> None:
    measured = run_measured(
        [sys.executable, "-c", "print('{\"seconds\": 1.5}'); x = bytearray(64 << 20)"],
        timeout=60,
        env=python_env(),
        stderr_path=tmp_path / "err.log",
    )
    assert measured.returncode == 0
    assert measured.json() == {"seconds": 1.5}
    # its own peak (the 64 MiB buffer), not this much larger pytest process's
    assert 64 < measured.peak_rss_mb < 200
    assert measured.cpu_seconds > 0
    assert measured.wall_seconds > 0


def test_raw_client_against_the_fake_hub_stops_every_listed_server() -> None:
    for strategy in ("sequential", "concurrent"):
        with fake_hub(44, running=0.5) as hub:
            result = run_raw(
                hub.url, hub.token, concurrency=4, page_size=5, listing=strategy, recheck=True
            )
        assert result["listed_users"] == 22
        assert result["pages"] == 5
        assert result["stops"] == 22
        assert result["statuses"] == {"204": 22}


def test_memory_pass_over_a_small_fake_hub_produces_sane_figures() -> None:
    rows = memory.run([memory.Scenario(400, 0.1, True)], concurrency=4, progress=False)
    (row,) = rows
    assert row.listed == 400
    # 10% idle: 20 of the 200 running servers stopped, then their users and 20 more deleted
    assert row.actions == 20 + 40
    assert row.cpu > 0
    assert 5 < row.peak_rss_mb < 500
    table = memory.render(rows)
    assert "| idle-cull |" in table
    assert "10% idle, --cull-users" in table


def test_listing_needs_at_least_one_repeat() -> None:
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        listing.measure_listing("http://127.0.0.1:9/hub/api", "token", hub_label="x", repeats=0)


def test_startup_timing_and_import_table() -> None:
    seconds, peak = startup._timed([sys.executable, "-c", "pass"], 2, python_env())
    assert len(seconds) == 2
    assert all(s > 0 for s in seconds)
    assert peak > 1
    imports = dict(startup.heavy_imports())
    assert imports["idle_cull.command.cli"] > 0
    assert "click" in imports


def test_report_renders_every_section_and_checks_the_targets() -> None:
    shape = hubscale.IdleCullShape("sequential", recheck_option=True, recheck_default=True)
    case = hubscale.CaseResult(Case(10, 5, 0.5), concurrency=10, shape=shape)
    for name, seconds in [
        ("raw", 1.0),
        ("idle-cull", 1.1),
        ("upstream", 6.0),
        ("raw-bare", 0.9),
        ("idle-cull-no-recheck", 1.0),
    ]:
        case.add(hubscale.PassResult(name, seconds))
    case.add(hubscale.PassResult("raw", 3.0))  # median of 1.0, 3.0, 1.2 is 1.2
    case.add(hubscale.PassResult("raw", 1.2))
    case.add(hubscale.PassResult("raw", 0.1, left_running=2))  # invalid: not counted
    report = bench_main.Report({"cores (nproc)": "2"}, cases=[case])
    report.memory_rows = [
        memory.MemoryRow(memory.Scenario(100_000, 0.0, True), 100_000, 0, 20.0, 19.0, 90.0)
    ]
    report.startup_rows = [
        startup.StartupRow("dev .venv", "idle-cull --help", [0.2, 0.3, 0.25], 30.0)
    ]
    text = report.markdown()
    for heading in (
        "## Machine",
        "## 1. End to end",
        "## 3. Memory",
        "## 4. Start-up",
        "## Targets",
    ):
        assert heading in text
    assert "| N=10 M=5 D=0.5s | as shipped (sequential listing + re-check) |" in text
    assert "| N=10 M=5 D=0.5s | --recheck=false" in text
    assert case.seconds("raw") == 1.2
    assert "every run (s): raw 1.0, 3.0, 1.2; idle-cull 1.1;" in text
    assert "raw left 2 servers running" in text
    targets = {row[0]: row[2] for row in report.targets()}
    assert targets["idle-cull/raw <= 1.15 (N=10 M=5 D=0.5s)"] == "yes"  # 1.1 / 1.2
    assert targets["upstream/idle-cull >= 5 (N=10 M=5 D=0.5s, concurrency 10)"] == "yes"  # 5.45
    assert targets["peak RSS < 80 MB (100000 users, nothing idle, --cull-users)"] == "NO"
    assert targets["--help < 250 ms (dev .venv)"] == "yes"  # median 250 ms


@pytest.mark.integration
def test_end_to_end_case_on_a_tiny_real_hub(tmp_path: Path) -> None:
    result = hubscale.run_case(
        Case(8, 4, 0),
        concurrency=3,
        contenders=hubscale.MAIN,
        listing_repeats=1,
        log_dir=tmp_path,
        progress=False,
    )
    for name in ("raw", "idle-cull"):
        (outcome,) = result.passes[name]
        assert outcome.note == ""
        assert outcome.left_running == 0
        assert outcome.seconds is not None
        assert outcome.seconds > 0
    (upstream,) = result.passes["upstream"]
    if upstream_python() is None:
        assert "cannot run here" in upstream.note
    else:
        assert upstream.note == ""
        assert upstream.left_running == 0
    (row,) = result.rows()
    assert row[0] == "N=8 M=4 D=0s"
    assert isinstance(row[5], float)  # idle-cull/raw
    listed = {(r.state, r.page_size): r.users for r in result.listing_rows}
    assert listed == {
        ("ready", 50): 4,
        ("ready", 200): 4,
        ("inactive", 50): 4,
        ("inactive", 200): 4,
    }
    assert "| N=8 M=4 D=0s |" in hubscale.render([result])


def test_probe_statistics_are_observed_values_and_cpu_is_interpolated() -> None:
    assert hubimpact.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert hubimpact.percentile([float(i) for i in range(1, 201)], 0.99) == 198.0
    assert hubimpact.percentile([7.0], 0.99) == 7.0
    samples = [
        hubimpact.Sample(10.0, 0.002, 1.0),
        hubimpact.Sample(11.0, None, 1.5),
        hubimpact.Sample(12.0, 0.300, 3.0),
    ]
    assert hubimpact.cpu_at(samples, 11.5) == 2.25
    assert hubimpact.cpu_at(samples, 9.0) == 1.0
    window = hubimpact.Window.of(samples, 10.5, 12.0)
    assert window.latencies_ms == (300.0,)
    assert window.failed == 1
    assert window.hub_cpu == 3.0 - 1.25
    assert hubimpact.process_cpu_seconds(os.getpid()) > 0


def test_hub_impact_tables_show_medians_and_check_the_issue_targets() -> None:
    scenario = hubimpact.Scenario("slow", Case(10, 10, 0.5), idle=True)
    result = hubimpact.ScenarioResult(scenario)
    quiet = hubimpact.Window((2.0, 3.0), 0, 2.0, 0.2)  # the probe costs 0.1 CPU s per s

    def during(p99: float, cpu: float) -> hubimpact.Window:
        return hubimpact.Window(tuple([1.0] * 98 + [p99, p99]), 0, 1.0, cpu)

    result.add(hubimpact.Impact("idle-cull", 1.0, quiet, during(40.0, 0.5)))
    result.add(hubimpact.Impact("idle-cull", 1.2, quiet, during(60.0, 0.7)))
    result.add(hubimpact.Impact("idle-cull", 1.1, quiet, during(45.0, 0.6)))
    result.add(hubimpact.Impact("idle-cull", 0.1, quiet, during(900.0, 0.1), note="exit 1"))
    result.add(hubimpact.Impact("upstream", 6.0, quiet, during(20.0, 0.9)))
    (ours, theirs) = result.rows()
    assert ours[:4] == [scenario.label, "idle-cull", 1.1, 0.5]  # medians, CPU net of 0.1
    assert ours[5] == 45.0
    assert ours[-1] == 3
    assert theirs[1] == "upstream"
    targets = {row[0]: row[2] for row in result.targets()}
    assert targets == {
        f"probe p99 <= max(upstream's, 50 ms) ({scenario.label})": "yes",
        f"hub CPU <= upstream's ({scenario.label})": "yes",
        f"upstream/idle-cull >= 5 ({scenario.label})": "yes",
    }
    assert "idle-cull: exit 1" in hubimpact.render([result])
    report = bench_main.Report({"cores (nproc)": "2"}, impact=[result])
    assert "## 5. What a pass does to the hub's latency" in report.markdown()


@pytest.mark.integration
def test_hub_impact_on_a_tiny_real_hub(tmp_path: Path) -> None:
    contenders = hubimpact.contenders_for(["idle-cull", "raw"], 3, [1])
    run = hubimpact.Run(concurrency=3, log_dir=tmp_path)
    for scenario in (
        hubimpact.Scenario("instant", Case(6, 6, 0), idle=True),
        hubimpact.Scenario("list", Case(6, 6, 0), idle=False),
    ):
        result = hubimpact.run_scenario(scenario, contenders, run, repeats=1, progress=False)
        for name in ("idle-cull", "raw", "raw x1"):
            (impact,) = result.passes[name]
            assert impact.note == "", impact.note
            assert impact.seconds is not None
            assert impact.seconds > 0
            assert impact.quiet is not None
            assert len(impact.quiet.latencies_ms) > 10
            assert impact.net_hub_cpu is not None
            assert impact.net_hub_cpu >= 0
        assert f"| {scenario.label} |" in hubimpact.render([result])


@pytest.mark.integration
def test_page_cost_on_a_tiny_real_hub() -> None:
    """4 users, 2 running: each query returns the users it should, and costs something."""
    costs = pagecost.measure(Case(4, 2, 0), [2], repeats=1)
    items = {(cost.state, cost.where): cost.items for cost in costs}
    assert items == {
        ("ready", "start"): 2,
        ("ready", "middle"): 1,  # offset 1 of the 2 running
        (None, "start"): 2,
        (None, "middle"): 2,
        ("inactive", "start"): 2,
        ("inactive", "middle"): 1,
    }
    assert all(cost.wall_ms > 0 and cost.hub_cpu_ms >= 0 for cost in costs)
