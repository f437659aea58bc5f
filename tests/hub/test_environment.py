"""``hub.environment``: the proxies and CA bundle requests takes from the environment.

The command-line test (tests/test_hardening.py) shows a bad one is exit 2 before anything
is sent; this table pins which values are refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from idle_cull.errors import ConfigError
from idle_cull.hub.environment import check_ca_bundle, check_proxies


@pytest.mark.parametrize(
    "proxies",
    [
        pytest.param({}, id="none"),
        pytest.param({"http": "http://proxy.test:3128"}, id="http"),
        pytest.param({"https": "proxy.test:3128"}, id="no-scheme"),
        pytest.param({"all": "socks5h://proxy.test:1080"}, id="socks"),
        pytest.param({"no": "hub.test, :: not a url"}, id="no-proxy-is-a-host-list"),
        pytest.param({"http": ""}, id="empty-is-unset"),
    ],
)
def test_proxies_requests_can_use_pass(proxies: dict[str, str]) -> None:
    check_proxies(proxies)


@pytest.mark.parametrize(
    "proxy",
    [
        pytest.param("http://proxy.test:port", id="bad-port"),
        pytest.param("ftp://proxy.test:21", id="unknown-scheme"),
        pytest.param("http://", id="no-host"),
        pytest.param("http://proxy.test:3128 ", id="trailing-space"),
        # urllib3 parses this one; only the whitespace check refuses it
        pytest.param("http://proxy.test/ ", id="trailing-space-after-path"),
    ],
)
def test_a_proxy_requests_cannot_use_is_a_config_error(proxy: str) -> None:
    with pytest.raises(ConfigError, match=r"the proxy .* for https .* is not a valid proxy URL"):
        check_proxies({"https": proxy})


def test_a_proxy_password_is_not_shown() -> None:
    with pytest.raises(ConfigError) as refused:
        check_proxies({"http": "http://user:s3cret@proxy.test:port"})
    assert "s3cret" not in str(refused.value)


def test_a_missing_ca_bundle_is_refused_for_https_only(tmp_path: Path) -> None:
    missing = str(tmp_path / "ca.pem")
    with pytest.raises(ConfigError, match=r"the CA bundle .* does not exist"):
        check_ca_bundle(missing, "https://hub.test/hub/api")
    check_ca_bundle(missing, "http://hub.test/hub/api")  # plain http never reads it
    check_ca_bundle(True, "https://hub.test/hub/api")  # no bundle named: the default store
    (tmp_path / "ca.pem").write_text("")
    check_ca_bundle(missing, "https://hub.test/hub/api")
