"""A throwaway self-signed certificate and key in JupyterHub's internal-ssl layout."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["write_internal_certs", "write_localhost_cert"]


def _self_signed(*, localhost: bool) -> tuple[bytes, bytes]:
    """A self-signed certificate (its own CA) and its key, both PEM; with ``localhost``
    it names 127.0.0.1, so that a client verifying it can connect there."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idle-cull-test")])
    now = datetime.now(timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if localhost:
        address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = builder.add_extension(x509.SubjectAlternativeName([address]), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_localhost_cert(location: Path) -> tuple[Path, Path]:
    """``localhost.crt`` (also the CA to trust) and ``localhost.key`` for a TLS server on
    127.0.0.1 in a test."""
    pem, key_pem = _self_signed(localhost=True)
    cert, key = location / "localhost.crt", location / "localhost.key"
    cert.write_bytes(pem)
    key.write_bytes(key_pem)
    return cert, key


def write_internal_certs(location: Path) -> None:
    """``hub-ca/hub-ca.crt`` and ``hub-internal/hub-internal.{crt,key}``: one self-signed
    certificate serves as both, which is enough for loading them (nothing connects)."""
    pem, key_pem = _self_signed(localhost=False)
    for relative, content in (
        ("hub-ca/hub-ca.crt", pem),
        ("hub-internal/hub-internal.crt", pem),
        ("hub-internal/hub-internal.key", key_pem),
    ):
        (location / relative).parent.mkdir(parents=True, exist_ok=True)
        (location / relative).write_bytes(content)
