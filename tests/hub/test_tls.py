"""The TLS files of ``--ssl-enabled`` (``idle_cull.hub.tls``): JupyterHub's internal-SSL layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from idle_cull.errors import ConfigError
from idle_cull.hub.tls import TLSFiles
from tests.support.certs import write_internal_certs


def test_internal_certs_layout(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hub-ca\.crt"):
        TLSFiles.from_internal_certs(tmp_path)
    write_internal_certs(tmp_path)  # real PEM files: they are loaded, not just found
    files = TLSFiles.from_internal_certs(tmp_path)
    assert files.ca == tmp_path / "hub-ca" / "hub-ca.crt"
    assert files.key.name == "hub-internal.key"
