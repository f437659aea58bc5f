"""Shared pieces of the benchmarks: measured subprocesses, tables, the machine, the venvs.

Every contender runs in a subprocess of its own, so its memory, CPU and imports are its
own and a crash or hang cannot take the benchmark with it: ``run_measured`` bounds it
with a deadline and reads its resource usage with ``os.wait4``.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_VENV = REPO_ROOT / ".venv-bench"  # made by ./scripts/bench; never the project's .venv
UPSTREAM_VENV = BENCH_VENV / "upstream"  # jupyterhub-idle-culler and its dependencies
CLEAN_VENV = BENCH_VENV / "clean"  # idle-cull's runtime dependencies only (start-up figures)
UPSTREAM_PACKAGE = "jupyterhub-idle-culler"
UPSTREAM_PYTHON_VAR = "IDLE_CULL_BENCH_PYTHON"  # override the bench venv's interpreter


class BenchmarkError(RuntimeError):
    """A benchmark could not produce a valid figure (a contender failed or hung)."""


@dataclass(frozen=True)
class Measured:
    """One finished subprocess: exit code, output, wall time and its own resource usage."""

    returncode: int
    stdout: str
    stderr_path: Path
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float

    def json(self) -> dict[str, Any]:
        """The last stdout line as JSON (contenders print their figures there)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if not lines:
            raise BenchmarkError(f"no output; stderr tail:\n{self.stderr_tail()}")
        try:
            value = json.loads(lines[-1])
        except ValueError:
            raise BenchmarkError(
                f"output is not JSON: {lines[-1][:200]!r}; stderr tail:\n{self.stderr_tail()}"
            ) from None
        if not isinstance(value, dict):
            raise BenchmarkError(f"output is not a JSON object: {lines[-1][:200]!r}")
        return value

    def stderr_tail(self, lines: int = 15) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError as error:
            return f"(no stderr: {error})"
        return "\n".join(text.splitlines()[-lines:])


# Runs the command as a grandchild of a fresh small interpreter and reports its rusage.
# Linux keeps a process's peak RSS across exec (the kernel records the old address space's
# high-water mark), so a command forked straight from this (large) benchmark process would
# report at least our RSS; forked from this launcher, it reports its own.
_LAUNCHER = """
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(report, "w") as out:
    json.dump({"status": os.waitstatus_to_exitcode(status), "wall": wall,
               "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss}, out)
"""


def run_measured(
    command: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    stderr_path: Path | None = None,
    cwd: Path = REPO_ROOT,
) -> Measured:
    """Run ``command`` to completion (killed after ``timeout`` s) and measure it.

    Wall time, CPU seconds (user + system) and peak RSS are those of the command's own
    process (``os.wait4`` in a small launcher, see ``_LAUNCHER``), so they include its
    interpreter start-up and imports but nothing of the benchmark or of other processes.
    stdout goes to a temp file and stderr to ``stderr_path`` (a temp file if not given),
    so a chatty command cannot block on a pipe.
    """
    if stderr_path is None:
        handle, name = tempfile.mkstemp(prefix="bench-stderr-", suffix=".log")
        os.close(handle)
        stderr_path = Path(name)
    handle, name = tempfile.mkstemp(prefix="bench-rusage-", suffix=".json")
    os.close(handle)
    report = Path(name)
    launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(report), *command]
    try:
        with tempfile.TemporaryFile(mode="w+b") as out, open(stderr_path, "wb") as err:
            process = subprocess.Popen(
                launcher,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: killed as a whole
            )
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise BenchmarkError(
                    f"{' '.join(command[:4])}... did not finish within {timeout:.0f} s "
                    f"(killed); stderr: {stderr_path}"
                ) from None
            out.seek(0)
            stdout = out.read().decode(errors="replace")
        try:
            figures = json.loads(report.read_text())
        except (OSError, ValueError):
            raise BenchmarkError(
                f"the launcher of {command[0]} failed ({process.returncode}); stderr: {stderr_path}"
            ) from None
    finally:
        report.unlink(missing_ok=True)
    return Measured(
        returncode=int(figures["status"]),
        stdout=stdout,
        stderr_path=stderr_path,
        wall_seconds=float(figures["wall"]),
        cpu_seconds=float(figures["cpu"]),
        peak_rss_mb=float(figures["maxrss_kib"]) / 1024,  # KiB on Linux
    )


# --- the upstream culler's venv -----------------------------------------------------------


def upstream_python() -> Path | None:
    """The interpreter of the venv holding ``jupyterhub-idle-culler``, if there is one."""
    explicit = os.environ.get(UPSTREAM_PYTHON_VAR)
    candidate = Path(explicit) if explicit else UPSTREAM_VENV / "bin" / "python"
    return candidate if candidate.exists() else None


def upstream_version(python: Path | None = None) -> str | None:
    python = python or upstream_python()
    if python is None:
        return None
    answer = subprocess.run(
        [
            str(python),
            "-c",
            f"from importlib import metadata; print(metadata.version({UPSTREAM_PACKAGE!r}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return answer.stdout.strip() if answer.returncode == 0 else None


# --- presentation ---------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; numbers are right-aligned."""
    cells = [[str(c) for c in headers]] + [[format_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        bool(rows) and all(isinstance(row[i], (int, float)) or row[i] is None for row in rows)
        for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if is_num else cell.ljust(width)
            for cell, width, is_num in zip(row, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if is_num else "-" * (w + 2)
            for w, is_num in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def format_cell(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return numerator / denominator


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine_info() -> dict[str, str]:
    """What the figures were measured on: cores, CPU, memory, OS, interpreter, versions."""
    info = {
        "cores (nproc)": str(len(os.sched_getaffinity(0))),
        "cpu": _cpu_model(),
        "memory": _mem_total(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    for package in ("jupyterhub", "requests", "urllib3"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    info[UPSTREAM_PACKAGE] = upstream_version() or "not installed (run ./scripts/bench)"
    info["load average at start"] = load_average()
    return info


def load_average() -> str:
    """1, 5 and 15 min load: other work on the machine skews every figure."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def render_machine(info: Mapping[str, str]) -> str:
    return markdown_table(["machine", "value"], [[k, v] for k, v in info.items()])


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a contender: ours, the repo on ``PYTHONPATH``, no user site."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


def this_python() -> str:
    return sys.executable
