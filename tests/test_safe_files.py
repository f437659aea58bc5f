"""``safe_files``: regular files only, never through a link unless asked, bounded reads.

tests/test_hardening.py plants FIFOs, links and huge files at the command's paths; this
pins the helpers themselves.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from idle_cull.safe_files import (
    NotRegularFile,
    describe_mode,
    open_regular,
    read_regular,
    refuse_non_regular,
)


def a_directory(path: Path) -> None:
    path.mkdir()


def a_fifo(path: Path) -> None:
    os.mkfifo(path)


def a_link(path: Path) -> None:
    path.symlink_to(path.parent / "elsewhere")


def a_socket(path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.close()


@pytest.mark.parametrize(
    ("plant", "described"),
    [
        pytest.param(a_directory, "a directory", id="directory"),
        pytest.param(a_fifo, "a FIFO", id="fifo"),
        pytest.param(a_link, "a symbolic link", id="link"),
        pytest.param(a_socket, "a socket", id="socket"),
    ],
)
def test_what_is_there_instead_of_a_regular_file_is_named(
    tmp_path: Path, plant: Callable[[Path], None], described: str
) -> None:
    path = tmp_path / "target"
    plant(path)
    assert describe_mode(os.lstat(path).st_mode) == described
    with pytest.raises(NotRegularFile) as refused:
        refuse_non_regular(path)
    assert str(refused.value) == f"{path} is {described}, not a regular file"


def test_devices_and_unknown_kinds_are_described() -> None:
    assert describe_mode(stat.S_IFCHR) == "a character device"
    assert describe_mode(stat.S_IFBLK) == "a block device"
    assert describe_mode(0) == "not a regular file"


def test_a_regular_file_or_nothing_at_all_may_be_written(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    refuse_non_regular(tmp_path / "file")
    refuse_non_regular(tmp_path / "missing")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(NotRegularFile, match="is a FIFO, not a regular file"):
        open_regular(tmp_path / "fifo", os.O_RDONLY, follow=True)


def test_a_link_is_followed_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"token")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert read_regular(tmp_path / "link", 100, follow=True)[0] == b"token"
    with pytest.raises(OSError, match="Too many levels of symbolic links") as refused:
        read_regular(tmp_path / "link", 100, follow=False)
    assert refused.value.errno == errno.ELOOP


def test_a_dangling_link_is_not_created_through(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        open_regular(tmp_path / "link", os.O_RDWR | os.O_CREAT, follow=False)
    assert not (tmp_path / "target").exists()


@pytest.mark.parametrize(("size", "refused"), [(0, False), (10, False), (11, True), (10_000, True)])
def test_a_read_is_bounded_by_its_cap(tmp_path: Path, size: int, refused: bool) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"x" * size)
    if refused:
        with pytest.raises(NotRegularFile, match="is larger than 10 bytes"):
            read_regular(path, 10, follow=False)
    else:
        content, mode = read_regular(path, 10, follow=False)
        assert (content, stat.S_ISREG(mode)) == (b"x" * size, True)
