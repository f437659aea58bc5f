"""``--notify`` with ``--notify-template`` at the boundary: the template read, the
secrets of the notify URLs masked in every log line, and a template that cannot be read
refused as a configuration error (exit 2) that names the file."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from idle_cull.command.boundary import read_template, users_notifier
from idle_cull.errors import ConfigError
from tests.support.settings import settings

NOTIFY = "mailtos://culler:hunter2@smtp.test?to={user}@example.org"


@pytest.fixture
def root_log() -> Iterator[io.StringIO]:
    """A handler on the root logger, removed afterwards with the filters put on it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_no_notify_url_means_no_notifier() -> None:
    assert users_notifier(settings()) is None


def test_the_template_file_is_used_and_the_notify_secret_masked_in_logs(
    tmp_path: Path, root_log: io.StringIO
) -> None:
    path = tmp_path / "warning.txt"
    path.write_text("Your server {label} stops at {when}\n\nHi {user}, {postpone}\n")
    notifier = users_notifier(
        settings(
            notify_urls=(NOTIFY,), notify_template=path, warn_within=900.0, schedule_interval=600.0
        )
    )
    assert notifier is not None
    assert notifier.template.title == "Your server {label} stops at {when}"
    assert notifier.template.body == "Hi {user}, {postpone}\n"
    logging.getLogger("idle_cull.test").warning("sending with %s", NOTIFY)
    logged = root_log.getvalue()
    assert "hunter2" not in logged
    assert "sending with" in logged


def test_a_missing_template_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.txt"
    with pytest.raises(ConfigError, match=r"--notify-template .*absent\.txt: cannot read it"):
        read_template(path)


def test_a_template_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Arrêt\n\ncorps\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.txt: cannot read it \(.*utf-8"):
        read_template(path)
