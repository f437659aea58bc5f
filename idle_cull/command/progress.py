"""A one-line progress display for a person running a pass by hand on a big hub.

It draws only when stderr is a terminal: cron, systemd and Kubernetes logs never see
carriage returns. Log lines are printed above it (see ``logs.ProgressAwareHandler``).
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

__all__ = ["Progress"]

REDRAW_INTERVAL = 0.1  # seconds; a terminal cannot show more anyway


class Progress:
    """Shows the latest status line; thread-safe, rate-limited, and silent when disabled."""

    def __init__(self, stream: TextIO, *, enabled: bool) -> None:
        self._stream = stream
        self.enabled = enabled
        self._line = ""
        self._drawn = False
        self._last_draw = 0.0
        self._lock = threading.Lock()

    @classmethod
    def for_terminal(cls, stream: TextIO) -> Progress:
        isatty = getattr(stream, "isatty", None)
        return cls(stream, enabled=bool(isatty and isatty()))

    def update(self, line: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._line = line
            now = time.monotonic()
            if force or now - self._last_draw >= REDRAW_INTERVAL:
                self._draw()
                self._last_draw = now

    def clear(self) -> None:
        """Wipe the line so that a log record can be written in its place."""
        if not self.enabled:
            return
        with self._lock:
            if self._drawn:
                self._stream.write("\r\x1b[K")
                self._drawn = False

    def redraw(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._line:
                self._draw()

    def close(self) -> None:
        self.clear()
        self._line = ""

    def _draw(self) -> None:
        self._stream.write("\r\x1b[K" + self._line)
        self._stream.flush()
        self._drawn = True
