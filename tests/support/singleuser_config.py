"""jupyterhub_config.py for the hub with real single-user servers (``tests/support/singleuser.py``).

It loads ``tests/support/hub_config.py`` (ports, proxy, services, roles, overrides) and changes what
real servers need; the launcher sets the same environment variables as for the no-op hub.

Facts checked in the installed JupyterHub 6.1.1 and jupyter_server 2.21:

- ``SimpleLocalProcessSpawner`` runs ``jupyterhub-singleuser`` as the hub's own user without a
  system account; ``home_dir_template`` keeps every home inside the work directory.
- The tests run as root, and jupyter_server refuses root without ``--allow-root``.
- ``Spawner.cmd`` is the project interpreter's ``jupyterhub.singleuser`` (the launcher passes
  it: the hub itself runs from its release's venv, which has no jupyter_server), so the
  servers and their ipykernel come from the project's ``.venv``, whatever ``PATH`` says.
- jupyterhub-singleuser posts its ``last_activity`` every ``JUPYTERHUB_ACTIVITY_INTERVAL``
  seconds (300 by default); the hub copies the proxy's route activity every
  ``last_activity_interval`` (300). Both are 1 s here, so a test sees the hub's view settle
  within a few seconds instead of five minutes.
- ``cleanup_servers = True`` (``hub_config`` turns it off for its no-op servers): real server
  processes run in sessions of their own, and only the hub's shutdown stops them.
- The culler service (``idle-cull``) also holds ``tokens``, which ``--probe-kernels`` needs to
  mint each probed user a token for their own server (it does not hold ``access:servers``:
  the culler's own token never goes to a server); ``idle-cull-servers-only`` stays without it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (provided by traitlets at load)
load_subconfig(str(Path(__file__).with_name("hub_config.py")))  # type: ignore[name-defined]  # noqa: F821

WORKDIR = Path(c.JupyterHub.db_url.split("sqlite:///", 1)[1]).parent

c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = str(WORKDIR / "home" / "{username}")
# The hub runs from its release's venv (.venv/hubs/<release>); jupyter_server and ipykernel
# are in the project's .venv, whose interpreter the launcher passes (RealHub.start).
c.Spawner.cmd = [
    os.environ.get("IDLE_CULL_PROJECT_PYTHON", sys.executable),
    "-m",
    "jupyterhub.singleuser",
]
c.Spawner.args = ["--allow-root", "--ServerApp.log_level=INFO"]
c.Spawner.default_url = "/api/status"
c.Spawner.environment = {"JUPYTERHUB_ACTIVITY_INTERVAL": "1"}
c.Spawner.http_timeout = 60  # a server on a busy 2-core machine can take a while to answer
c.Spawner.start_timeout = 90
c.Spawner.interrupt_timeout = 5
c.Spawner.term_timeout = 5
c.JupyterHub.last_activity_interval = 1
c.JupyterHub.cleanup_servers = True
# "PROXY WEB /user/..." lines: how tests count the requests that reached single-user servers
c.ConfigurableHTTPProxy.log_level = "debug"

for role in c.JupyterHub.load_roles:
    if role["name"] == "idle-cull":
        role["scopes"] = [*role["scopes"], "tokens"]
