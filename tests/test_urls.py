"""``urls.requestable_url``: which settings URLs urllib3 and requests can really request.

The command-line tests (tests/command/test_settings_checks.py) show each refusal is exit 2
before anything is sent; this table pins the judgement itself, URL by URL.
"""

from __future__ import annotations

import pytest

from idle_cull.errors import ConfigError
from idle_cull.urls import requestable_url

EXAMPLE = "http://hub:8081/hub/api"


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        pytest.param("http://hub:8081/hub/api", "hub", 8081, id="host-and-port"),
        pytest.param("https://hub.example.org/hub/api", "hub.example.org", None, id="no-port"),
        pytest.param("http://[::1]:8081/hub/api", "::1", 8081, id="ipv6"),
        pytest.param("http://hub:65535/", "hub", 65535, id="highest-port"),
        pytest.param("http://hub:1/", "hub", 1, id="lowest-port"),
    ],
)
def test_a_requestable_url_is_returned_split(url: str, host: str, port: int | None) -> None:
    split = requestable_url(url, "--url", EXAMPLE)
    assert (split.hostname, split.port) == (host, port)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("http://hub ", "contains spaces", id="trailing-space"),
        pytest.param("http://hub\n", "contains spaces", id="trailing-newline"),
        pytest.param("http://h\x00ub/", "control characters", id="control-character"),
        pytest.param("http://[::1", "unbalanced [", id="unbalanced-bracket"),
        pytest.param("ftp://hub/", "is not an http(s) URL", id="other-scheme"),
        pytest.param("hub:8081/hub/api", "is not an http(s) URL", id="no-scheme"),
        pytest.param("http:///hub/api", "is not an http(s) URL", id="no-netloc"),
        pytest.param("http://:8081/hub/api", "has no host name", id="no-host"),
        pytest.param("http://hub:0/", "invalid port (1 to 65535)", id="port-0"),
        pytest.param("http://hub:99999/", "invalid port (1 to 65535)", id="port-99999"),
        pytest.param("http://hub:port/", "invalid port (1 to 65535)", id="port-not-a-number"),
    ],
)
def test_a_url_that_cannot_be_requested_is_one_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        requestable_url(url, "--proxy-url", EXAMPLE)
    text = str(refused.value)
    assert text.startswith("--proxy-url ")
    assert message in text
    assert text.endswith(f"expected e.g. {EXAMPLE}")


@pytest.mark.parametrize(
    "url", ["http://svc:s3cret@[::1", "http://svc:s3cret@hub:99999/", "http://svc:s3cret@hub /"]
)
def test_a_refusal_never_repeats_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        requestable_url(url, "--url", EXAMPLE)
    assert "s3cret" not in str(refused.value)
