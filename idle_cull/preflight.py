"""Checks before a pass acts: what the configuration needs of its surroundings.

Pure functions: the caller passes in the environment or what the hub said, and gets
back what is wrong, so a dry run predicts the real run and nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["managed_service_refusal"]


def managed_service_refusal(environ: Mapping[str, str]) -> str | None:
    """Why idle-cull will not run as a hub-managed service, or ``None`` if it is not one.

    JupyterHub starts a service with a ``command`` with ``JUPYTERHUB_SERVICE_NAME`` and
    the OAuth client id every process it spawns gets (``JUPYTERHUB_CLIENT_ID``). A
    one-pass tool there exits, is restarted by the hub about every 30 s and logs an
    error each time: what upstream's long-running culler needed, and not this tool.
    """
    name = environ.get("JUPYTERHUB_SERVICE_NAME")
    if not name or not environ.get("JUPYTERHUB_CLIENT_ID"):
        return None
    return (
        f"idle-cull was started by JupyterHub as the managed service {name!r} (a "
        "c.JupyterHub.services entry with a command); it does one pass and exits, so the "
        "hub would restart it about every 30 s and log an error each time. Remove the "
        "service's command (keep its name, api_token and role) and run idle-cull from a "
        "systemd timer, cron or a Kubernetes CronJob: see the README, 'Running it on a "
        "schedule'. If a wrapper of yours loops between passes, pass "
        "--allow-managed-service"
    )
