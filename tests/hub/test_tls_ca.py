"""``--ssl-enabled`` with a CA file the TLS layer cannot load: a configuration error
naming the file and what to check, found before any request (not five retries of
"cannot connect")."""

from __future__ import annotations

from pathlib import Path

import pytest

from idle_cull.errors import ConfigError
from idle_cull.hub.tls import TLSFiles


def test_a_ca_that_is_not_a_certificate_is_a_config_error_naming_it(tmp_path: Path) -> None:
    ca = tmp_path / "hub-ca.crt"
    ca.write_text("not a certificate\n")
    files = TLSFiles(cert=tmp_path / "hub.crt", key=tmp_path / "hub.key", ca=ca)
    with pytest.raises(ConfigError) as caught:
        files.check_loadable()
    message = str(caught.value)
    assert message.startswith(f"--ssl-enabled: cannot load {ca}: ")
    assert message.endswith("; check the files and their permissions (--internal-certs-location)")
