"""Exactly one pass of the upstream ``jupyterhub-idle-culler``, timed; run in ``.venv-bench``.

``.venv-bench/bin/python -m tests.benchmarks.upstream_pass --url URL --timeout S ...``

Upstream is a long-running service that calls its ``cull_idle`` coroutine every
``--cull-every`` seconds; here that coroutine is awaited once, with the parameters its
command line would pass, and the pass is timed after imports (like the other
contenders). Its code is imported from the installed package, never copied.

This module runs under the bench venv's interpreter, so it imports only the standard
library and ``jupyterhub_idle_culler`` (which brings tornado).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from importlib import metadata

from jupyterhub_idle_culler import cull_idle  # type: ignore[import-not-found,import-untyped,unused-ignore]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.upstream_pass")
    parser.add_argument("--url", required=True)
    parser.add_argument("--timeout", type=float, required=True, help="inactive_limit, seconds")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--page-size", type=int, default=0)
    parser.add_argument("--cull-users", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    logger = logging.getLogger("jupyterhub-idle-culler")
    token = os.environ["JUPYTERHUB_API_TOKEN"]
    window_start = time.monotonic()  # machine-wide: the hub-impact benchmark aligns on it
    started = time.perf_counter()
    asyncio.run(
        cull_idle(
            url=args.url,
            api_token=token,
            inactive_limit=args.timeout,
            logger=logger,
            cull_users=args.cull_users,
            concurrency=args.concurrency,
            api_page_size=args.page_size,
        )
    )
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "version": metadata.version("jupyterhub-idle-culler"),
        "window": [window_start, time.monotonic()],
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
