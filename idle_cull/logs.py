"""Logging to stderr as text for people or JSON lines for log shippers.

Reports and other machine-readable output go to stdout or files, never here.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from idle_cull.progress import Progress
from idle_cull.safe_text import printable

__all__ = ["JsonFormatter", "ProgressAwareHandler", "TextFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class TextFormatter(logging.Formatter):
    """One line per record, whatever the hub put in a user or server name."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message."""

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
        return json.dumps(document, ensure_ascii=False)


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
