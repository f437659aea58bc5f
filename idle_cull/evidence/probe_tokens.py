"""Probe tokens: what a kernel probe sends instead of the culler's own token.

A probe goes through the proxy to a user's own server, which runs code the user
controls: whatever listens there reads the ``Authorization`` header. So the culler's
token (which may list users, stop every server and more) never goes there. For each
user whose server is probed, ``ProbeTokens`` asks the hub for a new token *owned by that
user* (``POST /users/{name}/tokens``), scoped to that user's servers only and expiring
after ``lifetime`` seconds, and the probe sends that one. The hub refuses scopes the user
does not hold, so the token can do nothing the user could not already do to their own
server. It needs the ``tokens`` scope on the culler's role, which never leaves this machine.

- One token per user per pass: ``access:servers!server=<user>/<server>`` when the pass
  may probe one server of the user, ``access:servers!user=<user>`` when several. It is
  kept in memory only, for the pass; a token about to expire is replaced (a user whose
  probes spread over longer than ``lifetime`` gets a second one).
- Not revoked: a revoke costs the hub about as much as the mint (measured on 6.1.1:
  5.9 ms of hub CPU to mint, 4.65 ms to revoke), the token expires within ``lifetime``
  seconds, and the hub purges expired tokens hourly (``purge_expired_tokens_interval``).
  Until it expires it opens only a server its owner already controls.
- What the hub answers is checked before anything is sent: a token whose ``scopes`` are
  missing (JupyterHub before 3.0 ignores requested scopes and gives the user's whole
  ``token`` role) or reach beyond the user's own servers is never used.
- The secret is never logged or put in a reason; failures name the user, not the token.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from idle_cull.errors import HubError, HubProtocolError, TokenLifetimeTooLong
from idle_cull.evidence.base import Target
from idle_cull.rules.busy_kernels import ProbeResult

__all__ = [
    "MIN_LIFETIME",
    "PROBE_TOKEN_NOTE",
    "ExpectedServers",
    "ProbeTarget",
    "ProbeTokens",
    "ProbeWithUserToken",
    "probe_scope",
    "token_lifetime",
]

log = logging.getLogger(__name__)

PROBE_TOKEN_NOTE = "idle-cull probe"  # shown in the user's token list on the hub
MIN_LIFETIME = 60  # seconds: a probe token never lives shorter than this (unless capped)
MAX_TOKEN_LENGTH = 256  # a hub token is 32 hex characters; anything huge is not one


@dataclass(frozen=True)
class ProbeTarget:
    """One server to probe, with the user's servers this pass may probe (for the scope)."""

    user: str
    server: str  # "" for the default server
    url: str | None  # the server model's url, e.g. /user/ann/
    probed_servers: frozenset[str]  # this user's servers the pass may probe, ``server`` included


class ExpectedServers:
    """The servers of each user a source may ask about in this pass, for the token's
    scope: a user with several of them gets one token for all (``probe_scope``);
    thread-safe. Every source that reads users' servers keeps one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expected: dict[str, frozenset[str]] = {}  # user -> servers it may be asked

    def expect(self, targets: Iterable[Target]) -> None:
        """The servers a source is about to ask about, before the first request."""
        servers: dict[str, set[str]] = {}
        for target in targets:
            servers.setdefault(target.user, set()).add(target.server)
        with self._lock:
            self._expected = {user: frozenset(names) for user, names in servers.items()}

    def target_for(self, target: Target) -> ProbeTarget:
        """``target`` as a ``ProbeTarget``, with its user's expected servers."""
        with self._lock:
            expected = self._expected.get(target.user, frozenset())
        return ProbeTarget(target.user, target.server, target.url, expected | {target.server})


class TokenMinter(Protocol):
    """What ``ProbeTokens`` asks of the hub (``HubClient.new_token``)."""

    def new_token(
        self, user: str, *, scopes: list[str], expires_in: int, note: str
    ) -> dict[str, Any]: ...


def token_lifetime(probe_timeout: float, attempts: int) -> int:
    """Seconds a probe token lives: three times what one probe of its user may take
    (every attempt timing out), and at least ``MIN_LIFETIME``."""
    return max(MIN_LIFETIME, math.ceil(3 * probe_timeout * max(1, attempts)))


def probe_scope(target: ProbeTarget) -> str:
    """The one scope a probe token holds: the probed server, or the user's servers when
    the pass may probe several of them (one token per user per pass)."""
    if target.probed_servers <= {target.server}:
        return f"access:servers!server={target.user}/{target.server}"
    return f"access:servers!user={target.user}"


def _within_user(scope: str, user: str) -> bool:
    """Whether a scope the hub reports on a minted token is filtered to ``user``'s own
    things (the hub adds ``read:users:name!user=<user>`` and the like)."""
    _, _, scope_filter = scope.partition("!")
    return scope_filter == f"user={user}" or scope_filter.startswith(f"server={user}/")


def checked_secret(model: dict[str, Any], user: str) -> str:
    """The secret of a minted token, once its model shows it is confined to ``user``.

    Raises ``HubProtocolError`` (the probe of that server fails) for a model without a
    usable token, without ``scopes`` (JupyterHub before 3.0) or with a scope beyond the
    user's own servers. The message never contains the token.
    """
    secret = model.get("token")
    if (
        not isinstance(secret, str)
        or not secret
        or len(secret) > MAX_TOKEN_LENGTH
        or not secret.isascii()
        or not secret.isprintable()
        or any(c.isspace() for c in secret)
    ):
        raise HubProtocolError(f"the hub's answer to minting a token for {user!r} has no token")
    scopes = model.get("scopes")
    if not isinstance(scopes, list) or not scopes:
        raise HubProtocolError(
            f"the token minted for {user!r} reports no scopes (JupyterHub before 3.0 "
            "ignores requested scopes); it is not used"
        )
    if not all(isinstance(scope, str) and _within_user(scope, user) for scope in scopes):
        raise HubProtocolError(
            f"the token minted for {user!r} holds scopes beyond that user's own servers; "
            "it is not used"
        )
    return secret


@dataclass(frozen=True)
class _Minted:
    secret: str
    scope: str
    expires: float  # time.monotonic() when the token expires


class ProbeTokens:
    """One token per probed user per pass, minted on first need; thread-safe.

    Two probes of the same user's servers wait for one mint (a lock per user); probes of
    different users mint concurrently.
    """

    def __init__(
        self,
        minter: TokenMinter,
        lifetime: int,
        *,
        probe_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._minter = minter
        self._lifetime = lifetime
        self._probe_seconds = probe_seconds  # a token with less left than this is replaced
        self._clock = clock
        self._lock = threading.Lock()
        self._user_locks: dict[str, threading.Lock] = {}
        self._minted: dict[str, _Minted] = {}
        self.mints = 0  # tokens minted this pass (for the log and the benchmark)

    def token_for(self, target: ProbeTarget) -> str:
        """The secret to send to ``target``'s server; raises ``HubError`` when none can be had."""
        scope = probe_scope(target)
        with self._lock_of(target.user):
            held = self._minted.get(target.user)
            if held is not None and held.scope == scope and self._usable(held):
                return held.secret
            minted = self._mint(target.user, scope)
            self._minted[target.user] = minted
            return minted.secret

    def _lock_of(self, user: str) -> threading.Lock:
        with self._lock:
            return self._user_locks.setdefault(user, threading.Lock())

    def _usable(self, held: _Minted) -> bool:
        return held.expires - self._clock() > self._probe_seconds

    def _mint(self, user: str, scope: str) -> _Minted:
        lifetime = self._lifetime
        asked = self._clock()
        try:
            model = self._new_token(user, scope, lifetime)
        except TokenLifetimeTooLong as error:
            # The hub's admin caps token lifetimes: ask for its cap, for the rest of the pass.
            if error.limit < 1:
                raise
            with self._lock:
                self._lifetime = lifetime = min(self._lifetime, error.limit)
            log.info("%s; asking for %ds instead", error, lifetime)
            model = self._new_token(user, scope, lifetime)
        secret = checked_secret(model, user)
        with self._lock:
            self.mints += 1
        return _Minted(secret, scope, asked + lifetime)

    def _new_token(self, user: str, scope: str, lifetime: int) -> dict[str, Any]:
        return self._minter.new_token(
            user, scopes=[scope], expires_in=lifetime, note=PROBE_TOKEN_NOTE
        )


class KernelProber(Protocol):
    """What ``ProbeWithUserToken`` asks of the probe (``kernels.KernelProbe``)."""

    def probe(self, server_url: str | None, token: Callable[[], str]) -> ProbeResult: ...


class ProbeWithUserToken:
    """The prober ``KernelSource`` calls: the server's owner's token, then the probe with it.

    The token is asked for only once the server's url has passed the probe's checks, so
    a server that will not be asked costs no mint. A token that cannot be had fails the
    probe of that server only, with the hub's reason.
    """

    def __init__(self, kernels: KernelProber, tokens: ProbeTokens) -> None:
        self._kernels = kernels
        self._tokens = tokens

    def __call__(self, target: ProbeTarget) -> ProbeResult:
        try:
            return self._kernels.probe(target.url, lambda: self._tokens.token_for(target))
        except HubError as error:
            return ProbeResult.failed_with(f"no probe token: {error}", attempts=0)
