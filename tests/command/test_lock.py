"""``command.lock.exclusive_lock``: one pass at a time, never through a link or a FIFO.

tests/test_hardening.py runs the dangling-link and FIFO cases through the command; this
pins the lock itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from idle_cull.command.lock import exclusive_lock
from idle_cull.errors import ConfigError, LockHeld


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "idle-cull.lock"
    with (
        exclusive_lock(path),
        pytest.raises(LockHeld, match=r"another idle-cull pass holds .*idle-cull\.lock"),
        exclusive_lock(path),
    ):
        pass  # pragma: no cover - never entered
    with exclusive_lock(path):  # released on leaving the block
        pass


def test_a_link_is_refused_and_its_target_not_created(tmp_path: Path) -> None:
    path = tmp_path / "idle-cull.lock"
    path.symlink_to(tmp_path / "target")
    with (
        pytest.raises(ConfigError, match=r"cannot open --lock-file .*: it is a symbolic link"),
        exclusive_lock(path),
    ):
        pass  # pragma: no cover - never entered
    assert not (tmp_path / "target").exists()


def test_a_fifo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "idle-cull.lock"
    os.mkfifo(path)
    with (
        pytest.raises(ConfigError, match=r"cannot use --lock-file: .* not a regular file"),
        exclusive_lock(path),
    ):
        pass  # pragma: no cover - never entered
