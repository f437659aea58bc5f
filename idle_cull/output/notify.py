"""Warning users before their server is stopped, through apprise (the ``notify`` extra).

One message per upcoming cull (``announce.Notice``) and per notification URL, written
from a template with the user's name, the server, when, why, and the one line that
postpones the cull. The URLs are apprise URLs (``mailto://``, ``json://``, ``slack://``,
...) in which ``{user}`` is replaced by the user's name, percent-encoded, so each user
gets their own message and no name can add a parameter or change the host.

Delivery is an output of the pass, never a reason for the pass to fail:

- bounded: each URL gets apprise's connect and read timeouts (``cto``, ``rto``; e-mail
  uses ``cto`` as its socket timeout) unless the operator set them, no redirects, no
  retries, and the whole delivery has a time budget after which what is still unsent
  is counted as failed and left behind (daemon threads: a receiver that hangs cannot
  hold the pass or its exit);
- counted: each delivery is ``sent``, ``failed`` (with apprise's warning, masked) or,
  in a dry run, ``would_send`` (nothing is sent; the log says what would be);
- private: the notifier is never given the hub's token, a template can name only the
  fields below (no attribute access, no environment), apprise's own log records never
  reach stderr (they may quote a URL with its password) except its warnings, masked,
  and every secret part of the URLs (password, path segments, query values) is masked
  (``Notifier.mask``, which the command adds to every log handler).

Template fields: ``{user}``, ``{server}`` (``default`` for the default server),
``{label}``, ``{when}`` (the predicted stop, ``2026-12-07 18:00 UTC``), ``{left}``,
``{idle}``, ``{limit}``, ``{rule}``, ``{postpone}`` (the line that postpones it).
"""

from __future__ import annotations

import contextvars
import logging
import queue
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from idle_cull.durations import format_duration
from idle_cull.errors import ConfigError
from idle_cull.rules.announce import Notice
from idle_cull.rules.postponement import KEEP_ALIVE_FILE
from idle_cull.safe_text import printable

__all__ = [
    "DEFAULT_BODY",
    "DEFAULT_TITLE",
    "POSTPONE_LINE",
    "Delivery",
    "MessageTemplate",
    "Notifier",
    "apprise_sender",
    "check_urls",
    "counts",
    "render",
    "shown_url",
    "target_url",
    "url_secrets",
]

log = logging.getLogger(__name__)

FIELDS = ("user", "server", "label", "when", "left", "idle", "limit", "rule", "postpone")
POSTPONE_LINE = f"echo 18:00 > ~/{KEEP_ALIVE_FILE}"
DEFAULT_TITLE = "Your JupyterHub server {label} will be stopped at {when}"
DEFAULT_BODY = """\
Hello {user},

your JupyterHub server {server} has been idle for {idle}. It will be stopped at {when}
(in about {left}) because of the idle limit of {limit} ({rule}).

To keep it, use it before then, or postpone the stop from a terminal in it:

    {postpone}

(an end time like 18:00 or a duration like 2h; your administrator sets how long at most).
Save your work: a stopped server loses what is not saved to disk.
"""
SEND_TIMEOUT = 10.0  # seconds: apprise's cto and rto for each URL unless set in the URL
BUDGET = 60.0  # seconds for all deliveries of a pass
WORKERS = 4  # deliveries in flight at once
MIN_SECRET = 6  # shorter path segments and query values are words, not tokens
MAX_DETAIL = 200
_FIELD = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Delivery:
    """One message to one URL: ``sent``, ``failed`` or ``would_send`` (a dry run)."""

    user: str
    server: str
    target: str  # the URL as apprise shows it with its secrets hidden
    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class MessageTemplate:
    """The title and body of a warning; ``{field}`` is replaced, ``{{`` is a brace."""

    title: str = DEFAULT_TITLE
    body: str = DEFAULT_BODY
    postpone: str = POSTPONE_LINE

    def check(self) -> None:
        """Raises ``ConfigError`` for a field the template cannot have."""
        for text in (self.title, self.body):
            _check_fields(text, FIELDS, "the notification template")


def _check_fields(text: str, allowed: Sequence[str], what: str) -> None:
    for name in _FIELD.findall(text.replace("{{", "").replace("}}", "")):
        if name not in allowed:
            raise ConfigError(
                f"{what} has {{{printable(name)[:30]}}}; the fields are "
                + ", ".join(f"{{{field}}}" for field in allowed)
            )


def _fill(text: str, values: Mapping[str, str]) -> str:
    """``{field}`` replaced from ``values`` (checked beforehand), ``{{``/``}}`` unescaped.

    Not ``str.format``: a format string can reach attributes (``{user.__class__}``).
    """
    parts = re.split(r"(\{\{|\}\})", text)
    out = []
    for part in parts:
        if part in ("{{", "}}"):
            out.append(part[0])
        else:
            out.append(_FIELD.sub(lambda m: values.get(m[1], m[0]), part))
    return "".join(out)


def render(
    template: MessageTemplate, notice: Notice, now: datetime, zone: tzinfo = timezone.utc
) -> tuple[str, str]:
    """The title and body of the warning for ``notice``: pure, for tests and dry runs."""
    when = notice.cull_at.astimezone(zone)
    values = {
        "user": notice.user,
        "server": notice.server or "default",
        "label": notice.label,
        "when": f"{when:%Y-%m-%d %H:%M} {when.tzname() or ''}".strip(),
        "left": format_duration(max(0.0, (notice.cull_at - now).total_seconds())),
        "idle": format_duration(notice.idle_seconds),
        "limit": format_duration(notice.limit_seconds),
        "rule": notice.rule,
        "postpone": template.postpone,
    }
    safe = {key: printable(value) for key, value in values.items()}
    title = " ".join(_fill(template.title, safe).split())  # one line: a mail header
    return title, _fill(template.body, safe)


# -- the URLs ----------------------------------------------------------------------------------


def target_url(template: str, user: str, timeout: float) -> str:
    """The URL for ``user``: ``{user}`` percent-encoded, apprise's timeouts added if unset."""
    url = template.replace("{user}", quote(user, safe=""))
    query = dict(parse_qsl(urlsplit(url).query))
    extra = [f"{key}={timeout:g}" for key in ("cto", "rto") if key not in query]
    if extra:
        url += ("&" if "?" in url else "?") + "&".join(extra)
    return url


def url_secrets(template: str) -> set[str]:
    """The parts of a URL that may be credentials: password, user, long path segments and
    query values (webhook tokens live there), raw and percent-decoded."""
    parts = urlsplit(template.replace("{user}", ""))
    found = {parts.password or "", parts.username or ""}
    for segment in [parts.hostname or "", *parts.path.split("/")]:
        if len(segment) >= MIN_SECRET and "." not in segment:
            found.add(segment)
    found.update(
        value
        for _, value in parse_qsl(parts.query)
        if len(value) >= MIN_SECRET and not _an_address(value)
    )
    found.update({unquote(secret) for secret in found})
    return {secret for secret in found if secret}


def _an_address(value: str) -> bool:
    """``culler@example.org``: an e-mail address in a query (``from=``, ``to=``) is shown."""
    _, at, domain = value.rpartition("@")
    return bool(at) and "." in domain and "/" not in value


def _masker(secrets: Iterable[str]) -> Callable[[str], str]:
    ordered = sorted(set(secrets), key=len, reverse=True)

    def mask(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, "***")
        return text

    return mask


# -- sending -----------------------------------------------------------------------------------

Sender = Callable[[str, str, str], tuple[bool, str]]  # (url, title, body) -> (ok, why not)


class _Captured(logging.Handler):
    """Apprise's warnings for the delivery that started them.

    A context variable rather than a thread-local: apprise runs each service in a thread
    pool of its own, with a copy of the caller's context, so the list the delivery set
    is the one its warnings are appended to.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._lines: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
            "idle_cull_notify_lines", default=None
        )

    def start(self) -> list[str]:
        lines: list[str] = []
        self._lines.set(lines)
        return lines

    def emit(self, record: logging.LogRecord) -> None:
        lines = self._lines.get()
        if lines is not None:
            lines.append(record.getMessage())


_CAPTURE = _Captured()


def _quiet_apprise() -> None:
    """Apprise logs to the ``apprise`` logger, at debug the full URLs and payloads: none of
    it goes to our handlers; its warnings are captured per delivery, and masked."""
    logger = logging.getLogger("apprise")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    if _CAPTURE not in logger.handlers:
        logger.addHandler(_CAPTURE)


def _load_apprise() -> Any:
    """The ``apprise`` module with its plugins loaded; ``ConfigError`` when not installed.

    Loading the plugins imports modules that Python deprecates (``imghdr`` on 3.11 and
    3.12, through apprise's PGP support): that warning is about apprise, not about the
    operator's setup, so it is not shown. Done once, up front, in the calling thread
    (``warnings.catch_warnings`` is not thread-safe), so the delivery threads load nothing.
    """
    _quiet_apprise()  # before the import: apprise logs while it loads its plugins
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import apprise  # noqa: PLC0415 (optional, imported on demand)
        except ImportError:
            raise ConfigError(
                "warning users needs apprise: pip install 'idle-cull[notify]'"
            ) from None
        apprise.Apprise.instantiate("json://localhost")  # loads every plugin
    return apprise


def apprise_sender() -> Sender:
    """The real sender: one plugin object per message, called in the delivery's own thread.

    ``Apprise.notify`` runs each service in a thread pool of its own, whose threads the
    interpreter joins at exit: a receiver that hangs would hold the process until its read
    timeout. The plugin's own ``notify`` runs where it is called, in a daemon thread here,
    which the pass can leave behind. A new object per message: apprise waits between two
    sends of one plugin object (its throttle), which would pace users for nothing.
    """
    apprise = _load_apprise()

    def send(url: str, title: str, body: str) -> tuple[bool, str]:
        asset = apprise.AppriseAsset(async_mode=False, storage_mode="memory")
        asset.http_redirects = False
        lines = _CAPTURE.start()
        plugin = apprise.Apprise.instantiate(url, asset=asset)
        if plugin is None:
            return False, "apprise does not accept this URL"
        ok = bool(plugin.notify(body=body, title=title))
        return ok, "; ".join(lines)

    return send


def shown_url(url: str) -> str:
    """The URL with its secrets hidden, as apprise prints it, or its scheme alone."""
    try:
        plugin = _load_apprise().Apprise.instantiate(url)
        if plugin is not None:
            return str(plugin.url(privacy=True))
    except Exception:  # shown in a log line only: any failure shows less, not more
        pass
    return f"{urlsplit(url).scheme}://..."


def check_urls(urls: Sequence[str]) -> None:
    """Every URL must be one apprise can send to; ``ConfigError`` naming its scheme (the
    rest may hold a password) otherwise."""
    apprise = _load_apprise()
    for url in urls:
        if apprise.Apprise.instantiate(target_url(url, "user", SEND_TIMEOUT)) is None:
            raise ConfigError(
                f"the notification URL {urlsplit(url).scheme}://... is not one apprise "
                "can send to; see https://github.com/caronc/apprise/wiki for the URL forms"
            )


class Notifier:
    """Sends the warnings of a pass to every URL; see the module docstring."""

    def __init__(
        self,
        urls: Sequence[str],
        template: MessageTemplate | None = None,
        *,
        zone: tzinfo = timezone.utc,
        timeout: float = SEND_TIMEOUT,
        budget: float = BUDGET,
        sender: Sender | None = None,
        show: Callable[[str], str] = shown_url,
    ) -> None:
        self.template = template or MessageTemplate()
        self.template.check()
        for url in urls:
            _check_fields(url, ("user",), "a notification URL")
        self.urls = tuple(urls)
        # The command passes this to logs.mask_in_logs before anything is sent.
        self.mask = _masker(secret for url in urls for secret in url_secrets(url))
        self._zone = zone
        self._timeout = timeout
        self._budget = budget
        if sender is None:
            check_urls(urls)
        self._send = sender or apprise_sender()
        self._show = show

    def deliver(self, notices: Sequence[Notice], now: datetime, *, dry_run: bool) -> list[Delivery]:
        """Send (or, in a dry run, describe) every notice to every URL, within the budget."""
        jobs = [(notice, url) for notice in notices for url in self.urls]
        if dry_run:
            return [self._would_send(notice, url, now) for notice, url in jobs]
        return self._send_all(jobs, now)

    def _would_send(self, notice: Notice, template: str, now: datetime) -> Delivery:
        target = self.mask(self._show(target_url(template, notice.user, self._timeout)))
        title, _ = render(self.template, notice, now, self._zone)
        log.info("DRY-RUN: would warn %s via %s: %s", notice.label, target, title)
        return Delivery(notice.user, notice.server, target, "would_send", f"would send: {title}")

    def _send_all(self, jobs: list[tuple[Notice, str]], now: datetime) -> list[Delivery]:
        results: dict[int, Delivery] = {}
        lock = threading.Lock()
        over = threading.Event()  # set at the budget: what finishes later is not logged
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(jobs)):
            todo.put(index)

        def work() -> None:
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                delivery = self._send_one(*jobs[index], now, over)
                with lock:
                    results[index] = delivery

        threads = [
            threading.Thread(target=work, name="idle-cull-notify", daemon=True)
            for _ in range(min(WORKERS, len(jobs)))
        ]
        for thread in threads:
            thread.start()
        ends = time.monotonic() + self._budget
        for thread in threads:
            thread.join(max(0.0, ends - time.monotonic()))
        with lock:
            done = dict(results)
            over.set()
        return [done.get(index) or self._late(*jobs[index]) for index in range(len(jobs))]

    def _late(self, notice: Notice, template: str) -> Delivery:
        target = self.mask(self._show(target_url(template, notice.user, self._timeout)))
        why = f"not sent within {self._budget:g}s (the delivery budget of the pass)"
        log.warning("warning %s via %s failed: %s", notice.label, target, why)
        return Delivery(notice.user, notice.server, target, "failed", why)

    def _send_one(
        self, notice: Notice, template: str, now: datetime, over: threading.Event
    ) -> Delivery:
        url = target_url(template, notice.user, self._timeout)
        target = self.mask(self._show(url))
        title, body = render(self.template, notice, now, self._zone)
        try:
            ok, why = self._send(url, title, body)
        except Exception as error:  # a plugin's bug fails this delivery only
            ok, why = False, f"unexpected {type(error).__name__}"
        why = printable(self.mask(why))[:MAX_DETAIL]
        if over.is_set():
            return Delivery(notice.user, notice.server, target, "failed", "too late")
        if ok:
            log.info("warned %s via %s", notice.label, target)
            return Delivery(notice.user, notice.server, target, "sent")
        log.warning("warning %s via %s failed: %s", notice.label, target, why or "refused")
        return Delivery(notice.user, notice.server, target, "failed", why or "refused")


def counts(deliveries: Iterable[Delivery]) -> dict[str, int]:
    """``{"sent": n, "failed": n, "would_send": n}`` for the report and the metrics."""
    tally = {"sent": 0, "failed": 0, "would_send": 0}
    for delivery in deliveries:
        tally[delivery.outcome] += 1
    return tally
