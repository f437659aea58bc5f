"""Run every benchmark and print one markdown report: ``python -m tests.benchmarks``.

``./scripts/bench`` is the documented entry point: it makes the bench venvs first.
Sections: ``startup`` (4), ``memory`` (3), ``hubscale`` (1, with the listing benchmark,
2, on the largest hub), ``hubimpact`` (5: what a pass does to the hub's latency for
others). ``--quick`` runs tiny sizes, to check the machinery in minutes.
The last table checks the issue's targets; they are reported, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.benchmarks import hubimpact, hubscale, listing, memory, startup
from tests.benchmarks.common import (
    load_average,
    machine_info,
    markdown_table,
    median,
    render_machine,
)
from tests.benchmarks.scene import Case

SECTIONS = ("startup", "memory", "hubscale", "hubimpact")
QUICK_CASES = ("40x20x0", "40x20x0.2")
# Above this many servers only raw, idle-cull and upstream run, once: every pass needs the
# servers started again, and at 2000 servers that takes minutes. Up to it, every contender
# runs REPEATS times (the table shows medians), but upstream only once when stops are slow
# (its passes then take minutes: D x M).
ALL_CONTENDERS_UP_TO = 1000
REPEATS = 3
TARGET_HEADERS = ["target", "measured", "met"]


@dataclass
class Report:
    machine: dict[str, str]
    startup_rows: list[startup.StartupRow] = field(default_factory=list)
    imports: list[tuple[str, float]] = field(default_factory=list)
    memory_rows: list[memory.MemoryRow] = field(default_factory=list)
    cases: list[hubscale.CaseResult] = field(default_factory=list)
    elapsed: float = 0.0
    load_at_end: str = ""
    fake_listing_rows: list[listing.ListingRow] = field(default_factory=list)
    impact: list[hubimpact.ScenarioResult] = field(default_factory=list)

    def markdown(self) -> str:
        parts = ["## Machine", render_machine(self.machine)]
        if self.cases:
            parts += ["## 1. End to end on a real hub", hubscale.render(self.cases)]
            listing_rows = [row for case in self.cases for row in case.listing_rows]
            listing_rows += self.fake_listing_rows
            if listing_rows:
                parts += ["## 2. Listing at scale", listing.render(listing_rows)]
        if self.memory_rows:
            parts += ["## 3. Memory and CPU", memory.render(self.memory_rows)]
        if self.startup_rows:
            parts += ["## 4. Start-up", startup.render(self.startup_rows, self.imports)]
        if self.impact:
            parts += ["## 5. What a pass does to the hub's latency", hubimpact.render(self.impact)]
        targets = self.targets()
        if targets:
            parts += ["## Targets", markdown_table(TARGET_HEADERS, targets)]
        parts.append(
            f"(all sections took {self.elapsed / 60:.1f} min; load average at the end: "
            f"{self.load_at_end})"
        )
        return "\n\n".join(parts) + "\n"

    def targets(self) -> list[list[object]]:
        rows: list[list[object]] = []
        for case in self.cases:
            shipped = case.rows()[0]
            ours_raw = shipped[5]
            rows.append(
                [
                    f"idle-cull/raw <= 1.15 ({case.case.label})",
                    _fmt(ours_raw),
                    _met(ours_raw, 1.15, below=True),
                ]
            )
            if case.case.stop_delay >= 0.5 and case.concurrency == 10:
                upstream_ours = shipped[6]
                rows.append(
                    [
                        f"upstream/idle-cull >= 5 ({case.case.label}, concurrency 10)",
                        _fmt(upstream_ours),
                        _met(upstream_ours, 5, below=False),
                    ]
                )
        big = [
            r for r in self.memory_rows if not r.scenario.upstream and r.scenario.users >= 100_000
        ]
        for big_row in big:
            # --report-kept is an opt-in that holds every kept server and user for the
            # report: its cost is shown, but the target is about the pass as shipped.
            opt_in = big_row.scenario.report_kept
            rows.append(
                [
                    f"peak RSS < 80 MB ({big_row.scenario.users} users, {big_row.scenario.label})",
                    f"{big_row.peak_rss_mb:.0f} MB",
                    "n/a (opt-in)" if opt_in else _met(big_row.peak_rss_mb, 80, below=True),
                ]
            )
        for start_row in self.startup_rows:
            if start_row.command == "idle-cull --help":
                best = min(start_row.seconds) * 1000
                typical = median(start_row.seconds) * 1000
                rows.append(
                    [
                        f"--help < 250 ms ({start_row.environment})",
                        f"{typical:.0f} ms median, {best:.0f} ms best",
                        _met(typical, 250, below=True),
                    ]
                )
        rows += [row for result in self.impact for row in result.targets()]
        return rows


def _fmt(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else "n/a"


def _met(value: object, limit: float, *, below: bool) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    return "yes" if (value <= limit if below else value >= limit) else "NO"


def contenders_for(case: Case, everything: bool) -> Sequence[str]:
    if everything or case.servers <= ALL_CONTENDERS_UP_TO:
        return hubscale.CONTENDERS
    return hubscale.MAIN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (minutes)")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="repeatable")
    parser.add_argument(
        "--case",
        action="append",
        type=Case.parse,
        help="USERSxSERVERSxSTOP_SECONDS, repeatable "
        f"(default: {' '.join(hubscale.DEFAULT_CASES)})",
    )
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--all-contenders", action="store_true", help="on large hubs too")
    parser.add_argument(
        "--contender",
        action="append",
        choices=hubscale.CONTENDERS,
        help="run only these (repeatable; default: all, or the main three on large hubs)",
    )
    parser.add_argument("--listing-repeats", type=int, default=3)
    parser.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help="passes per contender on hubs up to 1000 servers",
    )
    parser.add_argument("--memory-users", type=int, default=100_000)
    parser.add_argument("--startup-repeats", type=int, default=15)
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--log-dir", type=Path, help="contenders' logs (default: a temp dir)")
    hubimpact.add_arguments(parser)
    args = parser.parse_args(argv)
    sections = args.only or SECTIONS
    if args.quick:
        cases = args.case or [Case.parse(c) for c in QUICK_CASES]
        memory_users, startup_repeats, listing_repeats, repeats = 2000, 3, 1, 1
    else:
        cases = args.case or [Case.parse(c) for c in hubscale.DEFAULT_CASES]
        memory_users = args.memory_users
        startup_repeats, listing_repeats = args.startup_repeats, args.listing_repeats
        repeats = args.repeats
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="idle-cull-bench-logs-"))
    started = time.perf_counter()
    report = Report(machine_info())
    if "startup" in sections:
        print("# start-up", file=sys.stderr, flush=True)
        report.startup_rows = startup.measure(startup_repeats)
        clean = [p for label, p in startup.environments() if label.startswith("clean")]
        report.imports = startup.heavy_imports(clean[0] if clean else None)
    if "memory" in sections:
        report.memory_rows = memory.run(
            memory.default_scenarios(memory_users),
            concurrency=args.concurrency,
        )
    if "hubscale" in sections:
        if listing_repeats:
            print("# listing against the fake hub", file=sys.stderr, flush=True)
            report.fake_listing_rows = listing.measure_fake(
                memory_users, concurrency=args.concurrency, repeats=listing_repeats
            )
        print(f"# contenders' logs in {log_dir}", file=sys.stderr, flush=True)
        largest = max(cases, key=lambda c: (c.users, c.servers))
        for case in cases:
            report.cases.append(
                hubscale.run_case(
                    case,
                    concurrency=args.concurrency,
                    contenders=args.contender or contenders_for(case, args.all_contenders),
                    listing_repeats=listing_repeats if case is largest else 0,
                    log_dir=log_dir,
                    repeats=repeats if case.servers <= ALL_CONTENDERS_UP_TO else 1,
                    upstream_repeats=1 if case.stop_delay else None,
                )
            )
    if "hubimpact" in sections:
        print("# hub impact", file=sys.stderr, flush=True)
        report.impact = hubimpact.run_from_arguments(
            args, quick=args.quick, repeats=repeats, log_dir=log_dir
        )
    report.elapsed = time.perf_counter() - started
    report.load_at_end = load_average()
    text = report.markdown()
    sys.stdout.write(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
