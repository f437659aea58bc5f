"""Real local notification receivers for the warning tests, all on 127.0.0.1.

- ``SmtpReceiver``: a real SMTP server (aiosmtpd) that keeps every message it accepts,
  with AUTH allowed without TLS so that a ``mailto://user:password@`` URL can log in.
- ``WebhookReceiver``: an HTTP server that keeps every request (method, path, headers,
  body) and answers as told: ``ok`` (200), ``fail`` (500), ``close`` (drops the
  connection without an answer) or ``hang`` (holds the request without answering until
  the client gives up or the receiver stops).

Both are context managers; ``messages`` / ``requests`` are what arrived, and ``raw()``
all bytes received, for asserting that a secret never reached them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.support.local_http import LocalHTTPServer
from tests.support.realhub import free_ports

__all__ = ["HANG_LIMIT", "Mail", "SmtpReceiver", "WebhookReceiver", "WebhookRequest"]

HANG_LIMIT = 30.0  # a hanging receiver holds a request at most this long


@dataclass(frozen=True)
class Mail:
    """One message the SMTP server accepted."""

    sender: str
    recipients: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed: EmailMessage = message_from_bytes(self.raw, policy=policy.default)
        return parsed

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain", "html"))
        return body.get_content() if body is not None else ""


class SmtpReceiver:
    """A real SMTP server on a free port of 127.0.0.1; ``messages`` holds what it accepted."""

    def __init__(self) -> None:
        self.messages: list[Mail] = []
        self.logins: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        (self.port,) = free_ports(1)
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            auth_require_tls=False,
            auth_required=False,
            authenticator=self._authenticate,
        )

    def url(self, to: str = "{user}@example.org", **params: str) -> str:
        """An apprise ``mailto://`` URL that sends here, from ``culler@example.org``."""
        query = "&".join(
            f"{k}={v}" for k, v in {"from": "culler@example.org", "to": to, **params}.items()
        )
        return f"mailto://127.0.0.1:{self.port}?{query}"

    def _authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            with self._lock:
                self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=True)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        mail = Mail(str(envelope.mail_from), tuple(envelope.rcpt_tos), raw)
        with self._lock:
            self.messages.append(mail)
        return "250 OK"

    def to(self, address: str) -> list[Mail]:
        with self._lock:
            return [mail for mail in self.messages if address in mail.recipients]

    def raw(self) -> bytes:
        with self._lock:
            return b"\n".join(mail.raw for mail in self.messages)

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver(LocalHTTPServer):
    """An HTTP receiver on a free port of 127.0.0.1 that answers as ``mode`` says."""

    MODES = ("ok", "fail", "close", "hang")

    def __init__(self, mode: str = "ok") -> None:
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.requests: list[WebhookRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.requests.append(
                        WebhookRequest("POST", self.path, dict(self.headers.items()), body)
                    )
                if receiver.mode == "close":
                    self.close_connection = True
                    self.connection.close()
                    return
                if receiver.mode == "hang":
                    receiver._stopping.wait(HANG_LIMIT)
                    self.close_connection = True
                    return
                status = 200 if receiver.mode == "ok" else 500
                answer = b'{"ok": true}' if status == 200 else b'{"error": "broken"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read ``requests``."""

        super().__init__(Handler)

    def url(self, path: str = "/warn/{user}", **params: str) -> str:
        """An apprise ``json://`` URL that posts here."""
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"json://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def raw(self) -> bytes:
        with self._lock:
            return b"\n".join(
                f"{r.method} {r.path}\n{r.headers}\n".encode() + r.body for r in self.requests
            )

    def release(self) -> None:
        self._stopping.set()
