"""Token files and what ``Settings`` checks itself: the URL, the token, one limit per name."""

from __future__ import annotations

from pathlib import Path

import pytest

from idle_cull.command.settings import Settings, read_token
from idle_cull.errors import ConfigError
from idle_cull.rules.policy import CullLimits


def test_read_token_strips_and_never_echoes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("s3cret-token\n")
    assert read_token(path) == "s3cret-token"
    path.write_text("  \n")
    with pytest.raises(ConfigError, match="is empty") as error:
        read_token(path)
    with pytest.raises(ConfigError, match="does not exist"):
        read_token(tmp_path / "missing")
    assert "s3cret" not in str(error.value)


def test_unreadable_token_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read token file"):
        read_token(tmp_path)  # a directory


def make_settings(**overrides: object) -> Settings:
    fields: dict[str, object] = {
        "url": "http://127.0.0.1:8081/hub/api",
        "token": "t0ken-for-tests",
        "limits": CullLimits(),
    }
    fields.update(overrides)
    return Settings(**fields)  # type: ignore[arg-type]


def test_settings_repr_hides_token() -> None:
    settings = make_settings(token="very-secret-value")
    assert "very-secret-value" not in repr(settings)
    assert "very-secret-value" not in str(settings.describe())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"url": "127.0.0.1:8081/hub/api"}, "not an http", id="no-scheme"),
        pytest.param({"url": "ftp://hub/hub/api"}, "not an http", id="wrong-scheme"),
        pytest.param({"url": "http://hub:8081/"}, "does not end in /hub/api", id="missing-hub-api"),
        pytest.param({"token": ""}, "no API token", id="empty-token"),
        pytest.param({"token": "abc\ndef"}, "line breaks", id="token-with-newline"),
        pytest.param({"token": "abc def"}, "spaces", id="token-with-space"),
        pytest.param({"token": "tökén"}, "non-ASCII", id="token-non-ascii"),
        pytest.param(
            {"token": "x"},
            "is 1 character long; JupyterHub's tokens are at least 8",
            id="token-too-short",
        ),
    ],
)
def test_settings_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(**overrides)


def test_base_url_prefix_is_accepted() -> None:
    assert make_settings(url="https://example.org/jupyter/hub/api").url.endswith("/hub/api")
