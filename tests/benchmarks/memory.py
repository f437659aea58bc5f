"""Memory and CPU of one pass over a big hub, against the fast fake hub.

``python -m tests.benchmarks.memory [--users 100000]``

Runs ``python -m idle_cull`` (the real command, in a process of its own) against
``tests.benchmarks.hub_server`` with half of the users running a server, and reports the
pass's wall time, CPU seconds (user + system) and peak RSS, from ``os.wait4`` for that
process alone (so interpreter start-up and imports are included; the fake hub is not).

Scenarios: nothing to cull with only ``state=ready`` listed (the default pass), nothing
to cull with ``--cull-users`` (every user listed and judged), the same with
``--report-kept`` (every kept server and user held for the report), and 10% of the users idle
with ``--cull-users`` (a stop per idle running server, then a deletion per idle user).
The 10k row next to the 100k one gives the cost per user. With the bench venv present,
the upstream culler's "nothing to cull" pass is measured the same way for reference.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from tests.benchmarks.common import (
    BenchmarkError,
    markdown_table,
    python_env,
    run_measured,
    this_python,
    upstream_python,
)
from tests.benchmarks.hub_server import fake_hub

# Share of idle users in the acting scenario: every action is two requests (re-check, then
# stop or delete) at about 2 ms of client CPU each on the reference machine, so "all idle"
# at 100k users (150k actions) would take most of an hour without telling more.
WORST_IDLE = 0.1
HEADERS = [
    "culler",
    "users",
    "scenario",
    "listed",
    "stops + deletions",
    "wall s",
    "CPU s",
    "peak RSS MB",
]


@dataclass(frozen=True)
class Scenario:
    users: int
    idle: float  # fraction of users idle
    cull_users: bool
    upstream: bool = False
    report_kept: bool = False  # --report-kept: every kept server and user held for the report

    @property
    def culler(self) -> str:
        if self.upstream:
            return "upstream"
        return "idle-cull"

    @property
    def label(self) -> str:
        what = (
            "all idle"
            if self.idle >= 1
            else "nothing idle"
            if self.idle <= 0
            else f"{self.idle:.0%} idle"
        )
        label = f"{what}, {'--cull-users' if self.cull_users else 'servers only'}"
        return label + (", --report-kept" if self.report_kept else "")


@dataclass(frozen=True)
class MemoryRow:
    scenario: Scenario
    listed: int | None
    actions: int | None
    wall: float
    cpu: float
    peak_rss_mb: float

    def cells(self) -> list[object]:
        return [
            self.scenario.culler,
            self.scenario.users,
            self.scenario.label,
            self.listed,
            self.actions,
            self.wall,
            self.cpu,
            self.peak_rss_mb,
        ]


def default_scenarios(users: int) -> list[Scenario]:
    """The table's rows."""
    small = max(users // 10, 1)
    return [
        Scenario(small, 0.0, True),
        Scenario(users, 0.0, False),
        Scenario(users, 0.0, True),
        Scenario(users, 0.0, True, report_kept=True),
        Scenario(users, WORST_IDLE, True),
        Scenario(users, 0.0, True, upstream=True),
    ]


def measure(
    scenario: Scenario, *, concurrency: int = 10, timeout: float = 1800
) -> MemoryRow | None:
    """One pass against a fresh fake hub; ``None`` if it is the upstream row and it is absent."""
    upstream = upstream_python()
    if scenario.upstream and upstream is None:
        return None
    with fake_hub(scenario.users, running=0.5, idle=scenario.idle) as hub:
        if scenario.upstream:
            assert upstream is not None
            command = [
                str(upstream),
                "-m",
                "tests.benchmarks.upstream_pass",
                f"--url={hub.url}",
                "--timeout=3600",
                f"--concurrency={concurrency}",
                "--page-size=200",
            ]
            if scenario.cull_users:
                command.append("--cull-users")
        else:
            entry = ["idle_cull"]
            command = [
                this_python(),
                "-m",
                *entry,
                f"--url={hub.url}",
                "--timeout=1h",
                f"--concurrency={concurrency}",
                "--api-page-size=200",
                "--log-format=json",
            ]
            if scenario.cull_users:
                command.append("--cull-users")
            if scenario.report_kept:
                command.append("--report-kept")
        measured = run_measured(
            command, timeout=timeout, env=python_env(JUPYTERHUB_API_TOKEN=hub.token)
        )
    if measured.returncode != 0:
        raise BenchmarkError(
            f"{scenario.label}: exit {measured.returncode}; stderr tail:\n{measured.stderr_tail()}"
        )
    listed, actions = _counts(measured.stderr_path.read_text(errors="replace"), scenario.upstream)
    measured.stderr_path.unlink(missing_ok=True)
    return MemoryRow(
        scenario, listed, actions, measured.wall_seconds, measured.cpu_seconds, measured.peak_rss_mb
    )


def _counts(log: str, upstream: bool) -> tuple[int | None, int | None]:
    """Users listed and actions taken, from idle-cull's summary line (or upstream's log)."""
    if upstream:
        culled = log.count("Culling server") + log.count("Culling user")
        return None, culled
    for line in reversed(log.splitlines()):
        text = line
        try:
            record = json.loads(line)
            text = str(record.get("message", line)) if isinstance(record, dict) else line
        except ValueError:
            pass
        if "summary:" not in text:
            continue
        fields = dict(re.findall(r"(\w+)=(\S+)", text))
        listed = int(fields.get("users_listed", 0))
        actions = sum(int(fields.get(k, 0)) for k in ("server_stopped", "user_deleted"))
        return listed, actions
    return None, None


def run(
    scenarios: Sequence[Scenario], *, concurrency: int = 10, progress: bool = True
) -> list[MemoryRow]:
    rows = []
    for scenario in scenarios:
        if progress:
            print(
                f"# memory: {scenario.users} users, {scenario.label}", file=sys.stderr, flush=True
            )
        row = measure(scenario, concurrency=concurrency)
        if row is not None:
            rows.append(row)
    return rows


def render(rows: Sequence[MemoryRow]) -> str:
    return markdown_table(HEADERS, [row.cells() for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.memory", description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args(argv)
    scenarios = default_scenarios(args.users)
    print(render(run(scenarios, concurrency=args.concurrency)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
