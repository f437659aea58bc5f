"""The progress line (``idle_cull.command.progress``), and log records printed above it."""

from __future__ import annotations

import io
import logging

from idle_cull.command.logs import ProgressAwareHandler
from idle_cull.command.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_only_on_a_terminal() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress.for_terminal(stream)
        progress.update("listing users: 50", force=True)
        progress.update("listing users: 100", force=True)
        progress.close()
    assert "\rlisting users: 100" in terminal.getvalue().replace("\x1b[K", "")
    assert terminal.getvalue().endswith("\r\x1b[K")  # the line is wiped at the end
    assert pipe.getvalue() == ""


def test_log_records_are_printed_above_the_progress_line() -> None:
    terminal = Terminal()
    progress = Progress(terminal, enabled=True)
    handler = ProgressAwareHandler(progress)
    handler.setStream(terminal)
    handler.setFormatter(logging.Formatter("%(message)s"))
    progress.update("stop server: 1/3", force=True)
    handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "stopped ann", None, None))
    text = terminal.getvalue()
    # wipe the progress line, write the record on its own line, then draw progress again
    assert text.endswith("\r\x1b[Kstopped ann\n\r\x1b[Kstop server: 1/3")
