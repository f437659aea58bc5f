"""A throwaway self-signed certificate and key in JupyterHub's internal-ssl layout."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["write_internal_certs"]


def write_internal_certs(location: Path) -> None:
    """``hub-ca/hub-ca.crt`` and ``hub-internal/hub-internal.{crt,key}``: one self-signed
    certificate serves as both, which is enough for loading them (nothing connects)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idle-cull-test")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for relative, content in (
        ("hub-ca/hub-ca.crt", pem),
        ("hub-internal/hub-internal.crt", pem),
        ("hub-internal/hub-internal.key", key_pem),
    ):
        (location / relative).parent.mkdir(parents=True, exist_ok=True)
        (location / relative).write_bytes(content)
