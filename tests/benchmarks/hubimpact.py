"""Hub impact: how much one pass slows JupyterHub down for everyone else (issue 16).

``python -m tests.benchmarks.hubimpact [--quick] [--scenario list] [--repeats 3]``

JupyterHub serves its whole API on one event loop, so what a culler costs its users is
the time *other* requests wait while it runs. For each scenario one real hub is started
(``tests.benchmarks.scene``); then, for each contender in turn (the order rotates with
every repeat), the scene is set up again, a probe thread starts sending
``GET /hub/api/`` (unauthenticated, no database: pure event-loop availability) every
20 ms on a connection of its own, and reads the hub process's CPU time from
``/proc/<pid>/stat`` before each probe. The probe runs through a quiet window (which is
also the wait that makes the servers idle) and then through the contender's pass.

Per pass: the pass's seconds (timed inside the contender, after its imports), the hub's
CPU seconds during the pass net of what the probe itself costs (its rate in the quiet
window, times the pass's seconds), and the probe's p50 / p99 / max latency during the
pass and its p99 in the quiet window. The table shows medians over the repeats. A probe
that waits longer than 20 ms delays the next one (one thread, ticks missed meanwhile are
skipped), as a user's browser would.

Contenders: ``idle-cull`` as in this checkout, ``upstream`` (``jupyterhub-idle-culler``
in ``.venv-bench/upstream``), ``raw`` (``tests.benchmarks.contenders raw``: sequential
listing, no re-check, ``--concurrency`` stops in flight, no logic), ``raw xN`` for the
trade-off curve (``--curve 1,2,4``), and ``before`` (idle-cull from ``--baseline DIR``,
a directory holding an older ``idle_cull`` package, e.g. from ``git archive``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.benchmarks.common import (
    REPO_ROOT,
    BenchmarkError,
    markdown_table,
    median,
    python_env,
    ratio,
    run_measured,
    this_python,
    upstream_python,
)
from tests.benchmarks.scene import Case, Scene, running_scene

PROBE_INTERVAL = 0.02
PROBE_TIMEOUT = 30.0
QUIET_SECONDS = 2.5  # also makes the servers idle: > --timeout, the Date header has 1 s steps
IDLE_TIMEOUT = 1.0  # --timeout when the servers are to be culled
NEVER_IDLE = 10**7  # --timeout (s) when nothing is to be culled: a listing-only pass
LATENCY_TARGET_MS = 50.0  # the floor for the p99 goal
MAIN_CONTENDERS = ("idle-cull", "upstream", "raw")
HEADERS = [
    "scenario",
    "culler",
    "pass s",
    "hub CPU s",
    "probe p50 ms",
    "probe p99 ms",
    "probe max ms",
    "quiet p99 ms",
    "passes",
]


@dataclass(frozen=True)
class Scenario:
    """One hub shape and what the pass does there: cull every server, or only list."""

    key: str
    case: Case
    idle: bool

    @property
    def label(self) -> str:
        case = self.case
        if not self.idle:
            return f"list only: {case.servers} running, none idle (N={case.users})"
        stops = f"{case.stop_delay:g} s stops" if case.stop_delay else "instant stops"
        return f"cull {case.servers} idle, {stops}"


SCENARIOS = {
    "list": Scenario("list", Case(2000, 2000, 0), idle=False),
    "instant": Scenario("instant", Case(300, 300, 0), idle=True),
    "slow": Scenario("slow", Case(100, 100, 0.5), idle=True),
    "large": Scenario("large", Case(10000, 10000, 0), idle=False),
}
QUICK_SCENARIOS = {
    "list": Scenario("list", Case(60, 60, 0), idle=False),
    "instant": Scenario("instant", Case(20, 20, 0), idle=True),
    "slow": Scenario("slow", Case(8, 8, 0.2), idle=True),
    "large": Scenario("large", Case(150, 150, 0), idle=False),
}


# --- the probe ------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from ``/proc/<pid>/stat``."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    sent: float  # time.monotonic(): machine-wide, so it lines up with a contender's marks
    latency: float | None  # seconds; None if the probe failed
    cpu: float  # the hub's CPU seconds just before the probe was sent


class Probe:
    """A thread sending ``GET {api_url}/`` every ``interval`` s until stopped."""

    def __init__(self, api_url: str, hub_pid: int, interval: float = PROBE_INTERVAL) -> None:
        self.url = f"{api_url}/"
        self.hub_pid = hub_pid
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hub-probe", daemon=True)
        self._session = requests.Session()
        self._session.trust_env = False  # no proxies, no netrc: the hub and nothing else

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT + 5)
        self._session.close()

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            cpu = process_cpu_seconds(self.hub_pid)
            sent = time.monotonic()
            try:
                ok = self._session.get(self.url, timeout=PROBE_TIMEOUT).status_code == 200
            except requests.RequestException:
                ok = False
            latency = time.monotonic() - sent
            self.samples.append(Sample(sent, latency if ok else None, cpu))
            due = max(due + self.interval, time.monotonic())
            self._stop.wait(due - time.monotonic())


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was really observed, never an interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, -(-int(fraction * 1000) * len(ordered) // 1000))  # ceil(fraction * n)
    return ordered[min(rank, len(ordered)) - 1]


def cpu_at(samples: Sequence[Sample], when: float) -> float:
    """The hub's CPU seconds at ``when``, interpolated between the probe's readings."""
    if not samples:
        raise ValueError("no samples")
    before = [s for s in samples if s.sent <= when]
    after = [s for s in samples if s.sent >= when]
    if not before:
        return samples[0].cpu
    if not after:
        return samples[-1].cpu
    low, high = before[-1], after[0]
    if high.sent == low.sent:
        return low.cpu
    share = (when - low.sent) / (high.sent - low.sent)
    return low.cpu + share * (high.cpu - low.cpu)


@dataclass(frozen=True)
class Window:
    """The probe's view of one stretch of time: its latencies and the hub's CPU."""

    latencies_ms: tuple[float, ...]
    failed: int
    seconds: float
    hub_cpu: float

    @classmethod
    def of(cls, samples: Sequence[Sample], start: float, end: float) -> Window:
        inside = [s for s in samples if start <= s.sent <= end]
        return cls(
            tuple(s.latency * 1000 for s in inside if s.latency is not None),
            sum(1 for s in inside if s.latency is None),
            end - start,
            cpu_at(samples, end) - cpu_at(samples, start),
        )

    def p(self, fraction: float) -> float | None:
        return percentile(self.latencies_ms, fraction) if self.latencies_ms else None


# --- contenders and passes ------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    """Who does the pass: ``kind`` is idle-cull, before, upstream or raw."""

    kind: str
    concurrency: int

    @property
    def name(self) -> str:
        return f"raw x{self.concurrency}" if self.kind == "raw-curve" else self.kind


@dataclass(frozen=True)
class Run:
    """What every pass of a run shares."""

    concurrency: int = 10
    page_size: int = 0
    baseline: Path | None = None
    idle_cull_args: tuple[str, ...] = ()
    log_dir: Path = Path(tempfile.gettempdir())


@dataclass(frozen=True)
class Command:
    """How to start one contender's pass."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path = REPO_ROOT


def contender_command(
    contender: Contender, scene: Scene, scenario: Scenario, run: Run
) -> Command | None:
    """The command line and environment of one pass, or ``None`` if it cannot run here.

    ``before`` runs in the baseline directory: ``python -m`` puts the working directory
    first on ``sys.path``, ahead of ``PYTHONPATH``, so from the repository it would
    import this checkout's ``idle_cull`` instead of the baseline's.
    """
    timeout = f"--timeout={IDLE_TIMEOUT:g}" if scenario.idle else f"--timeout={NEVER_IDLE}"
    env = python_env(JUPYTERHUB_API_TOKEN=scene.culler_token)
    page = [f"--page-size={run.page_size}"]
    if contender.kind in ("idle-cull", "before"):
        cwd = REPO_ROOT
        if contender.kind == "before":
            if run.baseline is None:
                return None
            env["PYTHONPATH"] = f"{run.baseline}{os.pathsep}{REPO_ROOT}"
            cwd = run.baseline
        command = [
            *(this_python(), "-m", "tests.benchmarks.contenders", "idle-cull", "--"),
            f"--url={scene.api_url}",
            timeout,
            f"--concurrency={contender.concurrency}",
            f"--api-page-size={run.page_size}",
            "--log-level=info",
            *run.idle_cull_args,
        ]
        return Command(command, env, cwd)
    if contender.kind == "upstream":
        python = upstream_python()
        if python is None:
            return None
        command = [
            *(str(python), "-m", "tests.benchmarks.upstream_pass"),
            f"--url={scene.api_url}",
            timeout,
            f"--concurrency={contender.concurrency}",
            *page,
        ]
        return Command(command, env)
    command = [
        *(this_python(), "-m", "tests.benchmarks.contenders", "raw"),
        f"--url={scene.api_url}",
        f"--concurrency={contender.concurrency}",
        "--listing=sequential",
        *page,
    ]
    if not scenario.idle:
        command.append("--list-only")
    return Command(command, env)


@dataclass
class Impact:
    """One pass: its seconds, the probe's windows, and what went wrong if anything did."""

    contender: str
    seconds: float | None = None
    quiet: Window | None = None
    during: Window | None = None
    note: str = ""

    @property
    def valid(self) -> bool:
        return self.seconds is not None and self.during is not None and not self.note

    @property
    def net_hub_cpu(self) -> float | None:
        """The hub's CPU during the pass, less the probe's own share (its quiet rate)."""
        if self.during is None or self.quiet is None or not self.quiet.seconds:
            return None
        probe_rate = self.quiet.hub_cpu / self.quiet.seconds
        return max(self.during.hub_cpu - probe_rate * self.during.seconds, 0.0)


def measure_pass(
    scene: Scene, scenario: Scenario, contender: Contender, run: Run, turn: int
) -> Impact:
    """Probe a quiet window, then one pass; check that the pass did what it should."""
    planned = contender_command(contender, scene, scenario, run)
    if planned is None:
        return Impact(contender.name, note="cannot run here (upstream: run ./scripts/bench)")
    case = scenario.case
    log = run.log_dir / f"{scenario.key}-{contender.name.replace(' ', '')}-{turn + 1}.log"
    with Probe(scene.api_url, scene.hub.process.pid) as probe:
        quiet_start = time.monotonic()
        time.sleep(QUIET_SECONDS)
        quiet_end = time.monotonic()
        timeout = 120 + case.servers * (case.stop_delay + 0.2) * 1.5
        measured = run_measured(
            planned.argv, timeout=timeout, env=planned.env, stderr_path=log, cwd=planned.cwd
        )
    result = Impact(contender.name, quiet=Window.of(probe.samples, quiet_start, quiet_end))
    if measured.returncode != 0:
        result.note = f"exit {measured.returncode}: {measured.stderr_tail(3)}"
        return result
    figures = measured.json()
    start, end = (float(x) for x in figures["window"])
    result.seconds = float(figures["seconds"])
    result.during = Window.of(probe.samples, start, end)
    if figures.get("exit_status"):
        result.note = f"exit status {figures['exit_status']}"
    if scenario.idle:
        left = scene.wait_all_stopped(timeout=30 + case.stop_delay * 4)
        if left:
            result.note = f"left {left} servers running"
    else:
        running = scene.count("ready")
        if running != case.servers:
            result.note = f"{case.servers - running} servers stopped by a listing-only pass"
    return result


@dataclass
class ScenarioResult:
    scenario: Scenario
    passes: dict[str, list[Impact]] = field(default_factory=dict)
    setup_seconds: float = 0.0

    def add(self, impact: Impact) -> None:
        self.passes.setdefault(impact.contender, []).append(impact)

    def valid(self, contender: str) -> list[Impact]:
        return [p for p in self.passes.get(contender, []) if p.valid]

    def figure(self, contender: str, what: str) -> float | None:
        """The median over valid passes of one figure (see ``_figure``)."""
        values = [v for p in self.valid(contender) if (v := _figure(p, what)) is not None]
        return median(values) if values else None

    def rows(self) -> list[list[object]]:
        return [
            [
                self.scenario.label,
                name,
                self.figure(name, "seconds"),
                self.figure(name, "cpu"),
                self.figure(name, "p50"),
                self.figure(name, "p99"),
                self.figure(name, "max"),
                self.figure(name, "quiet p99"),
                len(self.valid(name)),
            ]
            for name in self.passes
        ]

    def notes(self) -> list[str]:
        label = self.scenario.label
        lines = []
        for name, impacts in self.passes.items():
            runs = ", ".join(
                f"{p.seconds:.2f} s p99 {_figure(p, 'p99') or 0:.0f} ms"
                for p in impacts
                if p.valid and p.seconds is not None
            )
            if runs:
                lines.append(f"{label}, {name}: {runs}")
            lines += [f"{label}, {name}: {p.note}" for p in impacts if p.note]
        return lines

    def targets(self) -> list[list[object]]:
        """The issue's goals for idle-cull against upstream in this scenario."""
        label = self.scenario.label
        ours_p99, theirs_p99 = self.figure("idle-cull", "p99"), self.figure("upstream", "p99")
        rows: list[list[object]] = []
        if ours_p99 is not None and theirs_p99 is not None:
            limit = max(theirs_p99, LATENCY_TARGET_MS)
            rows.append(
                [
                    f"probe p99 <= max(upstream's, {LATENCY_TARGET_MS:g} ms) ({label})",
                    f"{ours_p99:.0f} ms (limit {limit:.0f})",
                    "yes" if ours_p99 <= limit else "NO",
                ]
            )
        ours_cpu, theirs_cpu = self.figure("idle-cull", "cpu"), self.figure("upstream", "cpu")
        if ours_cpu is not None and theirs_cpu is not None:
            rows.append(
                [
                    f"hub CPU <= upstream's ({label})",
                    f"{ours_cpu:.2f} s against {theirs_cpu:.2f} s",
                    "yes" if ours_cpu <= theirs_cpu else "NO",
                ]
            )
        ours, theirs = self.figure("idle-cull", "seconds"), self.figure("upstream", "seconds")
        if self.scenario.idle and ours and theirs:
            if self.scenario.case.stop_delay >= 0.5:
                speedup = ratio(theirs, ours) or 0.0
                rows.append(
                    [f"upstream/idle-cull >= 5 ({label})", f"{speedup:.1f}x", _yes(speedup >= 5)]
                )
            elif not self.scenario.case.stop_delay:
                rows.append(
                    [
                        f"pass no slower than upstream's ({label})",
                        f"{ours:.2f} s against {theirs:.2f} s",
                        _yes(ours <= theirs),
                    ]
                )
        return rows


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def _figure(impact: Impact, what: str) -> float | None:
    if what == "seconds":
        return impact.seconds
    if what == "cpu":
        return impact.net_hub_cpu
    if what == "quiet p99":
        return impact.quiet.p(0.99) if impact.quiet else None
    if impact.during is None:
        return None
    if what == "max":
        return max(impact.during.latencies_ms, default=None)
    return impact.during.p({"p50": 0.5, "p99": 0.99}[what])


def run_scenario(
    scenario: Scenario,
    contenders: Sequence[Contender],
    run: Run,
    *,
    repeats: int = 3,
    progress: bool = True,
) -> ScenarioResult:
    """One hub; every contender's pass ``repeats`` times, the order rotating each time."""
    result = ScenarioResult(scenario)
    run.log_dir.mkdir(parents=True, exist_ok=True)

    def say(message: str) -> None:
        if progress:
            stamp = time.strftime("%H:%M:%S")
            print(f"# [{stamp}] {scenario.key}: {message}", file=sys.stderr, flush=True)

    with running_scene(scenario.case) as scene:
        say(f"creating {scenario.case.users} users")
        result.setup_seconds += scene.create_users()
        started = False
        for turn in range(repeats):
            shift = turn % len(contenders)
            for contender in [*contenders[shift:], *contenders[:shift]]:
                if scenario.idle or not started:
                    say(f"starting {scenario.case.servers} servers")
                    result.setup_seconds += scene.start_servers()
                    started = True
                say(f"run {turn + 1}/{repeats}: {contender.name}")
                try:
                    impact = measure_pass(scene, scenario, contender, run, turn)
                except BenchmarkError as error:
                    impact = Impact(contender.name, note=str(error))
                result.add(impact)
                p99 = _figure(impact, "p99")
                shown = f"{impact.seconds:.2f} s, p99 {p99:.0f} ms" if p99 is not None else ""
                say(f"{contender.name}: {shown} {impact.note}".strip())
                if impact.note and scenario.idle:
                    scene.stop_all()
                elif impact.note:
                    started = False  # a listing-only pass that stopped servers: start again
    return result


def render(results: Sequence[ScenarioResult]) -> str:
    table = markdown_table(HEADERS, [row for r in results for row in r.rows()])
    notes = [line for r in results for line in r.notes()]
    return table + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "")


def contenders_for(names: Sequence[str], concurrency: int, curve: Sequence[int]) -> list[Contender]:
    chosen = [Contender(name, concurrency) for name in names]
    chosen += [Contender("raw-curve", n) for n in curve]
    return chosen


def parse_curve(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of integers: {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"in-flight counts are at least 1: {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of this section, shared with ``python -m tests.benchmarks``."""
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="repeatable (default: all; --quick: tiny sizes)",
    )
    parser.add_argument(
        "--impact-contender",
        action="append",
        choices=[*MAIN_CONTENDERS, "before"],
        help="repeatable (default: idle-cull, upstream, raw, and before with --baseline)",
    )
    parser.add_argument(
        "--curve", type=parse_curve, default=[], help="raw client at these in-flight counts"
    )
    parser.add_argument("--baseline", type=Path, help="a directory holding an older idle_cull")
    parser.add_argument(
        "--idle-cull-arg", action="append", default=[], help="extra idle-cull option (repeatable)"
    )


def run_from_arguments(
    args: argparse.Namespace, *, quick: bool, repeats: int, log_dir: Path
) -> list[ScenarioResult]:
    table = QUICK_SCENARIOS if quick else SCENARIOS
    keys = args.scenario or list(table)
    names = args.impact_contender or [
        *MAIN_CONTENDERS,
        *(["before"] if args.baseline else []),
    ]
    run = Run(
        concurrency=args.concurrency,
        page_size=getattr(args, "page_size", 0),
        baseline=args.baseline.resolve() if args.baseline else None,
        idle_cull_args=tuple(args.idle_cull_arg),
        log_dir=log_dir,
    )
    contenders = contenders_for(names, args.concurrency, args.curve)
    return [run_scenario(table[key], contenders, run, repeats=repeats) for key in keys]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.hubimpact",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (minutes)")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--page-size", type=int, default=0, help="0: the hub's default (50)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--log-dir", type=Path, help="contenders' logs (default: a temp dir)")
    args = parser.parse_args(argv)
    # SIGTERM (kill, a job control's stop) unwinds like Ctrl-C, so every hub is stopped
    signal.signal(signal.SIGTERM, _interrupt)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="idle-cull-impact-logs-"))
    print(f"# contenders' logs in {log_dir}", file=sys.stderr)
    results = run_from_arguments(
        args, quick=args.quick, repeats=1 if args.quick else args.repeats, log_dir=log_dir
    )
    print(render(results))
    targets = [row for r in results for row in r.targets()]
    if targets:
        print()
        print(markdown_table(["target", "measured", "met"], targets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
