"""End to end on a real hub: idle-cull against the upstream culler and a raw client.

``python -m tests.benchmarks.hubscale --case 1000x500x0 --case 1000x500x0.5``

For each case (N users, M running servers, stops that take D s) one real JupyterHub is
started; then, for each contender in turn, the M servers are (re)started, left idle
for a little more than ``--timeout``, and the contender does one pass, timed inside its
own process after its imports. After every pass the hub must have no active server
left, or the figure is dropped and the reason noted. All contenders use the same
concurrency and page size:

- ``raw``: the hub's own limit, ``tests.benchmarks.contenders raw``: exactly the
  requests idle-cull sends as shipped (its listing strategy, and a ``GET /users/{name}``
  before each stop when idle-cull re-checks by default), with no logic at all.
- ``idle-cull``: one pass through its command line, default options.
- ``upstream``: ``jupyterhub-idle-culler``'s ``cull_idle`` awaited once, in ``.venv-bench``.
- ``raw-bare`` and ``idle-cull-no-recheck``: the same two without the re-check
  (listing and ``DELETE`` only; ``--recheck=false``), when idle-cull has that option.

Each case gives one table row per variant, with the seconds and the ratios idle-cull/raw
and upstream/idle-cull of the same run. With ``--listing-on-largest REPEATS`` the
listing benchmark (``tests.benchmarks.listing``) also runs on the largest hub.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from idle_cull import runner
from idle_cull.command.settings import Settings
from tests.benchmarks import listing as listing_benchmark
from tests.benchmarks.common import (
    BenchmarkError,
    markdown_table,
    median,
    python_env,
    ratio,
    run_measured,
    this_python,
    upstream_python,
)
from tests.benchmarks.listing import ListingRow, measure_listing
from tests.benchmarks.scene import Case, Scene, running_scene

MAIN = ("raw", "idle-cull", "upstream")
NO_RECHECK = ("raw-bare", "idle-cull-no-recheck")
CONTENDERS = MAIN + NO_RECHECK
IDLE_TIMEOUT = 1.0  # --timeout of every contender: servers are idle once it has passed
IDLE_WAIT = 2.5  # after the last spawn; the hub's Date header has 1 s resolution
DEFAULT_CASES = ("1000x500x0", "1000x500x0.5", "5000x2000x0")
HEADERS = [
    "case",
    "idle-cull",
    "raw s",
    "idle-cull s",
    "upstream s",
    "idle-cull/raw",
    "upstream/idle-cull",
    "D x M / concurrency",
]


@dataclass(frozen=True)
class IdleCullShape:
    """What the installed idle-cull sends, so that ``raw`` can send the same."""

    listing: str  # "sequential" or "concurrent"
    recheck_option: bool  # has --recheck
    recheck_default: bool

    @classmethod
    def detect(cls) -> IdleCullShape:
        """Read from the installed code, so the figures of an older checkout stay fair."""
        source = inspect.getsource(runner)
        wired = "list_pages" in source or "iter_user_pages_concurrently" in source
        fields = {f.name: f for f in dataclasses.fields(Settings)}
        recheck = fields.get("recheck")
        # with --recheck-after, a pass shorter than it sends no re-check at all
        after = fields.get("recheck_after")
        fresh_skips = after is not None and bool(after.default)
        return cls(
            "concurrent" if wired else "sequential",
            recheck is not None,
            bool(recheck is not None and recheck.default and not fresh_skips),
        )

    @property
    def label(self) -> str:
        recheck = " + re-check" if self.recheck_default else ""
        return f"as shipped ({self.listing} listing{recheck})"


@dataclass
class PassResult:
    contender: str
    seconds: float | None = None
    left_running: int = 0
    note: str = ""


@dataclass
class CaseResult:
    case: Case
    concurrency: int
    shape: IdleCullShape
    setup_seconds: float = 0.0
    passes: dict[str, list[PassResult]] = field(default_factory=dict)
    listing_rows: list[ListingRow] = field(default_factory=list)

    def add(self, result: PassResult) -> None:
        self.passes.setdefault(result.contender, []).append(result)

    def samples(self, contender: str) -> list[float]:
        """Seconds of the valid passes of a contender (no failure, nothing left running)."""
        return [
            r.seconds
            for r in self.passes.get(contender, [])
            if r.seconds is not None and not r.left_running and not r.note
        ]

    def seconds(self, contender: str) -> float | None:
        """The median of its valid passes; ``None`` if it has none."""
        samples = self.samples(contender)
        return median(samples) if samples else None

    @property
    def ideal(self) -> float | None:
        """stop time x servers / concurrency: what the issue asks idle-cull to approach."""
        if not self.case.stop_delay:
            return None
        return self.case.stop_delay * self.case.servers / self.concurrency

    def rows(self) -> list[list[object]]:
        variants = [(self.shape.label, "raw", "idle-cull")]
        if any(c in self.passes for c in NO_RECHECK):
            variants.append(("--recheck=false", "raw-bare", "idle-cull-no-recheck"))
        upstream = self.seconds("upstream")
        rows: list[list[object]] = []
        for label, raw_name, ours_name in variants:
            raw, ours = self.seconds(raw_name), self.seconds(ours_name)
            rows.append(
                [
                    self.case.label,
                    label,
                    raw,
                    ours,
                    upstream,
                    ratio(ours, raw),
                    ratio(upstream, ours),
                    self.ideal,
                ]
            )
        return rows

    def notes(self) -> list[str]:
        lines = []
        if any(len(results) > 1 for results in self.passes.values()):
            runs = "; ".join(
                f"{name} {', '.join(f'{s:.1f}' for s in self.samples(name))}"
                for name in self.passes
            )
            lines.append(f"{self.case.label}, every run (s): {runs}")
        for result in (r for results in self.passes.values() for r in results):
            if result.left_running:
                lines.append(
                    f"{self.case.label}: {result.contender} left {result.left_running} "
                    "servers running"
                )
            if result.note:
                lines.append(f"{self.case.label}: {result.contender}: {result.note}")
        return lines


def contender_command(
    contender: str, scene: Scene, concurrency: int, page_size: int, shape: IdleCullShape
) -> list[str] | None:
    """The command line of one contender's pass, or ``None`` if it cannot run here."""
    url = scene.api_url
    if contender in ("raw", "raw-bare"):
        command = [
            this_python(),
            "-m",
            "tests.benchmarks.contenders",
            "raw",
            f"--url={url}",
            f"--concurrency={concurrency}",
            f"--page-size={page_size}",
            f"--listing={shape.listing}",
        ]
        if contender == "raw" and shape.recheck_default:
            command.append("--recheck")
        return command
    if contender in ("idle-cull", "idle-cull-no-recheck"):
        if contender == "idle-cull-no-recheck" and not shape.recheck_option:
            return None
        command = [
            this_python(),
            "-m",
            "tests.benchmarks.contenders",
            "idle-cull",
            "--",
            f"--url={url}",
            f"--timeout={IDLE_TIMEOUT:g}",
            f"--concurrency={concurrency}",
            f"--api-page-size={page_size}",
            "--log-level=info",
        ]
        if contender == "idle-cull-no-recheck":
            command.append("--recheck=false")
        return command
    python = upstream_python()
    if python is None:
        return None
    return [
        str(python),
        "-m",
        "tests.benchmarks.upstream_pass",
        f"--url={url}",
        f"--timeout={IDLE_TIMEOUT:g}",
        f"--concurrency={concurrency}",
        f"--page-size={page_size}",
    ]


def run_pass(
    scene: Scene,
    contender: str,
    *,
    concurrency: int,
    page_size: int,
    shape: IdleCullShape,
    log_dir: Path,
    run: int = 0,
) -> PassResult:
    """One contender's pass over the idle servers; then check that none is left."""
    command = contender_command(contender, scene, concurrency, page_size, shape)
    if command is None:
        return PassResult(contender, note="cannot run here (upstream: run ./scripts/bench)")
    case = scene.case
    timeout = 120 + case.servers * (case.stop_delay + 0.2) * 1.5
    measured = run_measured(
        command,
        timeout=timeout,
        env=python_env(JUPYTERHUB_API_TOKEN=scene.culler_token),
        stderr_path=log_dir
        / f"{case.users}x{case.servers}x{case.stop_delay:g}-{contender}-{run + 1}.log",
    )
    if measured.returncode != 0:
        return PassResult(contender, note=f"exit {measured.returncode}: {measured.stderr_tail(3)}")
    figures = measured.json()
    left = scene.wait_all_stopped(timeout=30 + case.stop_delay * 4)
    result = PassResult(contender, float(figures["seconds"]), left)
    if figures.get("exit_status"):
        result.note = f"exit status {figures['exit_status']}"
    return result


def run_case(
    case: Case,
    *,
    concurrency: int = 10,
    page_size: int = 0,
    contenders: Sequence[str] = CONTENDERS,
    listing_repeats: int = 0,
    log_dir: Path,
    progress: bool = True,
    repeats: int = 1,
    upstream_repeats: int | None = None,
) -> CaseResult:
    """One hub, every contender's pass on it ``repeats`` times, in turn; the table shows
    medians. ``upstream_repeats`` caps upstream's (its passes are the long ones).
    Optionally the listing benchmark too, on the first servers started.
    """
    shape = IdleCullShape.detect()
    if not shape.recheck_option:
        contenders = [c for c in contenders if c != "idle-cull-no-recheck"]
    result = CaseResult(case, concurrency, shape)
    log_dir.mkdir(parents=True, exist_ok=True)

    def say(message: str) -> None:
        if progress:
            stamp = time.strftime("%H:%M:%S")
            print(f"# [{stamp}] {case.label}: {message}", file=sys.stderr, flush=True)

    with running_scene(case) as scene:
        say(f"creating {case.users} users")
        result.setup_seconds += scene.create_users()
        upstream_repeats = repeats if upstream_repeats is None else upstream_repeats
        # each run starts one contender later, so none always runs first or last
        turns = [
            (run, contender)
            for run in range(repeats)
            for contender in [
                *contenders[run % len(contenders) :],
                *contenders[: run % len(contenders)],
            ]
            if contender != "upstream" or run < upstream_repeats
        ]
        for index, (run, contender) in enumerate(turns):
            say(f"run {run + 1}/{repeats}: starting {case.servers} servers for {contender}")
            result.setup_seconds += scene.start_servers()
            if index == 0 and listing_repeats:
                say("listing benchmark")
                result.listing_rows = measure_listing(
                    scene.api_url,
                    scene.culler_token,
                    hub_label=f"N={case.users} M={case.servers}",
                    concurrency=concurrency,
                    repeats=listing_repeats,
                )
            time.sleep(IDLE_WAIT)
            say(f"{contender} pass")
            try:
                outcome = run_pass(
                    scene,
                    contender,
                    concurrency=concurrency,
                    page_size=page_size,
                    shape=shape,
                    log_dir=log_dir,
                    run=run,
                )
            except BenchmarkError as error:
                outcome = PassResult(contender, note=str(error))
            result.add(outcome)
            shown = f"{outcome.seconds:.2f} s" if outcome.seconds is not None else ""
            say(f"{contender}: {shown} {outcome.note}".strip())
            if outcome.left_running or outcome.note:
                scene.stop_all()
    return result


def render(results: Sequence[CaseResult]) -> str:
    table = markdown_table(HEADERS, [row for r in results for row in r.rows()])
    notes = [line for r in results for line in r.notes()]
    return table + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.hubscale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--case",
        action="append",
        type=Case.parse,
        help=f"USERSxSERVERSxSTOP_SECONDS, repeatable (default: {' '.join(DEFAULT_CASES)})",
    )
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--page-size", type=int, default=0, help="0: the hub's default (50)")
    parser.add_argument(
        "--contender", action="append", choices=CONTENDERS, help="repeatable (default: all)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="passes per contender (median)")
    parser.add_argument("--listing-on-largest", type=int, default=0, metavar="REPEATS")
    parser.add_argument("--log-dir", type=Path, help="contenders' logs (default: a temp dir)")
    args = parser.parse_args(argv)
    cases = args.case or [Case.parse(c) for c in DEFAULT_CASES]
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="idle-cull-bench-logs-"))
    print(f"# contenders' logs in {log_dir}", file=sys.stderr)
    largest = max(cases, key=lambda c: (c.users, c.servers))
    results = [
        run_case(
            case,
            concurrency=args.concurrency,
            page_size=args.page_size,
            contenders=args.contender or CONTENDERS,
            listing_repeats=args.listing_on_largest if case is largest else 0,
            log_dir=log_dir,
            repeats=args.repeats,
        )
        for case in cases
    ]
    print(render(results))
    listing_rows = [row for r in results for row in r.listing_rows]
    if listing_rows:
        print()
        print(listing_benchmark.render(listing_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
