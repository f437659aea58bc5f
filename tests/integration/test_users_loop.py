"""Users in the loop, whole passes (issue 25): a postponement keeps a server, a warning
arrives once.

Real jupyterhub-singleuser servers behind the real proxy (``tests/support/singleuser.py``),
each pass the real command in a subprocess, warnings to a real local SMTP server and
HTTP receivers (``tests/support/receivers.py``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dateutil.parser import isoparse

from idle_cull.rules.postponement import KEEP_ALIVE_FILE
from tests.support.realhub import wait_for
from tests.support.receivers import SmtpReceiver, WebhookReceiver
from tests.support.singleuser import SingleUserHub

IDLE = 3  # --timeout, in seconds, for the postponement test
PAST_IDLE = IDLE + 1.5  # the hub's Date header is truncated to the second
ACTIVITY_SETTLES = 3.5  # the fixture's activity intervals are 1 s (plus jitter and a poll)


@pytest.fixture
def su(singleuser_session: SingleUserHub) -> Iterator[SingleUserHub]:
    yield singleuser_session
    singleuser_session.stop_all_servers()


def cull(su: SingleUserHub, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """One pass of the command with a JSON report on stdout: (process, report)."""
    hub = su.hub
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_URL"] = hub.api_url
    env["JUPYTERHUB_API_TOKEN"] = hub.culler_token
    command = [sys.executable, "-m", "idle_cull", "--report=json", *args]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    for secret in (hub.culler_token, hub.admin_token, hub.servers_only_token, hub.prober_token):
        assert secret not in result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout) if result.stdout.strip() else {}
    return result, report


def server_entry(report: dict[str, Any], user: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = report["entries"]
    (entry,) = [e for e in entries if e["kind"] == "server" and e["user"] == user]
    return entry


def summary(result: subprocess.CompletedProcess[str]) -> str:
    return next(line for line in result.stderr.splitlines() if "summary:" in line)


def write_keep_alive(su: SingleUserHub, user: str, content: str) -> float:
    """What ``echo <content> > ~/keep-alive.txt`` does in the user's terminal; when."""
    path = su.hub.workdir / "home" / user / KEEP_ALIVE_FILE
    path.write_text(content + "\n")
    return path.stat().st_mtime


def test_a_pass_keeps_a_postponed_server_and_stops_it_once_the_postponement_ends(
    su: SingleUserHub,
) -> None:
    su.fresh_user("pia")
    time.sleep(PAST_IDLE)
    written = write_keep_alive(su, "pia", "12s")

    # Today's release (no --postpone-limit) stops it: shown without stopping it.
    result, report = cull(su, f"--timeout={IDLE}", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert server_entry(report, "pia")["outcome"] == "dry_run"

    postpone = (f"--timeout={IDLE}", "--postpone-limit=1h", f"--proxy-url={su.public_url}")
    result, report = cull(su, *postpone)
    assert result.returncode == 0, result.stderr
    entry = server_entry(report, "pia")
    assert entry["outcome"] == "skipped", entry
    assert entry["detail"].startswith("user postponed until "), entry
    assert entry["detail"].endswith(" (limit 1h)")
    assert entry["postponed"]["kept"] is True
    assert isoparse(entry["postponed"]["until"]).timestamp() == pytest.approx(written + 12, abs=1)
    assert report["counts"]["postponed"] == 1
    assert "postponed=1" in summary(result)
    assert su.server_model("pia") is not None
    print("kept:", summary(result), "|", entry["detail"])

    # The read went through the proxy (activity for the hub): the server is stopped at
    # the first pass after the postponement ended that finds it idle again.
    time.sleep(max(0.0, written + 12 - time.time()) + PAST_IDLE)
    result, report = cull(su, *postpone)
    assert result.returncode == 0, result.stderr
    entry = server_entry(report, "pia")
    assert entry["outcome"] in ("stopped", "pending"), entry
    assert entry["postponed"]["kept"] is False
    assert entry["postponed"]["reason"].startswith("postponement ended at ")
    wait_for(lambda: su.server_model("pia") is None, "pia's server to stop")
    print("stopped:", summary(result), "|", entry["postponed"]["reason"])


INTERVAL = 4.0  # --schedule-interval
WINDOW = 12.0  # --warn-within: more than two intervals plus a pass
LIMIT = 20.0  # --timeout


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def test_a_user_receives_exactly_one_email_for_one_upcoming_cull_over_three_passes(
    su: SingleUserHub,
) -> None:
    """Three consecutive passes on the schedule's grid, one a slot before the warning window
    opens, one in the slot it opens in (with a dry run in that slot first), one after:
    one e-mail, from the middle one; the dry run sends none and says it would."""
    su.fresh_user("lou")
    time.sleep(ACTIVITY_SETTLES)  # the new server reports its own start as activity too
    model = su.server_model("lou")
    assert model is not None
    last_activity = isoparse(model["last_activity"]).timestamp()
    opens = last_activity + LIMIT - WINDOW
    grid = math.ceil(opens / INTERVAL) * INTERVAL  # the pass of this slot announces it
    passes = [grid - INTERVAL, grid, grid + INTERVAL]
    if passes[0] + 1.2 < time.time():  # the server took long to start: next cull, later
        pytest.skip("the server started too late for the first pass's slot")
    with SmtpReceiver() as smtp:
        warn = (
            f"--timeout={LIMIT:g}",
            f"--warn-within={WINDOW:g}",
            f"--schedule-interval={INTERVAL:g}",
            f"--notify={smtp.url()}",
        )
        outcomes = []
        for index, slot in enumerate(passes):
            sleep_until(slot + 1.2)  # the hub's Date header is truncated to the second
            if index == 1:
                result, report = cull(su, *warn, "--dry-run")
                assert result.returncode == 0, result.stderr
                assert report["counts"]["notifications"] == {  # (report: below)
                    "sent": 0,
                    "failed": 0,
                    "would_send": 1,
                }, (report["now"], model["last_activity"], report["upcoming"])
                assert "DRY-RUN: would warn lou via mailto://" in result.stderr
                assert smtp.messages == []
            result, report = cull(su, *warn)
            assert result.returncode == 0, result.stderr
            assert server_entry_kept(report, "lou")
            outcomes.append(report["counts"]["notifications"])
            print(f"pass {index + 1}:", summary(result))
        (mail,) = smtp.to("lou@example.org")
        assert len(smtp.messages) == 1
    assert [o["sent"] for o in outcomes] == [0, 1, 0]
    assert mail.subject.startswith("Your JupyterHub server lou will be stopped at ")
    assert "Hello lou," in mail.text
    assert "echo 18:00 > ~/keep-alive.txt" in mail.text
    assert "(--timeout)" in mail.text
    assert su.hub.culler_token not in mail.raw.decode(errors="replace")


def server_entry_kept(report: dict[str, Any], user: str) -> bool:
    """Kept servers have no entry unless --report-kept: none stopped, none failed."""
    return not [e for e in report["entries"] if e["user"] == user and e["outcome"] != "kept"]


@pytest.mark.parametrize("mode", ["fail", "close", "hang"])
def test_a_failing_receiver_does_not_fail_the_pass(su: SingleUserHub, mode: str) -> None:
    """A window and an interval of a day put today's upcoming culls in this pass's slot
    (unless the server's limit ends in the last minute of the UTC day)."""
    su.fresh_user("fay")
    with WebhookReceiver(mode) as hook:
        started = time.monotonic()
        result, report = cull(
            su,
            "--timeout=1m",
            "--warn-within=1d",
            "--schedule-interval=1d",
            f"--notify={hook.url(rto='2', cto='2')}",
        )
        took = time.monotonic() - started
        assert len(hook.requests) == 1
    assert result.returncode == 0, result.stderr
    assert report["counts"]["notifications"] == {"sent": 0, "failed": 1, "would_send": 0}
    (notification,) = report["notifications"]
    assert (notification["user"], notification["outcome"]) == ("fay", "failed")
    assert "warnings_failed=1" in summary(result)
    assert took < 30
    assert su.server_model("fay") is not None
    print(f"{mode}:", summary(result), "|", notification["detail"])
