"""Warning users (``idle_cull/notify.py``): the message, the URLs, and real delivery.

The message and the URLs are pure; delivery is tested with a fake sender for the
bookkeeping (dry run, budget, a sender that raises) and with real local receivers
(``tests/support/receivers.py``: aiosmtpd for e-mail, an HTTP server for apprise's
``json://``) for what actually arrives, what a failing receiver does to a pass, and what
never leaves (the hub's token) or never reaches the logs (the URLs' passwords).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from idle_cull.command.logs import mask_in_logs
from idle_cull.errors import ConfigError
from idle_cull.output.notify import (
    POSTPONE_LINE,
    Delivery,
    MessageTemplate,
    Notifier,
    counts,
    render,
    target_url,
    url_secrets,
)
from idle_cull.rules.announce import Notice
from tests.support.receivers import SmtpReceiver, WebhookReceiver

UTC = timezone.utc
NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
HUB_TOKEN = "0123456789abcdef0123456789abcdef"


def notice(user: str = "ann", server: str = "", minutes_left: int = 15) -> Notice:
    return Notice(user, server, NOW + timedelta(minutes=minutes_left), 2700.0, 3600.0, "--timeout")


@pytest.fixture(autouse=True)
def _root_handlers() -> Iterator[None]:
    """``Notifier`` adds a masking filter to the root handlers; each test starts clean."""
    handlers = logging.getLogger().handlers
    before = {handler: list(handler.filters) for handler in handlers}
    yield
    for handler, filters in before.items():
        handler.filters[:] = filters


# -- the message -------------------------------------------------------------------------------


def test_the_default_message_says_which_server_when_why_and_how_to_postpone() -> None:
    title, body = render(MessageTemplate(), notice(server="gpu"), NOW)
    assert title == "Your JupyterHub server ann/gpu will be stopped at 2026-12-07 14:15 UTC"
    assert "Hello ann," in body
    assert "server gpu has been idle for 45m" in body
    assert "stopped at 2026-12-07 14:15 UTC\n(in about 15m)" in body
    assert "idle limit of 1h (--timeout)" in body
    assert f"    {POSTPONE_LINE}\n" in body
    assert POSTPONE_LINE == "echo 18:00 > ~/keep-alive.txt"


def test_the_time_is_shown_in_the_operators_zone() -> None:
    title, _ = render(MessageTemplate(), notice(), NOW, ZoneInfo("Europe/Berlin"))
    assert title.endswith("at 2026-12-07 15:15 CET")


def test_a_template_fills_only_its_fields_and_keeps_escaped_braces() -> None:
    template = MessageTemplate(title="{user}: {when}", body="{{user}} {label} {left} {rule}")
    title, body = render(template, notice(), NOW)
    assert (title, body) == ("ann: 2026-12-07 14:15 UTC", "{user} ann 15m --timeout")


@pytest.mark.parametrize(
    "text", ["{token}", "{user.__class__}", "{user[0]}", "{JUPYTERHUB_API_TOKEN}", "{0}"]
)
def test_a_template_cannot_name_anything_but_its_fields(text: str) -> None:
    with pytest.raises(ConfigError, match="the notification template has"):
        MessageTemplate(body=text).check()


def test_a_name_cannot_break_the_title_into_mail_headers() -> None:
    title, body = render(MessageTemplate(), notice(user="ann\nBcc: all@example.org"), NOW)
    assert "\n" not in title
    assert "Hello ann\\nBcc: all@example.org," in body


# -- the URLs ----------------------------------------------------------------------------------


def test_each_user_gets_their_own_url_with_timeouts() -> None:
    url = target_url("mailto://smtp.test?from=c@example.org&to={user}@example.org", "ann", 3)
    assert url == "mailto://smtp.test?from=c@example.org&to=ann@example.org&cto=3&rto=3"


def test_the_operators_own_timeouts_are_kept() -> None:
    assert target_url("json://hook.test/?rto=20", "ann", 3) == "json://hook.test/?rto=20&cto=3"


def test_a_user_name_cannot_add_a_parameter_or_change_the_host() -> None:
    url = target_url("mailto://smtp.test?to={user}@example.org", "x&to=evil@evil.test/#", 3)
    assert "&to=evil" not in url
    assert "/#" not in url
    assert "to=x%26to%3Devil%40evil.test%2F%23@example.org" in url


def test_a_url_can_name_only_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="a notification URL has"):
        Notifier(["json://hook.test/{token}"], sender=lambda *_: (True, ""))


def test_the_secret_parts_of_a_url_are_found() -> None:
    secrets = url_secrets(
        "mailtos://login:p%40ss@smtp.test?from=culler@example.org&to={user}@example.org"
    )
    assert {"p%40ss", "p@ss", "login"} <= secrets
    assert "culler@example.org" not in secrets
    assert {"T0000000/B0000000", "XXXXXXXXXXXXXXXX"} & url_secrets(
        "slack://T0000000/B0000000/XXXXXXXXXXXXXXXX"
    )
    assert "s3cr3t-key" in url_secrets("json://hook.test/warn?-apikey=s3cr3t-key")


# -- delivery bookkeeping (a fake sender) ------------------------------------------------------


class FakeSender:
    def __init__(self, answer: tuple[bool, str] = (True, ""), delay: float = 0.0) -> None:
        self.answer = answer
        self.delay = delay
        self.sent: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, url: str, title: str, body: str) -> tuple[bool, str]:
        time.sleep(self.delay)
        with self._lock:
            self.sent.append((url, title, body))
        return self.answer


def test_a_dry_run_sends_nothing_and_says_what_it_would_send(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    sender = FakeSender()
    notifier = Notifier(["json://hook.test/{user}"], sender=sender, show=lambda url: url)
    deliveries = notifier.deliver([notice("ann"), notice("bob")], NOW, dry_run=True)
    assert sender.sent == []
    assert [d.outcome for d in deliveries] == ["would_send", "would_send"]
    assert deliveries[0].target == "json://hook.test/ann?cto=10&rto=10"
    assert "DRY-RUN: would warn ann via json://hook.test/ann" in caplog.text
    assert counts(deliveries) == {"sent": 0, "failed": 0, "would_send": 2}


def test_every_notice_goes_to_every_url() -> None:
    sender = FakeSender()
    notifier = Notifier(["json://a.test/{user}", "json://b.test/{user}"], sender=sender)
    deliveries = notifier.deliver([notice("ann"), notice("bob")], NOW, dry_run=False)
    assert sorted(url.split("?")[0] for url, _, _ in sender.sent) == [
        "json://a.test/ann",
        "json://a.test/bob",
        "json://b.test/ann",
        "json://b.test/bob",
    ]
    assert counts(deliveries)["sent"] == 4


def test_a_refusal_or_an_exception_fails_that_delivery_only() -> None:
    def sender(url: str, title: str, body: str) -> tuple[bool, str]:
        if "/bob" in url:
            raise RuntimeError("plugin bug")
        if "/cy" in url:
            return False, "HTTP 500"
        return True, ""

    notifier = Notifier(["json://hook.test/{user}"], sender=sender, show=lambda url: "hook")
    deliveries = notifier.deliver([notice("ann"), notice("bob"), notice("cy")], NOW, dry_run=False)
    assert deliveries == [
        Delivery("ann", "", "hook", "sent"),
        Delivery("bob", "", "hook", "failed", "unexpected RuntimeError"),
        Delivery("cy", "", "hook", "failed", "HTTP 500"),
    ]


def test_deliveries_past_the_budget_are_failed_and_left_behind() -> None:
    sender = FakeSender(delay=30)
    notifier = Notifier(["json://hook.test/{user}"], sender=sender, budget=0.5)
    started = time.monotonic()
    deliveries = notifier.deliver([notice("ann"), notice("bob")], NOW, dry_run=False)
    assert time.monotonic() - started < 3
    assert {d.outcome for d in deliveries} == {"failed"}
    assert "not sent within 0.5s" in deliveries[0].detail


# -- real receivers ----------------------------------------------------------------------------


def test_each_user_receives_their_own_email() -> None:
    with SmtpReceiver() as smtp:
        notifier = Notifier([smtp.url()])
        deliveries = notifier.deliver(
            [notice("ann"), notice("bob", server="gpu")], NOW, dry_run=False
        )
        assert counts(deliveries) == {"sent": 2, "failed": 0, "would_send": 0}
        (ann,) = smtp.to("ann@example.org")
        (bob,) = smtp.to("bob@example.org")
    assert ann.sender == "culler@example.org"
    assert ann.subject == "Your JupyterHub server ann will be stopped at 2026-12-07 14:15 UTC"
    assert "Hello ann," in ann.text
    assert POSTPONE_LINE in ann.text
    assert "server gpu has been idle" in bob.text
    assert "Hello bob," in bob.text


def test_a_webhook_receives_the_message_as_json() -> None:
    with WebhookReceiver() as hook:
        deliveries = Notifier([hook.url()]).deliver([notice("ann")], NOW, dry_run=False)
        assert [d.outcome for d in deliveries] == ["sent"]
        (request,) = hook.requests
    assert request.path == "/warn/ann"
    document = request.json()
    assert document["title"].startswith("Your JupyterHub server ann will be stopped")
    assert POSTPONE_LINE in document["message"]


@pytest.mark.parametrize("mode", ["fail", "close", "hang"])
def test_a_failing_receiver_fails_its_delivery_within_the_timeout(mode: str) -> None:
    with WebhookReceiver(mode) as hook:
        notifier = Notifier([hook.url()], timeout=1, budget=20)
        started = time.monotonic()
        deliveries = notifier.deliver([notice("ann")], NOW, dry_run=False)
        took = time.monotonic() - started
    (delivery,) = deliveries
    assert delivery.outcome == "failed", delivery
    assert took < 5, f"{mode}: {took:.1f}s"


def test_a_hanging_receiver_is_left_behind_at_the_budget() -> None:
    with WebhookReceiver("hang") as hook:
        notifier = Notifier([hook.url(rto="25")], budget=1)
        started = time.monotonic()
        (delivery,) = notifier.deliver([notice("ann")], NOW, dry_run=False)
        took = time.monotonic() - started
    assert delivery.outcome == "failed"
    assert "not sent within 1s" in delivery.detail
    assert took < 3


def test_an_unreachable_mail_server_fails_the_delivery_not_the_caller() -> None:
    with SmtpReceiver() as smtp:
        port = smtp.port
    url = f"mailto://127.0.0.1:{port}?from=culler@example.org&to={{user}}@example.org"
    (delivery,) = Notifier([url], timeout=2).deliver([notice("ann")], NOW, dry_run=False)
    assert delivery.outcome == "failed"
    assert "Connection error while submitting email" in delivery.detail


def test_the_hub_token_never_reaches_a_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", HUB_TOKEN)
    with SmtpReceiver() as smtp, WebhookReceiver() as hook:
        Notifier([smtp.url(), hook.url()]).deliver([notice("ann")], NOW, dry_run=False)
        assert len(smtp.messages) == 1
        assert len(hook.requests) == 1
        assert HUB_TOKEN.encode() not in smtp.raw() + hook.raw()


def test_no_password_of_a_url_reaches_the_logs_even_at_debug(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Apprise logs URLs at debug, urllib3 logs paths and queries: neither shows a secret."""
    caplog.set_level(logging.DEBUG)
    password, key = "hunter2-very-secret", "s3cr3t-api-key"
    with SmtpReceiver() as smtp, WebhookReceiver("fail") as hook:
        mail = f"mailto://culler:{password}@127.0.0.1:{smtp.port}?from=culler@example.org&to={{user}}@example.org"
        webhook = hook.url(path=f"/warn/{key}/{{user}}", **{"-apikey": key})
        notifier = Notifier([mail, webhook])
        mask_in_logs(notifier.mask)  # as the command does before anything is sent
        deliveries = notifier.deliver([notice("ann")], NOW, dry_run=False)
        assert smtp.logins == [("culler", password)]  # it did log in with it
        assert key in hook.requests[0].path  # and the webhook did get its key
    assert [d.outcome for d in deliveries] == ["sent", "failed"]
    shown = caplog.text + capfd.readouterr().err + repr(deliveries)
    assert "warned ann via mailto://" in caplog.text
    assert password not in shown
    assert key not in shown


LEFT_BEHIND = """
import sys
from datetime import datetime, timedelta, timezone
from idle_cull.rules.announce import Notice
from idle_cull.output.notify import Notifier
now = datetime.now(timezone.utc)
notice = Notice("ann", "", now + timedelta(minutes=5), 60.0, 120.0, "--timeout")
(delivery,) = Notifier([sys.argv[1]], budget=1).deliver([notice], now, dry_run=False)
print(delivery.outcome)
"""


def test_a_hanging_receiver_does_not_hold_the_process_at_exit() -> None:
    """Apprise's own ``notify`` runs services in a pool the interpreter joins at exit, so a
    hanging receiver held the process for its whole read timeout (20 s here) after the
    pass had finished; the delivery thread left behind at the budget must not."""
    with WebhookReceiver("hang") as hook:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", LEFT_BEHIND, hook.url(rto="20")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "failed"
    assert took < 10, f"the process took {took:.1f}s to exit"
