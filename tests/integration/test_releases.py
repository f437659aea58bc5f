"""What differs between JupyterHub releases, end to end, on every release of the matrix.

Run against one release with ``scripts/test-hub 3.1``; ``scripts/test`` runs this module,
like every test marked ``matrix``, on each release of ``tests/support/hub_releases.txt``.
The unit tests in ``tests/hub/test_client_compat.py`` replay the exact answers seen here.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support.cli import IDLE, PAST_IDLE, cull, servers_of
from tests.support.faultproxy import FaultProxy, rewrite_json
from tests.support.realhub import PAGINATION_ACCEPT, RealHub

pytestmark = pytest.mark.matrix


def test_the_report_names_the_release_the_pass_ran_against(real_hub: RealHub) -> None:
    result = cull(real_hub, f"--timeout={IDLE}", "--report=json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hub"]["version"] == real_hub.version
    assert f"hub {real_hub.version} at {real_hub.api_url}" in result.stderr


def test_short_ready_pages_while_stops_are_pending(real_hub: RealHub) -> None:
    """``state=ready`` is filtered after offset/limit: pending servers leave holes in pages."""
    names = [f"pg-{i}" for i in range(6)]
    real_hub.create_users(names)
    for name in names:
        real_hub.start_server(name)
    real_hub.set_stop_delay(30)  # these stops stay pending: active, but not ready
    for name in ("pg-1", "pg-2", "pg-4"):
        real_hub.api("DELETE", f"/users/{name}/server", expect=(202,))
    real_hub.set_stop_delay(0)  # read when a stop begins: idle-cull's own stops are instant
    first = real_hub.api(
        "GET",
        "/users?state=ready&offset=0&limit=2",
        headers={"Accept": PAGINATION_ACCEPT},
        token=real_hub.culler_token,
        expect=(200,),
    ).json()
    assert [user["name"] for user in first["items"]] == ["pg-0"]  # short, and yet:
    assert first["_pagination"]["next"]["offset"] == 2
    time.sleep(PAST_IDLE)
    result = cull(real_hub, f"--timeout={IDLE}", "--api-page-size=2", "--concurrency=2")
    assert result.returncode == 0, result.stderr
    assert "users_listed=3" in result.stderr
    assert "server_stopped=3" in result.stderr
    assert {name for name in ("pg-0", "pg-3", "pg-5") if servers_of(real_hub, name)} == set()
    for name in ("pg-1", "pg-2", "pg-4"):  # still stopping, and never asked to stop again
        assert f"server {name}" not in result.stderr


def test_stopping_a_server_of_a_user_the_hub_no_longer_has_is_gone(real_hub: RealHub) -> None:
    """3.1 and 4.1 answer 500 to that stop, 5.5 and 6.1 answer 404: both mean "gone"."""
    real_hub.create_users(["real-rita"])
    real_hub.start_server("real-rita")

    def add_ghost(page: dict[str, Any]) -> None:
        rita = next(user for user in page["items"] if user["name"] == "real-rita")
        ghost = json.loads(json.dumps(rita))  # deleted from the hub just after the listing
        ghost["name"] = "ghost-gil"
        ghost["last_activity"] = ghost["servers"][""]["last_activity"] = "2020-01-01T00:00:00Z"
        page["items"].append(ghost)
        page["_pagination"]["total"] += 1

    time.sleep(PAST_IDLE)
    real_hub.touch("real-rita")
    with FaultProxy(real_hub.api_url) as proxy:
        # the listing page itself, not the one-user count page that comes before it
        page = {"state": "ready", "limit": "50"}
        proxy.add("GET", "/users", rewrite_json(add_ghost), count=1, query=page)
        result = cull(
            real_hub,
            f"--timeout={IDLE}",
            "--recheck=false",
            "--api-page-size=50",
            f"--url={proxy.api_url}",
        )
        stops = [s for s in proxy.seen if s.method == "DELETE"]
    assert result.returncode == 0, result.stderr
    assert [(s.path, s.status) for s in stops] == [
        ("/users/ghost-gil/server", 500 if real_hub.version_info < (5,) else 404)
    ]
    assert "stop server ghost-gil: already gone" in result.stderr
    if real_hub.version_info < (5,):  # the 500, explained
        assert "ghost-gil: already gone (the hub no longer has the user)" in result.stderr
    assert "server_already_gone=1" in result.stderr
    assert servers_of(real_hub, "real-rita") == {""}


def test_unknown_token_is_named_as_such_on_every_release(real_hub: RealHub) -> None:
    result = cull(real_hub, f"--timeout={IDLE}", token="0" * 32)
    assert result.returncode == 3, result.stderr
    assert "does not accept the API token" in result.stderr
    assert "lacks the scope" not in result.stderr
