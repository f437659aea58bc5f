"""jupyterhub_config.py for the emulated fleet (``tests/benchmarks/server_activity.py``).

It loads ``tests/support/hub_config.py`` unchanged and only changes where servers are:
every spawn returns ``$IDLE_CULL_FLEET_URL``, the emulated single-user servers
(``tests/benchmarks/fleet_server.py``), so the proxy routes each ``/user/<name>/`` there.
"""

from __future__ import annotations

import os
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (provided by traitlets at load)
load_subconfig(str(Path(__file__).parents[1] / "support" / "hub_config.py"))  # type: ignore[name-defined]  # noqa: F821

FLEET_URL = os.environ["IDLE_CULL_FLEET_URL"]
_Noop = c.JupyterHub.spawner_class


class FleetSpawner(_Noop):  # type: ignore[misc,valid-type]  # the no-op spawner, elsewhere
    async def start(self) -> str:
        await super().start()
        return FLEET_URL


c.JupyterHub.spawner_class = FleetSpawner
