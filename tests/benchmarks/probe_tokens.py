"""What probe tokens cost the hub: ``python -m tests.benchmarks.probe_tokens``.

Issue 21: every probe sends a token the hub mints for the probed user
(``idle_cull.evidence.probe_tokens``), never the culler's own. This measures, on a real hub
(``tests/support/realhub.py``, no-op servers behind configurable-http-proxy), the hub CPU
that costs, from ``/proc/<hub pid>/stat`` as ``hubimpact`` reads it:

- **mint**: ``HubClient.new_token`` for N users, one after the other, as idle-cull asks
  (``access:servers!server=<user>/``, 60 s, with the ``idle-cull-prober`` service token);
- **revoke**: deleting those N tokens again (``DELETE /users/{name}/tokens/{id}``), the
  cost idle-cull does not pay: it lets them expire (the hub purges expired tokens hourly);
- **pass**: a whole ``--probe-kernels`` pass over N idle servers (the no-op servers answer
  ``{}``, a failed probe, so every server is kept and the scene can be repeated) against a
  ``--dry-run`` of the same pass, which probes nothing: the difference per probed server is
  what probing adds to the hub, a mint included. The single-user servers' own token check
  (``GET /hub/api/user``, once per token per 5 minutes) is not in it: no-op servers check
  nothing, and a real server checked the culler's token just the same before.

Figures are printed as a markdown table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from idle_cull.evidence.probe_tokens import PROBE_TOKEN_NOTE
from idle_cull.hub.client import HubClient
from tests.benchmarks.common import BenchmarkError, load_average, markdown_table
from tests.benchmarks.hubimpact import process_cpu_seconds
from tests.support.realhub import RealHub

TIMEOUT = 2  # --timeout of the passes, in seconds


def hub_cpu(hub: RealHub) -> float:
    return process_cpu_seconds(hub.process.pid)


def mint_and_revoke(hub: RealHub, users: list[str]) -> tuple[float, float]:
    """Hub CPU seconds per mint and per revoke, over ``users``."""
    client = HubClient(hub.api_url, hub.prober_token)
    try:
        before = hub_cpu(hub)
        ids = []
        for user in users:
            model = client.new_token(
                user,
                scopes=[f"access:servers!server={user}/"],
                expires_in=60,
                note=PROBE_TOKEN_NOTE,
            )
            ids.append(model["id"])
        minted = hub_cpu(hub)
        for user, token_id in zip(users, ids, strict=True):
            hub.api("DELETE", f"/users/{user}/tokens/{token_id}", token=hub.prober_token)
        revoked = hub_cpu(hub)
    finally:
        client.close()
    return (minted - before) / len(users), (revoked - minted) / len(users)


def one_pass(hub: RealHub, *args: str, expect: str = "") -> float:
    """Hub CPU seconds of one pass of idle-cull with ``args``; ``expect`` is a part of its
    summary line that shows the pass did what it is measured for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_URL"] = hub.api_url
    env["JUPYTERHUB_API_TOKEN"] = hub.prober_token
    before = hub_cpu(hub)
    result = subprocess.run(
        [sys.executable, "-m", "idle_cull", f"--timeout={TIMEOUT}", "--no-recheck", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    time.sleep(0.5)  # let the hub finish logging the last requests
    cpu = hub_cpu(hub) - before
    summary = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    if result.returncode != 0 or (expect and expect not in summary):
        raise BenchmarkError(f"the pass {args} did not go as planned: {summary}")
    return cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.probe_tokens")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hub-release", default=None)
    args = parser.parse_args(argv)
    users = [f"u{i:04d}" for i in range(args.users)]
    rows = []
    with RealHub.start(release=args.hub_release) as hub:
        hub.create_users(users)
        for user in users:
            hub.start_server(user)
        probe = ("--probe-kernels", f"--proxy-url={hub.public_url}", "--concurrency=10")
        for repeat in range(1, args.repeats + 1):
            mint, revoke = mint_and_revoke(hub, users)
            time.sleep(TIMEOUT + 1.5)
            baseline = one_pass(hub, *probe, "--dry-run", expect=f"server_dry_run={len(users)}")
            probing = one_pass(hub, *probe, expect=f"probe_failed={len(users)}")
            extra = (probing - baseline) / len(users)
            rows.append((repeat, mint * 1000, revoke * 1000, baseline, probing, extra * 1000))
        version = hub.version
    headers = [
        "repeat",
        "mint ms/token",
        "revoke ms/token",
        "dry-run pass hub CPU s",
        "probing pass hub CPU s",
        "probing adds ms/server",
    ]
    print(f"JupyterHub {version}, {args.users} idle servers, load {load_average()}")
    print(
        markdown_table(
            headers, [[f"{v:.2f}" if isinstance(v, float) else v for v in r] for r in rows]
        )
    )
    medians = [statistics.median(r[i] for r in rows) for i in (1, 2, 5)]
    mint, revoke, added = medians
    print(
        f"medians: mint {mint:.2f} ms, revoke {revoke:.2f} ms, probing adds {added:.2f} ms/server"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
