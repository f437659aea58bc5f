"""Listing at scale: sequential paging against pages after the first fetched concurrently.

``python -m tests.benchmarks.listing --users 5000 --servers 2000``

Starts a real hub with that many users and running servers, then times
the sequential listing (``pages.follow_pages``: one page after the other, following
``next``) against the concurrent one (``pages.list_pages``: offsets from the first page's ``total``, at
most ``--concurrency`` pages in flight), each page parsed into ``User`` records as the
runner does. Both run in this process, alternately, ``--repeats`` times; the table shows
medians. ``state=ready`` is what every pass lists; ``state=inactive`` is added by
``--cull-users``. The listing changes nothing, so it needs no re-spawn between runs.

``--fake-users`` adds rows against the fake hub (``tests.benchmarks.hub_server``) with that
many users, answering each page at once or after ``--fake-latency`` seconds: on the real
hub on 127.0.0.1 the hub's single thread renders one page at a time, so concurrency can
only overlap our parsing with its rendering; with a hub farther away (latency, TLS,
proxies) or a hub that serves pages in parallel, the pages' waits overlap too.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from idle_cull.hub.client import HubClient
from idle_cull.hub.pages import Fetch, follow_pages, list_pages
from idle_cull.models import User
from tests.benchmarks.common import markdown_table, median, ratio
from tests.benchmarks.hub_server import fake_hub
from tests.benchmarks.scene import Case, running_scene

HEADERS = [
    "hub",
    "state",
    "page size",
    "users",
    "pages",
    "sequential s",
    "concurrent s",
    "speed-up",
]


@dataclass(frozen=True)
class ListingRow:
    hub: str
    state: str
    page_size: int  # the hub's, after its clamp
    users: int
    pages: int
    sequential: float
    concurrent: float

    def cells(self) -> list[object]:
        return [
            self.hub,
            self.state,
            self.page_size,
            self.users,
            self.pages,
            self.sequential,
            self.concurrent,
            ratio(self.sequential, self.concurrent),
        ]


def _consume(pages: Iterable[list[Any]]) -> tuple[int, int]:
    """Parse every record as the runner does; return (users, pages)."""
    users = 0
    count = 0
    for page in pages:
        count += 1
        for record in page:
            User.from_api(record)
            users += 1
    return users, count


def _sequential(fetch: Fetch, page_size: int) -> Iterator[list[Any]]:
    """One page after the other: the first, then each ``next`` followed."""
    first = fetch(0, page_size)
    yield first.items
    yield from follow_pages(fetch, first)


def _timed(pages: Iterator[list[Any]]) -> tuple[float, int, int]:
    started = time.perf_counter()
    users, count = _consume(pages)
    return time.perf_counter() - started, users, count


def measure_listing(
    api_url: str,
    token: str,
    *,
    hub_label: str,
    concurrency: int = 10,
    states: Sequence[str] = ("ready", "inactive"),
    page_sizes: Sequence[int] = (0, 200),
    repeats: int = 3,
) -> list[ListingRow]:
    """Sequential against concurrent listing, for every state and page size."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    rows = []
    client = HubClient(api_url, token, pool_size=concurrency)
    try:
        for state in states:
            for page_size in page_sizes:
                sequential: list[float] = []
                concurrent: list[float] = []
                for _ in range(repeats):
                    fetch = partial(client.user_page, state)
                    seconds, users, pages = _timed(_sequential(fetch, page_size))
                    sequential.append(seconds)
                    with ThreadPoolExecutor(concurrency, thread_name_prefix="bench-list") as pool:
                        seconds, users_c, pages_c = _timed(
                            list_pages(fetch, page_size, executor=pool, max_in_flight=concurrency)
                        )
                    concurrent.append(seconds)
                    if (users_c, pages_c) != (users, pages):
                        raise RuntimeError(
                            f"concurrent listing saw {users_c} users in {pages_c} pages, "
                            f"sequential {users} in {pages}"
                        )
                first = client.user_page(state, 0, page_size)
                real_size = int((first.pagination or {}).get("limit") or page_size)
                rows.append(
                    ListingRow(
                        hub_label,
                        state,
                        real_size,
                        users,
                        pages,
                        median(sequential),
                        median(concurrent),
                    )
                )
    finally:
        client.close()
    return rows


def measure_fake(
    users: int, *, latencies: Sequence[float] = (0.0, 0.02), concurrency: int = 10, repeats: int = 1
) -> list[ListingRow]:
    """Sequential against concurrent listing of the fake hub's ready users (half of them)."""
    rows = []
    for latency in latencies:
        with fake_hub(users, latency=latency) as hub:
            label = f"fake, {users} users, {latency * 1000:g} ms/page"
            rows += measure_listing(
                hub.url,
                hub.token,
                hub_label=label,
                concurrency=concurrency,
                states=("ready",),
                page_sizes=(200,),
                repeats=repeats,
            )
    return rows


def render(rows: Sequence[ListingRow]) -> str:
    return markdown_table(HEADERS, [row.cells() for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.listing", description=__doc__)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--servers", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fake-users", type=int, default=0, help="also against the fake hub")
    parser.add_argument("--fake-latency", type=float, default=0.02)
    args = parser.parse_args(argv)
    if args.fake_users:
        fake_rows = measure_fake(
            args.fake_users,
            latencies=(0.0, args.fake_latency),
            concurrency=args.concurrency,
            repeats=args.repeats,
        )
        print(render(fake_rows))
    case = Case(args.users, args.servers, 0)
    with running_scene(case) as scene:
        print(f"# creating {case.users} users ...", file=sys.stderr, flush=True)
        scene.create_users()
        print(f"# starting {case.servers} servers ...", file=sys.stderr, flush=True)
        scene.start_servers()
        rows = measure_listing(
            scene.api_url,
            scene.culler_token,
            hub_label=f"N={case.users} M={case.servers}",
            concurrency=args.concurrency,
            repeats=args.repeats,
        )
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
