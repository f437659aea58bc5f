"""A real idle-cull pass against a throwaway local JupyterHub, for people trying the tool.

Starts JupyterHub (no-op spawner, everything on 127.0.0.1, files in a temp dir), makes
a few users and servers, waits until some are idle, runs ``idle-cull --dry-run`` and
then the real pass exactly as an operator would (dry run first: a newcomer who copies a
command line should copy that one), and shows the hub before and after. Run it through
``scripts/demo``.

The hub comes from the launcher the integration tests use, ``tests/support/realhub.py``:
support code with a name of its own, not a test module, so one launcher serves both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.support.realhub import RealHub

TIMEOUT = 5  # seconds of idleness before a server is culled, short for the demo
ARGS = [
    f"--timeout={TIMEOUT}",
    "--cull-users",
    "--cull-admin-users=false",
    "--remove-named-servers",
    "--report=text",  # on stdout, after the log on stderr
    "--report-kept",  # a small hub: list what was kept too, and why
]


def show(hub: RealHub, title: str) -> None:
    print(f"\n--- {title}")
    users = hub.users()
    if not users:
        print("  (no users)")
    for user in sorted(users, key=lambda u: u["name"]):
        servers = ", ".join(repr(name or "default") for name in user.get("servers", {})) or "-"
        admin = " (admin)" if user.get("admin") else ""
        print(f"  {user['name']:<8}{admin:<9} servers: {servers}")


def main() -> int:
    print("starting a throwaway JupyterHub on 127.0.0.1 ...", flush=True)
    with RealHub.start() as hub:
        hub.create_users(["ada", "grace", "linus", "temp"])
        hub.create_users(["root"], admin=True)
        hub.start_server("ada")  # will be idle: stopped, then ada is deleted
        hub.start_server("grace")  # kept busy: stays
        hub.start_server("linus", "lab")  # idle named server: stopped and removed
        hub.start_server("linus")  # busy default server: keeps linus
        show(hub, "hub before the pass")
        print(f"\nwaiting {TIMEOUT + 1}s so that servers nobody touches become idle ...")
        time.sleep(TIMEOUT + 1)
        hub.touch("grace")
        hub.touch("linus")
        env = dict(os.environ, JUPYTERHUB_API_URL=hub.api_url)
        env["JUPYTERHUB_API_TOKEN"] = hub.culler_token
        print("\nFirst a dry run: it lists, decides and reports, and changes nothing.")
        status = run_idle_cull(hub, ["--dry-run", *ARGS], env)
        if status != 0:
            print(f"\nthe dry run exited with status {status}; not running the real pass")
            return status
        show(hub, "hub after the dry run (unchanged)")
        print("\nNow the same command without --dry-run: this one stops and deletes.")
        hub.touch("grace")
        hub.touch("linus")
        status = run_idle_cull(hub, ARGS, env)
        show(hub, "hub after the pass")
        print(
            "\nada's idle server was stopped and ada deleted; temp (no server, idle) deleted;"
            "\nlinus's idle 'lab' server removed; grace, linus's busy server and the admin stay."
        )
    return status


def run_idle_cull(hub: RealHub, args: list[str], env: dict[str, str]) -> int:
    """Run the installed command as an operator would, showing its command line."""
    print(
        f"\n$ JUPYTERHUB_API_URL={hub.api_url} JUPYTERHUB_API_TOKEN=... idle-cull {' '.join(args)}"
    )
    bin_dir = os.path.dirname(sys.executable)
    result = subprocess.run([os.path.join(bin_dir, "idle-cull"), *args], env=env, check=False)
    print(f"\nidle-cull exited with status {result.returncode}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
