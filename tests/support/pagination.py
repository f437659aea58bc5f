"""JupyterHub's page arithmetic for ``GET /users``, written once for every emulated hub.

The `responses` hub (``emulated_hub``), its population of users with server states, the
``HubClient`` tests and the benchmarks' HTTP hub (``tests/benchmarks/hub_server.py``) all
page the same way, so a correction to how JupyterHub pages is made here and reaches them
all. Pure functions: no HTTP, no `responses`, so the benchmark server stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

# JupyterHub's api_page_default_limit and api_page_max_limit
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def page_window(
    query: Mapping[str, str],
    *,
    default: int = DEFAULT_PAGE_SIZE,
    cap: int = MAX_PAGE_SIZE,
    paginated: bool = True,
) -> tuple[int, int]:
    """The ``(offset, limit)`` JupyterHub's ``get_api_pagination`` answers for a query.

    Signs are dropped and ``limit`` is clamped to ``1..cap``; without a ``limit`` the
    default applies, which is the cap for a client that did not ask for pagination (a
    plain list). A value that is not an integer raises ``ValueError`` (the hub: 400).
    """
    offset = abs(int(query.get("offset") or 0))
    limit = abs(int(query.get("limit") or (default if paginated else cap)))
    return offset, max(1, min(limit, cap))


def following_offset(offset: int, limit: int, total: int) -> int | None:
    """The offset JupyterHub offers as ``next``: only while ``offset + limit < total``."""
    return offset + limit if offset + limit < total else None


def users_page(
    items: Sequence[Any],
    offset: int,
    limit: int,
    url: str,
    *,
    total: int | None = None,
    next_offset: int | None = None,
    query: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One ``GET /users`` answer of JupyterHub 2.0 and later.

    Without ``total``, ``items`` is the whole query and the page is cut from it. With
    ``total``, ``items`` is the page as the hub cut (and perhaps filtered) it and
    ``total`` what its query counted. ``next_offset`` overrides the ``next`` the hub
    would offer, for a hub that misbehaves. ``next.url`` is built on ``url`` (a hub
    behind a proxy names its internal host) and repeats ``query``'s other parameters.
    """
    if total is None:
        total = len(items)
        items = items[offset : offset + limit]
    if next_offset is None:
        next_offset = following_offset(offset, limit, total)
    following = None
    if next_offset is not None:
        params = {**(query or {}), "offset": next_offset, "limit": limit}
        following = {
            "offset": next_offset,
            "limit": limit,
            "url": f"{url}/users?{urlencode(params)}",
        }
    return {
        "items": list(items),
        "_pagination": {"offset": offset, "limit": limit, "total": total, "next": following},
    }
