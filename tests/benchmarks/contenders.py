"""The contenders of the end-to-end benchmark that run in the project's venv.

``python -m tests.benchmarks.contenders idle-cull -- <options>``
    one idle-cull pass, through its real command line (``cli.main``), in this process.
``python -m tests.benchmarks.contenders raw --url URL --concurrency N [--listing ...]``
    the hub's own limit: the same requests as a pass (version probe, ``GET /users``
    pages with ``state=ready``, one ``DELETE`` per listed server, with ``--recheck`` a
    ``GET /users/{name}`` before each, as idle-cull's re-check does) on the same kind of
    thread pool and HTTP session (one that, like idle-cull's, reads the environment once
    rather than per request), with no parsing, decisions, retries or logging.

Both read the token from ``JUPYTERHUB_API_TOKEN`` and print one JSON line with
``seconds``: the pass alone, after the interpreter started and the imports were done
(start-up is measured separately by ``tests.benchmarks.startup``), and ``window``: the
pass's start and end on the machine-wide monotonic clock, so that the hub-impact
benchmark (``tests.benchmarks.hubimpact``) can pick its probe samples of the pass. The upstream culler
has its own runner, ``tests.benchmarks.upstream_pass``, for its own venv.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from idle_cull import runner
from idle_cull.command.cli import cli
from idle_cull.hub.limiter import LimiterTuning

PAGINATION_ACCEPT = "application/jupyterhub-pagination+json"


SURVEY_TUNING_VARIABLE = "BENCH_SURVEY_TUNING"  # "quick,slow" in ms: a survey tuning to try


def try_survey_tuning() -> None:
    """The survey's limiter marks replaced by ``$BENCH_SURVEY_TUNING`` (``"10,40"``: quick
    and slow, in ms), for the server-activity benchmark's comparisons of tunings in one
    run; a release without ``SURVEY_TUNING`` (an older baseline) is left as it is."""
    marks = os.environ.get(SURVEY_TUNING_VARIABLE, "")
    if not marks:
        return
    if hasattr(runner, "SURVEY_TUNING"):
        quick, slow = (float(mark) / 1000 for mark in marks.split(","))
        runner.SURVEY_TUNING = LimiterTuning(quick=quick, slow=slow)


def run_idle_cull(args: list[str]) -> dict[str, Any]:
    """One pass through the real CLI; the exit status is returned, not raised."""
    try_survey_tuning()
    window_start = time.monotonic()
    started = time.perf_counter()
    status = cli.main(args=args, prog_name="idle-cull", standalone_mode=False)
    seconds = time.perf_counter() - started
    window = [window_start, time.monotonic()]
    return {"seconds": seconds, "exit_status": int(status or 0), "window": window}


def run_raw(
    url: str,
    token: str,
    *,
    concurrency: int,
    page_size: int = 0,
    listing: str = "sequential",
    recheck: bool = False,
    stop: bool = True,
) -> dict[str, Any]:
    """The requests of a pass and nothing else; see the module docstring.

    ``stop=False`` lists and stops nothing: a pass over a hub where no server is idle.
    """
    session = requests.Session()
    session.trust_env = False  # as idle-cull's client: no per-request environment merge
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=concurrency + 2, max_retries=0)
    session.mount("http://", adapter)
    session.headers["Authorization"] = f"token {token}"
    statuses: Counter[int] = Counter()

    def get_page(offset: int, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"state": "ready", "offset": offset}
        if limit:
            params["limit"] = limit
        response = session.get(f"{url}/users", params=params, headers={"Accept": PAGINATION_ACCEPT})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def stop_one(user_path: tuple[str, str]) -> int:
        user, path = user_path
        if recheck:
            session.get(f"{url}{user}").raise_for_status()
        return session.delete(f"{url}{path}").status_code

    window_start = time.monotonic()
    started = time.perf_counter()
    session.get(f"{url}/").raise_for_status()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        first = get_page(0, page_size)
        pages = [first]
        following = first["_pagination"]["next"]
        if following and listing == "concurrent":
            limit = first["_pagination"]["limit"]
            offsets = range(following["offset"], first["_pagination"]["total"], limit)
            pages.extend(pool.map(lambda offset: get_page(offset, limit), offsets))
        else:
            while following:
                page = get_page(following["offset"], following["limit"])
                pages.append(page)
                following = page["_pagination"]["next"]
        paths = [
            (
                f"/users/{quote(user['name'], safe='')}",
                f"/users/{quote(user['name'], safe='')}/servers/{quote(name, safe='')}"
                if name
                else f"/users/{quote(user['name'], safe='')}/server",
            )
            for page in pages
            for user in page["items"]
            for name in user.get("servers", {})
        ]
        if stop:
            statuses.update(pool.map(stop_one, paths))
    seconds = time.perf_counter() - started
    window = [window_start, time.monotonic()]
    session.close()
    return {
        "seconds": seconds,
        "listed_users": sum(len(page["items"]) for page in pages),
        "pages": len(pages),
        "stops": len(paths) if stop else 0,
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "window": window,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.contenders")
    sub = parser.add_subparsers(dest="contender", required=True)
    idle = sub.add_parser("idle-cull", help="one idle-cull pass; options after --")
    idle.add_argument("options", nargs=argparse.REMAINDER)
    raw = sub.add_parser("raw", help="the same requests with no logic")
    raw.add_argument("--url", required=True)
    raw.add_argument("--concurrency", type=int, default=10)
    raw.add_argument("--page-size", type=int, default=0)
    raw.add_argument("--listing", choices=["sequential", "concurrent"], default="sequential")
    raw.add_argument("--recheck", action="store_true", help="GET the user before each DELETE")
    raw.add_argument("--list-only", action="store_true", help="list, stop nothing")
    args = parser.parse_args(argv)
    if args.contender == "idle-cull":
        options = [o for o in args.options if o != "--"]
        result = run_idle_cull(options)
    else:
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        result = run_raw(
            args.url,
            token,
            concurrency=args.concurrency,
            page_size=args.page_size,
            listing=args.listing,
            recheck=args.recheck,
            stop=not args.list_only,
        )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
