"""Start-up: ``idle-cull --help`` and a pass against an empty hub, against ``python -c pass``.

``python -m tests.benchmarks.startup [--repeats 15]``

Each command runs ``--repeats`` times (after one warm-up run); the table gives the median
and the best wall time, and the peak RSS. It is measured in two environments when both
exist: the development venv (``.venv``, where jupyterhub also installed tornado, which
tenacity then imports) and ``.venv-bench/clean`` (idle-cull's dependencies only, as an
operator installs it; ``./scripts/bench`` creates it), both running this checkout's code.
The "empty hub" is the fake hub with no users, so the figure is idle-cull's own cost.

The second table lists the heaviest modules on the import path of ``idle_cull.command.cli``
(``python -X importtime``, cumulative ms): what to keep off the start-up path.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.common import (
    CLEAN_VENV,
    REPO_ROOT,
    markdown_table,
    median,
    python_env,
    run_measured,
)
from tests.benchmarks.hub_server import fake_hub

HEADERS = ["environment", "command", "median ms", "best ms", "peak RSS MB"]
IMPORT_HEADERS = ["module (imported by idle_cull.command.cli)", "cumulative ms"]
WATCHED_MODULES = (
    "idle_cull.command.cli",
    "click",
    "requests",
    "urllib3",
    "tenacity",
    "tornado",
    "dateutil.parser",
    "concurrent.futures.thread",
    "idle_cull.hub.client",
    "idle_cull.command.settings",
    "idle_cull.models",
    "idle_cull.rules.policy",
    "idle_cull.runner",
)


@dataclass(frozen=True)
class StartupRow:
    environment: str
    command: str
    seconds: list[float]
    peak_rss_mb: float

    def cells(self) -> list[object]:
        return [
            self.environment,
            self.command,
            median(self.seconds) * 1000,
            min(self.seconds) * 1000,
            self.peak_rss_mb,
        ]


def environments() -> list[tuple[str, Path]]:
    found = [("dev .venv", Path(sys.executable))]
    clean = CLEAN_VENV / "bin" / "python"
    if clean.exists():
        found.append(("clean (deps only)", clean))
    return found


def _timed(command: list[str], repeats: int, env: dict[str, str]) -> tuple[list[float], float]:
    seconds = []
    peak = 0.0
    for attempt in range(repeats + 1):
        measured = run_measured(command, timeout=60, env=env)
        if measured.returncode != 0:
            raise RuntimeError(f"{command} exited {measured.returncode}: {measured.stderr_tail()}")
        measured.stderr_path.unlink(missing_ok=True)
        if attempt:  # the first run warms the page cache and .pyc files
            seconds.append(measured.wall_seconds)
            peak = max(peak, measured.peak_rss_mb)
    return seconds, peak


def measure(repeats: int = 15) -> list[StartupRow]:
    rows = []
    with fake_hub(0) as hub:
        for label, python in environments():
            env = python_env(JUPYTERHUB_API_TOKEN=hub.token)
            commands = {
                "python -c pass": [str(python), "-c", "pass"],
                "idle-cull --help": [str(python), "-m", "idle_cull", "--help"],
                "idle-cull (pass, empty hub)": [
                    str(python),
                    "-m",
                    "idle_cull",
                    f"--url={hub.url}",
                    "--log-level=warning",
                ],
            }
            for name, command in commands.items():
                seconds, peak = _timed(command, repeats, env)
                rows.append(StartupRow(label, name, seconds, peak))
    return rows


def heavy_imports(python: Path | None = None) -> list[tuple[str, float]]:
    """Cumulative import time of the watched modules when importing ``idle_cull.command.cli``."""
    answer = subprocess.run(
        [str(python or sys.executable), "-X", "importtime", "-c", "import idle_cull.command.cli"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=REPO_ROOT,
        env=python_env(),
    )
    cumulative: dict[str, float] = {}
    for line in answer.stderr.splitlines():
        match = re.match(r"import time:\s+\d+\s+\|\s+(\d+)\s+\|\s?( *)(\S+)", line)
        if match:
            cumulative.setdefault(match.group(3), int(match.group(1)) / 1000)
    return [(m, cumulative[m]) for m in WATCHED_MODULES if m in cumulative]


def render(rows: Sequence[StartupRow], imports: Sequence[tuple[str, float]] = ()) -> str:
    text = markdown_table(HEADERS, [row.cells() for row in rows])
    if imports:
        text += "\n\n" + markdown_table(IMPORT_HEADERS, [list(pair) for pair in imports])
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.startup", description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    clean = [p for label, p in environments() if label.startswith("clean")]
    print(render(measure(args.repeats), heavy_imports(clean[0] if clean else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
