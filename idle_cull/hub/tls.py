"""The client certificate, key and CA of JupyterHub's internal SSL (``--ssl-enabled``).

Here rather than with the settings because the hub client needs them and must not
import the command's settings (the layers in ``pyproject.toml``).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from idle_cull.errors import ConfigError

__all__ = ["TLSFiles"]


@dataclass(frozen=True)
class TLSFiles:
    """Client certificate, key and CA for a hub with JupyterHub's internal SSL."""

    cert: Path
    key: Path
    ca: Path

    @classmethod
    def from_internal_certs(cls, location: Path) -> TLSFiles:
        """The layout JupyterHub writes under ``internal_certs_location``."""
        files = cls(
            cert=location / "hub-internal" / "hub-internal.crt",
            key=location / "hub-internal" / "hub-internal.key",
            ca=location / "hub-ca" / "hub-ca.crt",
        )
        missing = [str(p) for p in (files.cert, files.key, files.ca) if not p.is_file()]
        if missing:
            raise ConfigError(
                "--ssl-enabled needs JupyterHub's internal certificates; missing: "
                + ", ".join(missing)
                + " (check --internal-certs-location)"
            )
        files.check_loadable()
        return files

    def check_loadable(self) -> None:
        """Load the files as the TLS layer will, so an unreadable key or a broken
        certificate is a configuration error now, not five retries of "cannot connect"."""
        context = ssl.create_default_context()
        try:
            context.load_verify_locations(cafile=str(self.ca))
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(_unloadable(str(self.ca), error)) from None
        try:
            context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(_unloadable(f"{self.cert} with {self.key}", error)) from None


def _unloadable(what: str, error: Exception) -> str:
    reason = getattr(error, "strerror", None) or getattr(error, "reason", None)
    return (
        f"--ssl-enabled: cannot load {what}: {reason or type(error).__name__}; "
        "check the files and their permissions (--internal-certs-location)"
    )
