"""What one listing page costs the hub, by filter, page size, offset and hub size.

``python -m tests.benchmarks.pagecost [--users 2000] [--running 2000] [--repeats 5]``

JupyterHub renders a ``GET /users`` page on its event loop in one go, so a page's cost
is how long every other request waits behind it. This measures that cost on a real hub
(``tests.benchmarks.scene``), for the queries a culler can send: ``state=ready``, the
unfiltered listing and ``state=inactive``, at the hub's default page size and others,
at the start, middle and end of the list. Each figure is the hub process's CPU seconds
for one request (from ``/proc/<pid>/stat``, median over ``--repeats``) and the request's
wall time on loopback; nothing else talks to the hub meanwhile.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import requests

from tests.benchmarks.common import markdown_table, median
from tests.benchmarks.hubimpact import process_cpu_seconds
from tests.benchmarks.scene import PAGINATION_ACCEPT, Case, running_scene


def page_cost(
    session: requests.Session, url: str, pid: int, params: dict[str, str | int], repeats: int
) -> tuple[float, float, int]:
    """Median hub CPU ms and wall ms of one page request, and how many items it held."""
    cpu: list[float] = []
    wall: list[float] = []
    items = 0
    for _ in range(repeats):
        before = process_cpu_seconds(pid)
        started = time.perf_counter()
        response = session.get(
            f"{url}/users", params=params, headers={"Accept": PAGINATION_ACCEPT}, timeout=60
        )
        wall.append((time.perf_counter() - started) * 1000)
        time.sleep(0.05)  # let the hub finish its bookkeeping before reading its CPU
        cpu.append((process_cpu_seconds(pid) - before) * 1000)
        response.raise_for_status()
        items = len(response.json()["items"])
    return median(cpu), median(wall), items


@dataclass(frozen=True)
class PageCost:
    state: str | None
    limit: int
    where: str
    offset: int
    items: int
    hub_cpu_ms: float
    wall_ms: float

    def row(self) -> list[object]:
        return [
            self.state or "(none)",
            self.limit,
            self.where,
            self.items,
            self.hub_cpu_ms,
            self.wall_ms,
        ]


def measure(case: Case, sizes: list[int], repeats: int) -> list[PageCost]:
    """Every (state, page size, offset) on one hub of ``case``'s shape."""
    costs: list[PageCost] = []
    with running_scene(case) as scene:
        print(f"# creating {case.users} users, starting {case.servers}", file=sys.stderr)
        scene.create_users()
        scene.start_servers()
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"token {scene.culler_token}"
        pid = scene.hub.process.pid
        try:
            for state in ("ready", None, "inactive"):
                for size in sizes:
                    for where, offset in (("start", 0), ("middle", case.servers // 2)):
                        params: dict[str, str | int] = {"offset": offset, "limit": size}
                        if state:
                            params["state"] = state
                        cpu, wall, items = page_cost(session, scene.api_url, pid, params, repeats)
                        costs.append(PageCost(state, size, where, offset, items, cpu, wall))
        finally:
            session.close()
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.pagecost")
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--running", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="25,50,100,200")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    costs = measure(Case(args.users, args.running, 0), sizes, args.repeats)
    headers = ["state", "limit", "offset", "items", "hub CPU ms", "wall ms"]
    print(markdown_table(headers, [cost.row() for cost in costs]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
