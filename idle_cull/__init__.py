"""idle-cull: one culling pass over a JupyterHub's idle servers and users, then exit.

Scheduling is left to a systemd timer, cron or a Kubernetes CronJob; this package only
knows how to do a single, bounded, reported pass.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
