"""Busy kernels on real single-user servers (``tests/singleuser.py``): issue 15.

The hub spawns real jupyterhub-singleuser servers behind configurable-http-proxy. A busy
server runs ``time.sleep(600)`` in a kernel, started over the kernel's websocket as a
notebook does; it prints nothing, so neither the server nor the hub sees activity.
"""

from __future__ import annotations

import time

from tests.singleuser import SingleUserHub

ACTIVITY_SETTLES = 3.5  # the fixture's activity intervals are 1 s (plus jitter and a poll)


def test_a_silent_cell_keeps_its_kernel_busy_while_activity_stands_still(
    singleuser_session: SingleUserHub,
) -> None:
    su = singleuser_session
    su.fresh_user("harness")
    kernel = su.start_kernel("harness")
    su.run_silently("harness", kernel)
    before = su.status("harness")["last_activity"]
    time.sleep(ACTIVITY_SETTLES)
    assert su.kernel_state("harness", kernel) == "busy"
    assert su.status("harness")["last_activity"] == before
    su.interrupt("harness", kernel)
    assert su.kernel_state("harness", kernel) == "idle"
