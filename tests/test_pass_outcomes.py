"""Every pass that parsed its options ends with one summary line and, if asked, a report.

Exit 2 and 3 included; "nothing was culled" is said once; the deadline during the probe
is status 1 as everywhere else; a hub-managed service is refused.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest
import responses

from idle_cull.errors import HubUnavailable
from idle_cull.hub.client import HubClient
from idle_cull.hub.retry import RetryPolicy
from idle_cull.preflight import MANAGED_SERVICE_DOC, managed_service_refusal
from tests.support.cli import run
from tests.support.emulated_hub import TOKEN, URL, EmulatedHub, server_json, user_json


def _summaries(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " summary: " in line]


@pytest.mark.parametrize(
    ("args", "env", "status"),
    [
        pytest.param(["--timeout=60"], {"JUPYTERHUB_API_TOKEN": "short"}, 2, id="usage-bad-token"),
        pytest.param(["--url=ftp://hub/hub/api"], {}, 2, id="usage-bad-url"),
        pytest.param(
            ["--timeout=60"],
            {
                "JUPYTERHUB_SERVICE_NAME": "idle-culler",
                "JUPYTERHUB_CLIENT_ID": "service-idle-culler",
            },
            2,
            id="usage-managed-service",
        ),
    ],
)
def test_usage_errors_end_with_a_summary_and_a_report(
    tmp_path: Path, args: list[str], env: dict[str, str], status: int
) -> None:
    report_file = tmp_path / "report.json"
    with responses.RequestsMock() as nothing_registered:
        result = run(*args, "--report=json", f"--report-file={report_file}", env=env)
        assert not nothing_registered.calls
    assert result.exit_code == status
    assert len(_summaries(result.stderr)) == 1
    assert f"exit={status}" in _summaries(result.stderr)[0]
    document = json.loads(result.stdout)
    assert document["exit_status"] == status
    assert document["exit_status_name"] == "usage"
    assert document["error"]
    assert json.loads(report_file.read_text()) == document


def test_usage_error_text_report(tmp_path: Path) -> None:
    result = run("--report=text", env={"JUPYTERHUB_API_TOKEN": "short"})
    assert result.exit_code == 2
    assert "ERROR: the API token is 5 characters long" in result.stdout


@pytest.mark.parametrize("report", ["json", "text"])
def test_hub_errors_end_with_a_summary_and_say_nothing_culled_once(
    emulated_hub: EmulatedHub, report: str
) -> None:
    record = user_json("x", servers=[server_json(idle=9000)])
    del record["last_activity"]  # hidden by a missing scope: the pass must not act
    emulated_hub.serve_users("ready", [record])
    result = run("--timeout=60", f"--report={report}")
    assert result.exit_code == 3
    assert result.stderr.count("nothing was culled") == 1, result.stderr
    assert len(_summaries(result.stderr)) == 1
    assert "exit=3" in _summaries(result.stderr)[0]
    assert result.stdout.strip()


def test_unreachable_hub_says_nothing_culled_once(emulated_hub: EmulatedHub) -> None:
    emulated_hub.get(f"{URL}/users", status=401, json={"status": 401, "message": "Unauthorized"})
    result = run("--timeout=60")
    assert result.exit_code == 3
    assert result.stderr.count("nothing was culled") == 1
    assert "exit=3" in _summaries(result.stderr)[0]


def test_deadline_during_the_probe_exits_1(emulated_hub: EmulatedHub) -> None:
    emulated_hub.replace(responses.GET, f"{URL}/", status=503)
    result = run("--deadline=0.3", "--report=json")
    assert result.exit_code == 1, result.stderr
    assert "the hub answered HTTP 503" in result.stderr
    assert "exit=1" in _summaries(result.stderr)[0]
    document = json.loads(result.stdout)
    assert document["interrupted"].startswith("--deadline of 0.3s passed")


@pytest.mark.parametrize(("attempts", "said"), [(1, "HTTP 503 once;"), (2, "HTTP 503 2 times;")])
def test_attempts_are_counted_in_words(emulated_hub: EmulatedHub, attempts: int, said: str) -> None:
    emulated_hub.replace(responses.GET, f"{URL}/", status=503)
    client = HubClient(
        URL, TOKEN, retry=RetryPolicy(attempts=attempts, initial_wait=0), sleep=lambda _s: None
    )
    with pytest.raises(HubUnavailable, match=said):
        client.hub_version()


@pytest.mark.parametrize(
    ("environ", "refused"),
    [
        pytest.param({}, False, id="plain-shell"),
        pytest.param(
            {"JUPYTERHUB_API_TOKEN": "x", "JUPYTERHUB_API_URL": "http://h/hub/api"},
            False,
            id="timer-or-cronjob",
        ),
        pytest.param(
            {"JUPYTERHUB_CLIENT_ID": "jupyterhub-user-ada"}, False, id="inside-a-single-user-server"
        ),
        pytest.param({"JUPYTERHUB_SERVICE_NAME": "idle-culler"}, False, id="name-set-by-hand"),
        pytest.param(
            {
                "JUPYTERHUB_SERVICE_NAME": "idle-culler",
                "JUPYTERHUB_CLIENT_ID": "service-idle-culler",
            },
            True,
            id="managed-service",
        ),
    ],
)
def test_managed_service_detection(environ: dict[str, str], refused: bool) -> None:
    refusal = managed_service_refusal(environ)
    assert (refusal is not None) == refused
    if refusal:
        assert "'idle-culler'" in refusal
        assert "systemd timer, cron or a Kubernetes CronJob" in refusal
        assert "see docs/how-to/tljh.md " in refusal, "point to the recipe (issue 23)"


def test_managed_service_refusal_points_to_a_page_that_has_the_recipe() -> None:
    """The page the refusal names exists and says what to do instead: drop the command,
    keep the token and role, use a timer, and turn TLJH's own culler off."""
    page = Path(__file__).resolve().parent.parent / MANAGED_SERVICE_DOC
    text = " ".join(page.read_text(encoding="utf-8").split())
    for step in (
        "remove its `command`",
        "systemd timer",
        "tljh-config set services.cull.enabled False",
        "tljh-config reload hub",
        '"api_token":',
        "c.JupyterHub.load_roles",
        "--allow-managed-service",
    ):
        assert step in text, step


def test_managed_service_can_be_allowed_for_a_looping_wrapper(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [])
    managed = {
        "JUPYTERHUB_SERVICE_NAME": "idle-culler",
        "JUPYTERHUB_CLIENT_ID": "service-idle-culler",
    }
    assert run("--dry-run", env=managed).exit_code == 2
    result = run("--dry-run", "--allow-managed-service", env=managed)
    assert result.exit_code == 0, result.stderr


def test_a_locked_out_run_ends_with_a_summary_but_leaves_the_report_to_the_lock_holder(
    emulated_hub: EmulatedHub, tmp_path: Path
) -> None:
    lock, report_file = tmp_path / "idle-cull.lock", tmp_path / "report.json"
    with lock.open("w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run(f"--lock-file={lock}", f"--report-file={report_file}", "--report=json")
    assert result.exit_code == 75
    assert "exit=75" in _summaries(result.stderr)[0]
    assert result.stdout == ""
    assert not report_file.exists()
    assert len(emulated_hub.calls) == 0
