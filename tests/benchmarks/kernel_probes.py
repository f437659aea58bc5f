"""What ``--probe-kernels`` costs: ``python -m tests.benchmarks.kernel_probes``.

A real hub with real single-user servers (``tests/support/singleuser.py``), every one of them
busy with a silent cell and idle past ``--timeout``, so a probing pass asks every server
and keeps every one. Per repeat, two passes over the same scene:

- **baseline**: ``--dry-run`` without probing (lists and decides, sends nothing);
- **probing**: ``--probe-kernels --no-recheck`` (lists, decides, probes each server, keeps
  it; the re-check is off so the difference is the probes alone).

It prints the pass durations, the seconds each probe took (from the JSON report), and the
CPU seconds the hub, the proxy and the single-user servers spent during each pass (from
``/proc``, Linux only). Between repeats it waits out ``--timeout`` again, since each probe
counts as the server's activity in the hub's record.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.singleuser import SingleUserHub

TIMEOUT = 3
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of one process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def processes(su: SingleUserHub) -> dict[str, list[int]]:
    proxy = int((su.hub.workdir / "jupyterhub-proxy.pid").read_text().strip())
    servers = []
    for user in su.hub.users():
        for model in user.get("servers", {}).values():
            pid = (model.get("state") or {}).get("pid")
            if pid:
                servers.append(int(pid))
    return {"hub": [su.hub.process.pid], "proxy": [proxy], "servers": servers}


def one_pass(su: SingleUserHub, *args: str) -> dict[str, Any]:
    pids = processes(su)
    before = {name: sum(cpu_seconds(p) for p in group) for name, group in pids.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_URL"] = su.hub.api_url
    env["JUPYTERHUB_API_TOKEN"] = su.hub.culler_token
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "idle_cull", f"--timeout={TIMEOUT}", "--report=json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    wall = time.monotonic() - started
    after = {name: sum(cpu_seconds(p) for p in group) for name, group in pids.items()}
    report = json.loads(result.stdout)
    probes = [
        e["probe"]["seconds"] for e in report["entries"] if (e.get("probe") or {}).get("seconds")
    ]
    return {
        "wall": wall,
        "cpu": {name: after[name] - before[name] for name in pids},
        "probe_seconds": probes,
        "kept_busy": report["counts"].get("probes", {}).get("kept_busy", 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.kernel_probes")
    parser.add_argument("--servers", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with SingleUserHub.start() as su:
        names = [f"bench{i}" for i in range(args.servers)]
        for name in names:
            su.fresh_user(name)
            su.run_silently(name, su.start_kernel(name))
        rows: list[tuple[str, dict[str, Any]]] = []
        for _ in range(args.repeats):
            time.sleep(TIMEOUT + 3.5)  # idle past --timeout, the probes' activity copied
            rows.append(("baseline", one_pass(su, "--dry-run")))
            rows.append(
                (
                    "probing",
                    one_pass(su, "--probe-kernels", f"--proxy-url={su.public_url}", "--no-recheck"),
                )
            )
    print(
        f"{args.servers} busy servers, {args.repeats} repeats; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        "| pass | wall s | hub CPU s | proxy CPU s | servers CPU s | kept busy | probe s (median, max) |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind, row in rows:
        probes = row["probe_seconds"]
        spread = f"{statistics.median(probes):.3f}, {max(probes):.3f}" if probes else "-"
        cpu = row["cpu"]
        print(
            f"| {kind} | {row['wall']:.2f} | {cpu['hub']:.2f} | {cpu['proxy']:.2f} | "
            f"{cpu['servers']:.2f} | {row['kept_busy']} | {spread} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
