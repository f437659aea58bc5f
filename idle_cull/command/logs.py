"""Logging to stderr as text for people or JSON lines for log shippers.

Reports and other machine-readable output go to stdout or files, never here.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timezone

from idle_cull.command.progress import Progress
from idle_cull.safe_text import json_escaped, printable

__all__ = [
    "JsonFormatter",
    "MaskingFilter",
    "ProgressAwareHandler",
    "SecretFilter",
    "TextFormatter",
    "configure_logging",
    "hide_in_logs",
    "mask_in_logs",
]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class MaskingFilter(logging.Filter):
    """Rewrites every record's message through ``mask``, whatever code path wrote it."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__()
        self.mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


class SecretFilter(MaskingFilter):
    """Masks a secret in every record, whatever code path put it into the message.

    The hub client never puts the token into a message, but an error body quoted from a
    misbehaving gateway might; this is the backstop.
    """

    def __init__(self, secret: str) -> None:
        super().__init__(lambda text: text.replace(secret, "***") if secret else text)
        self.secret = secret


def hide_in_logs(secret: str) -> None:
    """Mask ``secret`` in everything logged from now on (see ``SecretFilter``)."""
    mask_in_logs(SecretFilter(secret).mask)


def mask_in_logs(mask: Callable[[str], str]) -> None:
    """Pass everything logged from now on through ``mask`` (see ``MaskingFilter``)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskingFilter(mask))


class TextFormatter(logging.Formatter):
    """One line per record, whatever the hub put in a user or server name."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message.

    One line whichever way it is split: every character the text logs escape is written
    as a JSON escape (``safe_text.json_escaped``).
    """

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        # Names from the hub may carry line separators (U+2028, U+0085), bidi overrides
        # or C1 controls, which json.dumps leaves raw: escaped as the text logs escape
        # them, a line stays one line for any reader. A lone surrogate (which cannot be
        # written as UTF-8) is escaped too, visible instead of a logging error.
        return json_escaped(json.dumps(document, ensure_ascii=False))


class ProgressAwareHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record above the progress line instead of through it."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(sys.stderr)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.clear()
        super().emit(record)
        self.progress.redraw()


def configure_logging(level: str, log_format: str = "text") -> Progress:
    """Route all logging to stderr; return the progress display (off unless a terminal)."""
    progress = Progress.for_terminal(sys.stderr)
    if log_format == "json":
        progress.enabled = False  # a log shipper wants lines, not a redrawn status
    handler = ProgressAwareHandler(progress)
    formatter = JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if level.lower() != "debug":
        logging.getLogger("urllib3").setLevel(logging.WARNING)
    return progress
