"""What probing every running server costs: ``python -m tests.benchmarks.server_activity``.

Issue 24: with server-side activity, every running server old enough to be idle is
probed (``idle_cull.server_activity``), each with a token minted for its user
(``idle_cull.probe_tokens``), and each probe makes the single-user server check that token
with the hub (``GET /hub/api/user``, cached per token for 5 minutes). Two parts:

- **real**: a handful of real ``jupyterhub-singleuser`` servers (``tests/support/singleuser.py``;
  one idle kernel each) probed one after the other, through the proxy and straight at each
  route's target (``idle_cull.proxy_routes``), with a new token per round (a mint and a
  token check each) and with the round's tokens reused (the servers' cache answers): hub
  CPU and proxy CPU per probed server (less an idle window of the same length), and the
  probe's latency (kernels + terminals, median).
- **fleet**: a real hub and proxy whose N running servers are emulated by one process
  (``fleet_server.py``: checks each token with the hub, cache included). In the same run:
  a listing-only pass of idle-cull (nothing idle), upstream's pass (nothing idle), a
  probing pass (``probe-pass`` below: the listing, then every ready server probed with
  ``--concurrency`` 10, minting one 60 s token per user), the same pass reusing tokens
  minted earlier (what a state directory would allow within the tokens' lifetime; the
  servers' cache emptied first, so each still checks the token once), and the floor: one
  token check per server, sent by nothing else. And the real pass, ``idle-cull
  --activity-source=server`` itself (``real-pass`` below: its survey under the adaptive
  limiter, ``--concurrency`` 10 its ceiling; every emulated kernel ran a cell a second
  ago, so it surveys every server and stops none), and the same real pass run twice with
  one ``--state-dir``, the second measured (every token kept from the first; the servers'
  cache emptied first, as for passes more than 5 minutes apart). For each: pass time, the hub's CPU, the
  proxy's CPU, and the p99 of ``GET /hub/api/`` every 20 ms (``hubimpact.Probe``).

Figures are printed as markdown tables; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import requests

from idle_cull.evidence.probe_tokens import ProbeTarget, ProbeTokens, token_lifetime
from idle_cull.evidence.proxy_routes import Locator, fetch_routes, route_locator, through_proxy
from idle_cull.evidence.server_activity import (
    ActivityWithUserToken,
    ServerActivityProbe,
)
from idle_cull.hub.client import HubClient
from tests.benchmarks.common import load_average, markdown_table, python_env, this_python
from tests.benchmarks.hubimpact import Probe, Window, process_cpu_seconds
from tests.benchmarks.scene import SHM, Case, Scene
from tests.support.realhub import REPO_ROOT, RealHub, free_ports
from tests.support.singleuser import SINGLEUSER_CONFIG, SingleUserHub

FLEET_CONFIG = Path(__file__).with_name("fleet_config.py")
QUIET = 2.5  # seconds of quiet before each pass
NEVER_IDLE = "1d"
SURVEY_TIMEOUT = 20  # seconds: the real pass's --timeout (every server older than this)
PROXY_PID_FILE = "jupyterhub-proxy.pid"


def proxy_cpu(hub: RealHub) -> float:
    pid = int((hub.workdir / PROXY_PID_FILE).read_text().strip())
    return process_cpu_seconds(pid)


# --- the probing pass, run as a process of its own ----------------------------------------


def probe_pass(args: argparse.Namespace) -> dict[str, Any]:
    """List the ready servers, then probe each one with its user's token."""
    token = os.environ["JUPYTERHUB_API_TOKEN"]
    window_start = time.monotonic()
    started = time.perf_counter()
    client = HubClient(args.url, token, pool_size=args.concurrency)
    servers: list[tuple[str, str]] = []
    offset = 0
    while True:
        page = client.user_page("ready", offset, 200)
        for user in page.items:
            for name, server in (user.get("servers") or {}).items():
                servers.append((user["name"], server.get("url") or ""))
                del name
        following = (page.pagination or {}).get("next")
        if not following:
            break
        offset = int(following["offset"])
    listed = time.perf_counter() - started
    saved = json.loads(Path(args.tokens).read_text()) if args.tokens else None
    tokens = ProbeTokens(client, args.lifetime, probe_seconds=5)
    locate: Locator
    if args.proxy_api:
        locate = route_locator(fetch_routes(args.proxy_api, os.environ["CONFIGPROXY_AUTH_TOKEN"]))
    else:
        locate = through_proxy(args.proxy_url)
    reader = ServerActivityProbe(locate, pool_size=args.concurrency)
    prober = ActivityWithUserToken(reader, tokens)
    minted: dict[str, str] = {}

    def one(item: tuple[str, str]) -> bool:
        user, url = item
        target = ProbeTarget(user, "", url, frozenset({""}))
        if saved is not None:
            return reader.probe(target, lambda: saved[user]).failure is None
        ok = prober(target).failure is None
        if args.save_tokens:
            minted[user] = tokens.token_for(target)
        return ok

    with ThreadPoolExecutor(args.concurrency) as pool:
        results = list(pool.map(one, servers))
    seconds = time.perf_counter() - started
    reader.close()
    client.close()
    if args.save_tokens:
        Path(args.save_tokens).write_text(json.dumps(minted))
    return {
        "seconds": seconds,
        "listing_seconds": listed,
        "window": [window_start, time.monotonic()],
        "probed": len(results),
        "failed": results.count(False),
        "mints": tokens.mints,
    }


# --- the emulated fleet ---------------------------------------------------------------------


def culler_env(**extra: str) -> dict[str, str]:
    """The environment of a pass: ``python_env`` without ``IDLE_CULL_FLEET_URL`` (set here
    for the hub's config), which idle-cull would refuse as an unknown option variable."""
    env = python_env(**extra)
    env.pop("IDLE_CULL_FLEET_URL", None)
    return env


def start_fleet() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [this_python(), "-m", "tests.benchmarks.fleet_server"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=python_env(),
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def run_window(
    hub: RealHub, name: str, argv: list[str], env: dict[str, str], *, cwd: Path = REPO_ROOT
) -> dict[str, Any]:
    """One contender's pass in a process of its own, with the hub probed throughout."""
    with Probe(hub.api_url, hub.process.pid) as probe:
        quiet_start = time.monotonic()
        time.sleep(QUIET)
        quiet_end = time.monotonic()
        proxy_before = proxy_cpu(hub)
        done = subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=3600, check=False
        )
        proxy_after = proxy_cpu(hub)
    if done.returncode != 0:
        return {"name": name, "note": f"exit {done.returncode}: {done.stderr[-300:]}"}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    for line in done.stderr.splitlines():
        if "surveys in flight: " in line:  # idle-cull's own, at --log-level=debug
            print(f"{name}: {line.split(': ', 1)[-1]}", file=sys.stderr)
    start, end = (float(x) for x in figures["window"])
    quiet = Window.of(probe.samples, quiet_start, quiet_end)
    during = Window.of(probe.samples, start, end)
    idle_rate = quiet.hub_cpu / quiet.seconds if quiet.seconds else 0.0
    figures.update(
        name=name,
        hub_cpu=during.hub_cpu - idle_rate * during.seconds,
        proxy_cpu=proxy_after - proxy_before,
        p99=during.p(0.99),
        quiet_p99=quiet.p(0.99),
    )
    return figures


def real_pass(
    hub: RealHub,
    workdir: Path,
    *,
    name: str = "real pass: --activity-source=server, through the proxy",
    tuning: str = "",
    baseline: Path | None = None,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``idle-cull --activity-source=server`` itself: every server surveyed, none stopped.

    ``tuning`` (``"10,40"``) replaces the survey's limiter marks (``contenders``);
    ``baseline`` runs an older ``idle_cull`` from that directory (as ``hubimpact``);
    ``extra`` are more options of the pass (``--state-dir``)."""
    report = workdir / "real-pass.json"
    argv = [this_python(), "-m", "tests.benchmarks.contenders", "idle-cull", "--"]
    argv += [f"--url={hub.api_url}", f"--timeout={SURVEY_TIMEOUT}", "--concurrency=10"]
    argv += ["--activity-source=server", f"--proxy-url={hub.public_url}"]
    argv += [f"--report-file={report}", "--log-level=debug", *extra]
    env = culler_env(JUPYTERHUB_API_TOKEN=hub.prober_token)
    if tuning:
        env["BENCH_SURVEY_TUNING"] = tuning
    cwd = REPO_ROOT
    if baseline is not None:
        env["PYTHONPATH"] = f"{baseline}{os.pathsep}{REPO_ROOT}"
        cwd = baseline
    row = run_window(hub, name, argv, env, cwd=cwd)
    if "note" not in row:
        counts = json.loads(report.read_text())["counts"]
        print(f"{name}: counts {json.dumps(counts)}", file=sys.stderr)
    return row


def real_pass_with_state(hub: RealHub, workdir: Path, fleet_url: str) -> dict[str, Any]:
    """The real pass twice with one ``--state-dir``; the second (every token kept from the
    first) is measured. The servers' token cache is emptied before it, as it would be for
    passes more than 5 minutes apart: each server still checks the kept token once."""
    state = f"--state-dir={workdir / 'state'}"
    requests.post(f"{fleet_url}/_forget", timeout=10)
    real_pass(hub, workdir, name="real pass, --state-dir: first (mints)", extra=(state,))
    requests.post(f"{fleet_url}/_forget", timeout=10)
    return real_pass(
        hub, workdir, name="real pass, --state-dir: second (tokens reused)", extra=(state,)
    )


def keep_active(hub: RealHub, users: list[str]) -> None:
    """Fresh activity in the hub's record of ``users``: a survey that cannot reach them
    falls back to that record and keeps them, so the fleet stays whole for later rows."""
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for user in users:
        body = {"last_activity": moment, "servers": {"": {"last_activity": moment}}}
        hub.api("POST", f"/users/{user}/activity", json=body, expect=(200,))


def token_checks(hub: RealHub, tokens: dict[str, str]) -> dict[str, Any]:
    """The floor: one ``GET /hub/api/user`` per token, nothing else, hub CPU measured."""
    session = requests.Session()
    session.trust_env = False
    before = process_cpu_seconds(hub.process.pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(10) as pool:
        list(
            pool.map(
                lambda secret: session.get(
                    f"{hub.api_url}/user", headers={"Authorization": f"token {secret}"}, timeout=30
                ).raise_for_status(),
                tokens.values(),
            )
        )
    seconds = time.perf_counter() - started
    session.close()
    return {
        "name": "floor: token checks only",
        "seconds": seconds,
        "hub_cpu": process_cpu_seconds(hub.process.pid) - before,
        "probed": len(tokens),
    }


def fleet(args: argparse.Namespace) -> str:
    servers = args.servers
    fleet_process, fleet_url = start_fleet()
    workdir = Path(tempfile.mkdtemp(prefix="idle-cull-fleet-", dir=SHM if SHM.is_dir() else None))
    os.environ["IDLE_CULL_FLEET_URL"] = fleet_url
    proxy_api = f"http://127.0.0.1:{free_ports(1)[0]}"
    proxy_token = os.urandom(16).hex()
    hub = RealHub.start(
        workdir,
        config=FLEET_CONFIG,
        ConfigurableHTTPProxy__api_url=proxy_api,
        ConfigurableHTTPProxy__auth_token=proxy_token,
    )
    rows: list[dict[str, Any]] = []
    try:
        requests.post(f"{fleet_url}/_hub", data=hub.api_url, timeout=10).raise_for_status()
        scene = Scene(hub, Case(servers, servers, 0))
        scene.create_users()
        spawn = scene.start_servers()
        spawned = time.monotonic()
        print(f"fleet: {servers} servers up in {spawn:.0f}s", file=sys.stderr)
        env = culler_env(JUPYTERHUB_API_TOKEN=hub.culler_token)
        listing = [this_python(), "-m", "tests.benchmarks.contenders", "idle-cull", "--"]
        listing += [f"--url={hub.api_url}", f"--timeout={NEVER_IDLE}", "--concurrency=10"]
        rows.append(run_window(hub, "listing only (idle-cull)", listing, env))
        upstream = [this_python(), "-m", "tests.benchmarks.upstream_pass"]
        upstream += [f"--url={hub.api_url}", "--timeout=86400", "--concurrency=10"]
        rows.append(run_window(hub, "upstream (nothing idle)", upstream, env))
        # the real pass surveys only servers older than --timeout
        time.sleep(max(0.0, spawned + SURVEY_TIMEOUT + 1 - time.monotonic()))
        for tuning in args.survey_tuning or [""]:
            requests.post(f"{fleet_url}/_forget", timeout=10)
            name = "real pass" + (f", survey marks {tuning} ms" if tuning else "")
            rows.append(real_pass(hub, workdir, name=name, tuning=tuning))
        if not args.real_pass_only:
            rows.append(real_pass_with_state(hub, workdir, fleet_url))
        if args.unreachable:
            rows += unreachable_rows(hub, workdir, fleet_url, scene.names[:servers], args)
        if not args.real_pass_only:
            rows += fixed_rows(hub, workdir, fleet_url, proxy_api, proxy_token)
    finally:
        hub.stop()
        fleet_process.terminate()
        fleet_process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    return render_fleet(rows, servers)


def unreachable_rows(
    hub: RealHub, workdir: Path, fleet_url: str, names: list[str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Real passes with a share of the servers hung (``--unreachable``): the baseline's
    (``--baseline``) and this checkout's, in the same run; the hung servers' hub record
    kept fresh so they fall back to it and are kept."""
    every = max(1, round(1 / args.unreachable))
    hung = names[::every]
    requests.post(f"{fleet_url}/_hang", json=hung, timeout=10).raise_for_status()
    share = f"{len(hung)} of {len(names)} unreachable"
    contenders: list[tuple[str, Path | None]] = [(f"real pass, {share}", None)]
    if args.baseline:
        contenders.insert(0, (f"before, {share}", args.baseline.resolve()))
    rows = []
    for name, baseline in contenders:
        requests.post(f"{fleet_url}/_forget", timeout=10)
        keep_active(hub, hung)
        rows.append(real_pass(hub, workdir, name=name, baseline=baseline))
    requests.post(f"{fleet_url}/_hang", json=[], timeout=10).raise_for_status()
    return rows


def fixed_rows(
    hub: RealHub, workdir: Path, fleet_url: str, proxy_api: str, proxy_token: str
) -> list[dict[str, Any]]:
    """The probing passes at a fixed concurrency of 10, the token reuse and the floor."""
    rows = []
    probe_env = culler_env(
        JUPYTERHUB_API_TOKEN=hub.prober_token, CONFIGPROXY_AUTH_TOKEN=proxy_token
    )
    base = [this_python(), "-m", "tests.benchmarks.server_activity", "probe-pass"]
    base += [f"--url={hub.api_url}", f"--proxy-url={hub.public_url}"]
    saved = workdir / "tokens.json"
    forget = f"{fleet_url}/_forget"
    for name, extra in (
        ("probing, through the proxy", []),
        ("probing, at the route targets", [f"--proxy-api={proxy_api}"]),
    ):
        requests.post(forget, timeout=10)
        rows.append(run_window(hub, name, [*base, *extra], probe_env))
    # tokens for the reuse pass: minted (and checked) here, unmeasured
    requests.post(forget, timeout=10)
    prime = [*base, "--lifetime=3600", f"--save-tokens={saved}"]
    run_window(hub, "prime", prime, probe_env)
    requests.post(forget, timeout=10)
    reuse = [*base, f"--proxy-api={proxy_api}", f"--tokens={saved}"]
    rows.append(run_window(hub, "probing, tokens reused (state dir)", reuse, probe_env))
    rows.append(token_checks(hub, json.loads(saved.read_text())))
    return rows


def render_fleet(rows: list[dict[str, Any]], servers: int) -> str:
    floor = next((r for r in rows if r["name"].startswith("floor")), None)
    listing = next((r for r in rows if r["name"].startswith("listing") and "note" not in r), None)
    floor_ms = 1000 * floor["hub_cpu"] / servers if floor else None
    table = []
    for row in rows:
        if "note" in row:
            table.append([row["name"], row["note"], "", "", "", "", ""])
            continue
        extra = ""
        if row["name"].startswith(("probing", "real pass")) and listing and floor_ms:
            per = 1000 * (row["hub_cpu"] - listing["hub_cpu"]) / servers
            extra = f"{per:.2f} ms ({per / floor_ms:.2f}x floor)"
        table.append(
            [
                row["name"],
                f"{row['seconds']:.1f}",
                f"{row['hub_cpu']:.2f}",
                f"{1000 * row['hub_cpu'] / servers:.2f}",
                extra,
                "" if row.get("proxy_cpu") is None else f"{row['proxy_cpu']:.2f}",
                "" if row.get("p99") is None else f"{row['p99']:.0f}",
            ]
        )
    headers = [
        "pass",
        "seconds",
        "hub CPU s",
        "hub CPU ms/server",
        "beyond listing, per probed server",
        "proxy CPU s",
        "others' p99 ms",
    ]
    return f"### Emulated fleet: {servers} running servers\n\n" + markdown_table(headers, table)


# --- real servers ---------------------------------------------------------------------------


def real(count: int, rounds: int) -> str:
    proxy_api = f"http://127.0.0.1:{free_ports(1)[0]}"
    proxy_token = os.urandom(16).hex()
    su = SingleUserHub(
        RealHub.start(
            config=SINGLEUSER_CONFIG,
            ConfigurableHTTPProxy__api_url=proxy_api,
            ConfigurableHTTPProxy__auth_token=proxy_token,
        )
    )
    users = [f"real-{i}" for i in range(count)]
    try:
        for user in users:
            su.fresh_user(user)
            su.start_kernel(user)
        hub = su.hub
        client = HubClient(hub.api_url, hub.culler_token)
        routes = route_locator(fetch_routes(proxy_api, proxy_token))
        rows = []
        for way, locate in (("proxy", through_proxy(hub.public_url)), ("target", routes)):
            for fresh in (True, False):
                rows.append(
                    measure_real(su, client, users, locate, way=way, fresh=fresh, rounds=rounds)
                )
        client.close()
    finally:
        su.stop()
    headers = ["probed", "tokens", "hub CPU ms/server", "proxy CPU ms/server", "latency ms"]
    return f"### Real servers: {count}, {rounds} rounds\n\n" + markdown_table(headers, rows)


def measure_real(
    su: SingleUserHub,
    client: HubClient,
    users: list[str],
    locate: Locator,
    *,
    way: str,
    fresh: bool,
    rounds: int,
) -> list[object]:
    hub = su.hub
    reader = ServerActivityProbe(locate)
    tokens = ProbeTokens(client, token_lifetime(5, 2), probe_seconds=5)
    latencies: list[float] = []
    hub_cpu = proxy = 0.0
    if not fresh:  # mint the tokens and fill the servers' caches first, unmeasured
        for user in users:
            ActivityWithUserToken(reader, tokens)(
                ProbeTarget(user, "", f"/user/{user}/", frozenset({""}))
            )
    for _ in range(rounds):
        if fresh:
            tokens = ProbeTokens(client, token_lifetime(5, 2), probe_seconds=5)
        idle_hub, idle_proxy = process_cpu_seconds(hub.process.pid), proxy_cpu(hub)
        started = time.perf_counter()
        time.sleep(1.0)
        idle_seconds = time.perf_counter() - started
        idle_hub = process_cpu_seconds(hub.process.pid) - idle_hub
        idle_proxy = proxy_cpu(hub) - idle_proxy
        hub_before, proxy_before = process_cpu_seconds(hub.process.pid), proxy_cpu(hub)
        started = time.perf_counter()
        for user in users:
            activity = ActivityWithUserToken(reader, tokens)(
                ProbeTarget(user, "", f"/user/{user}/", frozenset({""}))
            )
            if activity.failure is None and activity.seconds is not None:
                latencies.append(activity.seconds)
        took = time.perf_counter() - started
        share = took / idle_seconds
        hub_cpu += process_cpu_seconds(hub.process.pid) - hub_before - share * idle_hub
        proxy += proxy_cpu(hub) - proxy_before - share * idle_proxy
    reader.close()
    probes = rounds * len(users)
    return [
        "through the proxy" if way == "proxy" else "at the route target",
        "new per round (mint + check)" if fresh else "reused (server cache)",
        f"{1000 * hub_cpu / probes:.2f}",
        f"{1000 * proxy / probes:.2f}",
        f"{1000 * statistics.median(latencies):.1f}" if latencies else "n/a",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.server_activity")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="both parts (the default)")
    run.add_argument("--servers", type=int, default=2000, help="emulated fleet size")
    run.add_argument("--real", type=int, default=4, help="real single-user servers")
    run.add_argument("--rounds", type=int, default=5)
    run.add_argument("--only", choices=("real", "fleet"))
    run.add_argument(
        "--survey-tuning",
        action="append",
        metavar="QUICK,SLOW",
        help="fleet: a real pass with these survey limiter marks in ms (repeatable; "
        "default: one pass as shipped)",
    )
    run.add_argument(
        "--unreachable",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="fleet: also real passes with this share of the servers never answering",
    )
    run.add_argument(
        "--baseline", type=Path, help="fleet, with --unreachable: an older idle_cull's tree"
    )
    run.add_argument(
        "--real-pass-only",
        action="store_true",
        help="fleet: skip the fixed-concurrency probing passes, the token reuse and the floor",
    )
    one = sub.add_parser("probe-pass", help="one probing pass (used by the fleet part)")
    one.add_argument("--url", required=True)
    one.add_argument("--proxy-url", required=True)
    one.add_argument("--proxy-api", default="")
    one.add_argument("--concurrency", type=int, default=10)
    one.add_argument("--lifetime", type=int, default=token_lifetime(5, 2))
    one.add_argument("--tokens", default="")
    one.add_argument("--save-tokens", default="")
    args = parser.parse_args(argv or sys.argv[1:] or ["run"])
    if args.command == "probe-pass":
        print(json.dumps(probe_pass(args)))
        return 0
    print(f"load average before: {load_average()}", file=sys.stderr)
    if args.only != "fleet":
        print(real(args.real, args.rounds) + "\n")
    if args.only != "real":
        print(fleet(args))
    print(f"\nload average after: {load_average()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        sys.exit(main())
