"""``settings(**overrides)``: a ``Settings`` built directly, for tests of what reads one.

Tests of the boundary, the settings' own checks and the users' loop need a whole, valid
``Settings`` without going through the command line; every field not overridden keeps its
default, the hub is a local URL nothing listens on and the token a placeholder.
"""

from __future__ import annotations

from idle_cull.command.settings import Settings
from idle_cull.rules.policy import CullLimits

__all__ = ["URL", "settings"]

URL = "http://127.0.0.1:8081/hub/api"


def settings(**overrides: object) -> Settings:
    fields: dict[str, object] = {"url": URL, "token": "t0ken-for-tests", "limits": CullLimits()}
    fields.update(overrides)
    return Settings(**fields)  # type: ignore[arg-type]
