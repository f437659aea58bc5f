"""Files read or written at paths other people may control: regular files only, bounded.

The docs recommend a group-writable textfile directory, and a token or lock file may
sit where a compromised service can reach. Whatever is planted at such a path (a FIFO
that blocks an open for ever, a symlink to ``/dev/zero`` or to a private file, a device
node) must neither hang a pass, nor fill its memory, nor be overwritten or quoted.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["NotRegularFile", "describe_mode", "open_regular", "read_regular", "refuse_non_regular"]


class NotRegularFile(OSError):
    """The path holds something other than a regular file, or too much of one."""


def describe_mode(mode: int) -> str:
    """``a directory``, ``a FIFO``, ``a symbolic link``...: what is there instead."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def refuse_non_regular(path: Path) -> None:
    """Raise ``NotRegularFile`` if something other than a regular file is at ``path``.

    A symbolic link is refused too (not followed): replacing ``/dev/stdout``'s link, or
    writing through a link into a file elsewhere, is never what the operator meant.
    Nothing at ``path`` is fine: the file will be created.
    """
    try:
        mode = os.lstat(path).st_mode
    except OSError:  # nothing there (or no way there): the write itself will say why
        return
    if not stat.S_ISREG(mode):
        raise NotRegularFile(f"{path} is {describe_mode(mode)}, not a regular file")


def open_regular(path: Path, flags: int, *, follow: bool, create_mode: int = 0o644) -> int:
    """``os.open`` that never blocks on a FIFO and returns only a regular file's descriptor.

    ``follow=False`` adds ``O_NOFOLLOW``: a symbolic link at ``path`` fails (``ELOOP``)
    instead of being followed, dangling ones included (which ``O_CREAT`` would create).
    """
    flags |= os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    descriptor = os.open(path, flags, create_mode)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"{path} is {describe_mode(mode)}, not a regular file")
        os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def read_regular(path: Path, max_bytes: int, *, follow: bool) -> tuple[bytes, int]:
    """The content of a regular file of at most ``max_bytes``, and its mode bits.

    Raises ``FileNotFoundError``, ``NotRegularFile`` (not a regular file, or larger than
    ``max_bytes``) or another ``OSError``; never blocks, never reads more than the cap.
    """
    descriptor = open_regular(path, os.O_RDONLY, follow=follow)
    with os.fdopen(descriptor, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        content = file.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise NotRegularFile(f"{path} is larger than {max_bytes:,} bytes")
    return content, mode
