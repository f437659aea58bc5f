"""Atomic file writes behind ``--report-file`` and ``--metrics-file``.

Readers (a dashboard, ``jq``, node_exporter) poll those files at any moment, so a file
is replaced in one rename and never seen half written; and a path that can never be
written, or holds something other than a regular file (a link, a FIFO, a device: the
rename would replace it), is refused before the pass, so nothing is culled unrecorded.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path

from idle_cull.errors import ConfigError, OutputError
from idle_cull.safe_files import NotRegularFile, refuse_non_regular

__all__ = ["FILE_MODE", "check_writable", "write_atomically"]

FILE_MODE = 0o644  # node_exporter and log shippers usually run as another user


def check_writable(path: Path, *, option: str) -> None:
    """Fail before the pass if ``path`` can never be written, so nothing is culled
    unrecorded; raises ``ConfigError`` naming the option (exit status 2).
    """
    directory = path.parent
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a directory; give a file name")
    try:
        refuse_non_regular(path)  # /dev/null or a link would be replaced by the rename
    except NotRegularFile as error:
        raise ConfigError(f"{option} {error}; give the path of a regular file") from None
    if not directory.is_dir():
        raise ConfigError(f"{option} {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: directory {directory} is not writable")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, so no reader sees a partial file.

    The temporary file lives in the same directory (a rename cannot cross file systems),
    is named ``.<name>.*.tmp`` (node_exporter reads only ``*.prom``), is fsynced before
    the rename, and is removed if anything fails. Raises ``OutputError`` naming the path.
    """
    try:
        if not path.is_dir():  # a directory: the rename refuses it ("Is a directory")
            refuse_non_regular(path)  # something may have been planted since the check
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except NotRegularFile as error:
        raise OutputError(f"cannot write {error}") from None
    except OSError as error:
        raise OutputError(_cannot_write(path, error)) from None
    try:
        with os.fdopen(fd, "wb") as temp:
            os.fchmod(temp.fileno(), FILE_MODE)
            temp.write(text.encode("utf-8"))
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except OSError as error:
        _remove_quietly(temp_name)
        raise OutputError(_cannot_write(path, error)) from None
    except BaseException:
        _remove_quietly(temp_name)
        raise
    _fsync_directory(path.parent)


def _cannot_write(path: Path, error: OSError) -> str:
    reason = error.strerror or type(error).__name__
    return f"cannot write {path}: {reason} (its directory must exist and be writable)"


def _remove_quietly(name: str) -> None:
    with suppress(OSError):
        os.unlink(name)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; best effort (not every file system allows it)."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
