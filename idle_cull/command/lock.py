"""An overlap lock, so a slow pass and the next scheduled one never run together.

``flock`` is tied to the open file description: the kernel releases it when the
process exits, however it exits, so there is no stale PID file to clean up.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from idle_cull.errors import ConfigError, LockHeld
from idle_cull.safe_files import NotRegularFile, open_regular

__all__ = ["exclusive_lock"]


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold a non-blocking exclusive ``flock`` on ``path`` for the duration of the block."""
    try:
        # Never through a link (a dangling one would create its target, any path root
        # can write), and only a regular file.
        descriptor = open_regular(path, os.O_RDWR | os.O_CREAT, follow=False)
    except NotRegularFile as error:
        raise ConfigError(f"cannot use --lock-file: {error}") from None
    except OSError as error:
        reason = "it is a symbolic link" if error.errno == errno.ELOOP else error.strerror
        raise ConfigError(f"cannot open --lock-file {path}: {reason}") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(
                f"another idle-cull pass holds {path}; skipping this run (the next one will try)"
            ) from None
        yield
    finally:
        os.close(descriptor)
