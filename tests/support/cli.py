"""Two ways tests run idle-cull: in-process against the emulated hub, or as a subprocess
against a real one, as cron or systemd would run it.

Both check that the API token never appears in what the command printed.
"""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner, Result

from idle_cull.command.cli import cli
from tests.support.emulated_hub import TOKEN, URL
from tests.support.realhub import RealHub


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """The command in-process (click's CliRunner), pointed at the emulated hub."""
    environment = {"JUPYTERHUB_API_URL": URL, "JUPYTERHUB_API_TOKEN": TOKEN}
    environment.update(env or {})
    result = CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)
    assert TOKEN not in result.output + result.stderr
    return result


IDLE = 3  # --timeout for these tests, in seconds
# The hub clock (Date header) is truncated to the second, so idleness reads up to 1 s
# short: wait well past the limit.
PAST_IDLE = IDLE + 1.5


def cull(hub: RealHub, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """One pass of the installed command, as cron or systemd would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_URL"] = hub.api_url
    env["JUPYTERHUB_API_TOKEN"] = token if token is not None else hub.culler_token
    result = subprocess.run(
        [sys.executable, "-m", "idle_cull", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    secrets = (hub.culler_token, hub.admin_token, hub.servers_only_token, hub.noscope_token)
    for secret in (*secrets, hub.readonly_token, hub.prober_token, hub.groups_unchecked_token):
        assert secret not in result.stdout + result.stderr
    return result


def servers_of(hub: RealHub, name: str) -> set[str]:
    model = hub.user(name)
    assert model is not None, f"user {name} is gone"
    return set(model["servers"])
