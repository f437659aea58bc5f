"""Which environment variables of the developer's shell could change what a test sees.

``tests/conftest.py`` removes them for every test; ``tests/test_clean_environment.py``
plants them and checks that none gets through.
"""

from __future__ import annotations

CLEARED_PREFIXES = ("JUPYTERHUB_", "IDLE_CULL_")
# compared in upper case: requests and curl read http_proxy as well as HTTP_PROXY
CLEARED_NAMES = frozenset(
    {
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "CONFIGPROXY_AUTH_TOKEN",  # --probe-via=route-target's proxy token
    }
)


def is_shell_influence(name: str) -> bool:
    """Whether an environment variable could change what idle-cull, requests or the hub does."""
    return name.startswith(CLEARED_PREFIXES) or name.upper() in CLEARED_NAMES
