"""``safe_text``'s rules for showing a URL: its credentials found, masked, removed from messages."""

from __future__ import annotations

import pytest

from idle_cull.safe_text import public_url, url_credentials, without_credentials

SECRET = "s3cret-pass"
URL = f"http://svc:{SECRET}@hub.test:8081/hub/api"


@pytest.mark.parametrize(
    ("url", "credentials", "shown"),
    [
        pytest.param("http://hub.test:8081/hub/api", "", "http://hub.test:8081/hub/api", id="none"),
        pytest.param(
            "https://svc:pw@hub.test/hub/api",
            "svc:pw@",
            "https://***@hub.test/hub/api",
            id="user-and-password",
        ),
        pytest.param(
            "http://:pw@hub.test/hub/api", ":pw@", "http://***@hub.test/hub/api", id="password-only"
        ),
        pytest.param(
            "http://svc:p@ss@hub.test/hub/api",
            "svc:p@ss@",
            "http://***@hub.test/hub/api",
            id="at-in-password",
        ),
        pytest.param(
            "http://hub.test/hub/api?next=a@b",
            "",
            "http://hub.test/hub/api?next=a@b",
            id="at-in-query",
        ),
    ],
)
def test_the_credentials_of_a_url(url: str, credentials: str, shown: str) -> None:
    assert url_credentials(url) == credentials
    assert public_url(url) == shown


def test_messages_quoting_the_url_lose_its_credentials() -> None:
    message = f"could not list users: cannot connect to {URL} (refused); check --url"
    assert without_credentials(message, URL) == (
        "could not list users: cannot connect to http://***@hub.test:8081/hub/api (refused); check --url"
    )
