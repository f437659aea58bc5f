"""``requestable_url``: a URL that splits but that the HTTP library refuses is one
configuration error giving the library's reason, never the password."""

from __future__ import annotations

import pytest

from idle_cull.errors import ConfigError
from idle_cull.urls import requestable_url

EXAMPLE = "http://127.0.0.1:8081/hub/api"


def test_an_empty_label_is_refused_with_the_library_reason() -> None:
    with pytest.raises(ConfigError) as caught:
        requestable_url("http://.example.com/hub/api", "--url", EXAMPLE)
    assert str(caught.value) == (
        "--url 'http://.example.com/hub/api' is not a URL that can be requested "
        f"(URL has an invalid label.); expected e.g. {EXAMPLE}"
    )


def test_a_host_the_library_refuses_is_named_with_its_reason() -> None:
    with pytest.raises(ConfigError) as caught:
        requestable_url("http://ex%ample/hub/api", "--url", EXAMPLE)
    assert str(caught.value) == (
        "--url 'http://ex%ample/hub/api' is not a URL that can be requested "
        f"('ex%ample' is not a valid host or port); expected e.g. {EXAMPLE}"
    )


def test_a_refused_url_with_a_password_never_shows_it() -> None:
    with pytest.raises(ConfigError) as caught:
        requestable_url("http://admin:s3cret@.example.com/hub/api", "--url", EXAMPLE)
    assert "s3cret" not in str(caught.value)
    assert "is not a URL that can be requested" in str(caught.value)
