"""Atomic writes and the writability check of the output files (``idle_cull.output.files``)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from idle_cull.errors import ConfigError, OutputError
from idle_cull.output.files import check_writable, write_atomically


def test_write_atomically_writes_with_mode_0644_whatever_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    old_umask = os.umask(0o077)
    try:
        write_atomically(target, "first\n")
        write_atomically(target, "second ünïcode\n")
    finally:
        os.umask(old_umask)
    assert target.read_text(encoding="utf-8") == "second ünïcode\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    """Poll the path while it is rewritten many times: only whole versions are ever read."""
    target = tmp_path / "metrics.prom"
    # ~200 KB and ~250 KB: plain ``Path.write_text`` fails this test (a reader sees it empty).
    versions = {("a" * 199 + "\n") * 1000, ("b" * 99 + "\n") * 2500}
    write_atomically(target, min(versions))
    seen: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen.append(target.read_text())

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for i in range(100):
            write_atomically(target, sorted(versions)[i % 2])
    finally:
        stop.set()
        reader.join()
    assert seen
    assert set(seen) <= versions
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.prom"]


@pytest.mark.parametrize(
    ("make_target", "reason"),
    [
        pytest.param(
            lambda d: d / "a-file" / "report.json", "Not a directory", id="parent-is-a-file"
        ),
        pytest.param(
            lambda d: d / "missing" / "report.json",
            "No such file or directory",
            id="parent-missing",
        ),
        pytest.param(lambda d: d / "a-directory", "Is a directory", id="target-is-a-directory"),
    ],
)
def test_a_failed_write_raises_output_error_and_leaves_nothing_behind(
    tmp_path: Path, make_target: Any, reason: str
) -> None:
    (tmp_path / "a-file").write_text("old content\n")
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-directory" / "inside").write_text("kept\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    target = make_target(tmp_path)
    with pytest.raises(OutputError, match=f"cannot write {target}: {reason}"):
        write_atomically(target, "new content\n")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "a-file").read_text() == "old content\n"


def test_a_failure_after_the_temp_file_exists_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk or an interrupt mid-write: the old file stays whole, the temp file goes."""
    target = tmp_path / "report.json"
    write_atomically(target, "old\n")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OutputError, match="No space left on device"):
        write_atomically(target, "new\n")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_check_writable(tmp_path: Path) -> None:
    check_writable(tmp_path / "report.json", option="--report-file")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(
        ConfigError, match=r"--report-file .*/missing/r\.json: directory .*/missing does not exist"
    ):
        check_writable(tmp_path / "missing" / "r.json", option="--report-file")
    with pytest.raises(ConfigError, match="does not exist"):
        check_writable(tmp_path / "a-file" / "r.json", option="--report-file")
    with pytest.raises(ConfigError, match=r"--metrics-file .* is a directory"):
        check_writable(tmp_path, option="--metrics-file")
