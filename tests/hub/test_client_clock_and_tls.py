"""The hub client's edges: a ``Date`` header in the ``-0000`` form (no zone stated, which
RFC 5322 reads as UTC) still gives the hub's clock, in UTC; with ``--ssl-enabled`` every
request verifies the hub against its CA and presents the client certificate."""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import responses

from idle_cull.hub.client import HubClient
from idle_cull.hub.tls import TLSFiles

BASE = "http://hub.test:8081/hub/api"
TOKEN = "s3cr3t-T0KEN-5a1b2c3d4e5f"


def test_a_date_without_a_zone_is_read_as_utc() -> None:
    with responses.RequestsMock() as mock, closing(HubClient(BASE, TOKEN)) as client:
        mock.get(
            f"{BASE}/",
            json={"version": "6.1.1"},
            headers={"Date": "Tue, 01 Dec 2026 10:00:00 -0000"},
        )
        client.hub_version()
        now = client.hub_now()
    assert now is not None
    assert now.tzinfo is not None
    offset = (now - datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)).total_seconds()
    assert 0 <= offset < 5


def test_with_tls_each_request_verifies_the_ca_and_sends_the_client_certificate(
    tmp_path: Path,
) -> None:
    tls = TLSFiles(cert=tmp_path / "hub.crt", key=tmp_path / "hub.key", ca=tmp_path / "ca.crt")
    with responses.RequestsMock() as mock, closing(HubClient(BASE, TOKEN, tls=tls)) as client:
        mock.get(f"{BASE}/", json={"version": "6.1.1"})
        client.hub_version()
        # responses records what requests passed to the adapter's send (verify, cert)
        sent: dict[str, object] = getattr(mock.calls[0].request, "req_kwargs")  # noqa: B009
    assert sent["verify"] == str(tls.ca)
    assert sent["cert"] == (str(tls.cert), str(tls.key))
