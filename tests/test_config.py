"""Durations, token files and cross-option validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from idle_cull.command.settings import Settings, read_token
from idle_cull.durations import format_duration, parse_duration
from idle_cull.errors import ConfigError
from idle_cull.hub.tls import TLSFiles
from idle_cull.rules.policy import CullLimits
from tests.support.certs import write_internal_certs


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("600", 600),
        ("0", 0),
        ("1.5", 1.5),
        ("90m", 5400),
        ("2h", 7200),
        ("1h30m", 5400),
        ("30d", 2592000),
        ("45s", 45),
        ("1w", 604800),
        (" 2H ", 7200),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["-5", "ten", "", "5x", "1h-3m", "nan", "inf", "h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text, what="--timeout")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(45, "45s", id="seconds"),
        pytest.param(1.5, "1.5s", id="fraction-under-ten"),
        pytest.param(59.9, "59s", id="under-a-minute-rounds-down"),
        pytest.param(60, "1m", id="exact-minute"),
        pytest.param(3599, "59m59s", id="two-units"),
        pytest.param(-90, "-1m30s", id="negative"),
        pytest.param(7800, "2h10m", id="hours-minutes"),
        pytest.param(7200, "2h", id="exact-hours"),
        pytest.param(7226, "2h0m", id="zero-middle-minutes-kept"),
        pytest.param(7259, "2h0m", id="rounds-down-not-up"),
        pytest.param(86426, "1d0h", id="zero-middle-hours-kept"),
        pytest.param(86400, "1d", id="exact-day"),
        pytest.param(90061, "1d1h", id="days-hours"),
        pytest.param(3600 + 59, "1h0m", id="below-next-minute"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


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
        pytest.param({"concurrency": 0}, "--concurrency", id="zero-concurrency"),
        pytest.param({"api_page_size": -1}, "--api-page-size", id="negative-page-size"),
        pytest.param(
            {"request_timeout": 0}, "JUPYTERHUB_REQUEST_TIMEOUT", id="zero-request-timeout"
        ),
    ],
)
def test_settings_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(**overrides)


def test_base_url_prefix_is_accepted() -> None:
    assert make_settings(url="https://example.org/jupyter/hub/api").url.endswith("/hub/api")


def test_internal_certs_layout(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hub-ca\.crt"):
        TLSFiles.from_internal_certs(tmp_path)
    write_internal_certs(tmp_path)  # real PEM files: they are loaded, not just found
    files = TLSFiles.from_internal_certs(tmp_path)
    assert files.ca == tmp_path / "hub-ca" / "hub-ca.crt"
    assert files.key.name == "hub-internal.key"
