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

With a state directory (``--state-dir``, ``token_state``) tokens are minted to live
``STORED_LIFETIME`` and kept from one pass to the next: a stored token is reused for the
user it was minted for, when its scope covers the one needed (the same scope, or the
user-wide one) and it has more life left than a probe of that user may take. One the
server refuses (revoked, the user recreated, the hub's database reset) is replaced once
(``RenewableToken``, retried by ``server_api``). Stored tokens are saved once, at the end
of the pass.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from idle_cull.errors import HubError, HubProtocolError, TokenLifetimeTooLong
from idle_cull.evidence.base import Target
from idle_cull.evidence.token_state import StoredToken, TokenState

__all__ = [
    "MIN_LIFETIME",
    "PROBE_TOKEN_NOTE",
    "STORED_LIFETIME",
    "ExpectedServers",
    "ProbeTarget",
    "ProbeTokens",
    "RenewableToken",
    "probe_scope",
    "token_lifetime",
]

log = logging.getLogger(__name__)

PROBE_TOKEN_NOTE = "idle-cull probe"  # shown in the user's token list on the hub
MIN_LIFETIME = 60  # seconds: a probe token never lives shorter than this (unless capped)
MAX_TOKEN_LENGTH = 256  # a hub token is 32 hex characters; anything huge is not one
# Seconds a token kept in --state-dir lives: passes scheduled every 5-30 minutes reuse it
# for 2-12 passes (one mint an hour per probed user instead of one a pass), while a
# leaked state file opens users' servers for an hour at most. The hub's cap
# (token_expires_in_max_seconds) lowers it; passes further apart than this reuse nothing.
STORED_LIFETIME = 3600


class RenewableToken(str):
    """A user's probe token kept from an earlier pass (``--state-dir``), which the hub may
    have revoked since (a deleted user, a reset database).

    It is the secret itself (sources pass it on like any token), plus the way to a new one:
    ``replacement`` is the token that already replaced it (a refused token is then never
    sent again), ``renewed`` mints that replacement once the server refused this one.
    Both come from ``ProbeTokens``, which keeps one replacement per refused
    token, so a refused token costs one mint and each request one retry at most.
    """

    def __new__(cls, secret: str, **_: Callable[[], str | None]) -> RenewableToken:
        return super().__new__(cls, secret)

    def __init__(
        self,
        secret: str,
        *,
        replacement: Callable[[], str | None],
        renewed: Callable[[], str | None],
    ) -> None:
        super().__init__()
        self._replacement = replacement
        self._renewed = renewed

    def replacement(self) -> str | None:
        return self._replacement()

    def renewed(self) -> str | None:
        return self._renewed()


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
    expires_at: datetime  # the same moment on the wall clock (UTC), for the state file
    kept: bool = False  # loaded from the state file: the server may refuse it


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _covers(held: str, needed: str, user: str) -> bool:
    """Whether a token minted with scope ``held`` can be sent where ``needed`` is: the same
    scope, or the user-wide one (every server of the user, the needed one included)."""
    return held in (needed, f"access:servers!user={user}")


def _hub_expiry(model: dict[str, Any]) -> datetime | None:
    """The hub's ``expires_at`` of a minted token (UTC), when it gives a usable one."""
    value = model.get("expires_at")
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


class ProbeTokens:
    """One token per probed user per pass, minted on first need (or kept from an earlier
    pass with ``state``); thread-safe.

    Two probes of the same user's servers wait for one mint (a lock per user); probes of
    different users mint concurrently. With ``state``, the tokens it holds are loaded at
    once (before anything is sent) and ``save`` writes them back at the end of the pass.
    """

    def __init__(
        self,
        minter: TokenMinter,
        lifetime: int,
        *,
        probe_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        state: TokenState | None = None,
        wall: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._minter = minter
        self._lifetime = lifetime
        self._probe_seconds = probe_seconds  # a token with less left than this is replaced
        self._clock = clock
        self._wall = wall
        self._state = state
        self._lock = threading.Lock()
        self._user_locks: dict[str, threading.Lock] = {}
        self._minted: dict[str, _Minted] = {}
        self._replaced: dict[str, str] = {}  # refused kept secret -> the one minted instead
        self._changed = False
        self.mints = 0  # tokens minted this pass (for the log and the benchmark)
        self.reused = 0  # probes of users whose token was kept from an earlier pass
        if state is not None:
            self._minted = self._loaded(state.load(wall()))

    def _loaded(self, stored: dict[str, StoredToken]) -> dict[str, _Minted]:
        """Stored tokens on this process's monotonic clock too, marked as kept."""
        now, wall = self._clock(), self._wall()
        return {
            user: _Minted(
                token.secret,
                token.scope,
                now + (token.expires_at - wall).total_seconds(),
                token.expires_at,
                kept=True,
            )
            for user, token in stored.items()
        }

    def token_for(self, target: ProbeTarget) -> str:
        """The secret to send to ``target``'s server; raises ``HubError`` when none can be had."""
        scope = probe_scope(target)
        with self._lock_of(target.user):
            held = self._minted.get(target.user)
            if held is not None and _covers(held.scope, scope, target.user) and self._usable(held):
                return self._sent(target.user, held)
            minted = self._mint(target.user, scope)
            with self._lock:  # save() copies the dict under it, maybe while probes run on
                self._minted[target.user] = minted
            return minted.secret

    def _sent(self, user: str, held: _Minted) -> str:
        """A held token as sent: one kept from an earlier pass can be replaced if refused."""
        if not held.kept:
            return held.secret
        with self._lock:
            self.reused += 1
        return RenewableToken(
            held.secret,
            replacement=lambda: self._replacement_of(held.secret),
            renewed=lambda: self._renewed(user, held.secret, held.scope),
        )

    def _replacement_of(self, secret: str) -> str | None:
        with self._lock:
            return self._replaced.get(secret)

    def _renewed(self, user: str, refused: str, scope: str) -> str | None:
        """A new token for ``user`` after a server refused the kept ``refused``: minted once
        (later refusals of the same token get the same one); ``None`` when none can be had,
        and the refusal then stands."""
        with self._lock_of(user):
            replacement = self._replacement_of(refused)
            if replacement is not None:
                return replacement
            try:
                minted = self._mint(user, scope)
            except HubError as error:
                log.warning("a server refused the kept probe token of %r: %s", user, error)
                return None
            with self._lock:
                self._minted[user] = minted
                self._replaced[refused] = minted.secret
            return minted.secret

    def save(self) -> None:
        """Write the tokens held now to the state file, if anything changed; never raises."""
        if self._state is None:
            return
        log.info(
            "probe tokens: %d minted, %d uses of tokens kept in --state-dir",
            self.mints,
            self.reused,
        )
        if not self._changed:
            return
        with self._lock:
            held = dict(self._minted)
        stored = {
            user: StoredToken(minted.secret, minted.scope, minted.expires_at)
            for user, minted in held.items()
        }
        self._state.save(stored, self._wall())

    def _lock_of(self, user: str) -> threading.Lock:
        with self._lock:
            return self._user_locks.setdefault(user, threading.Lock())

    def _usable(self, held: _Minted) -> bool:
        return held.expires - self._clock() > self._probe_seconds

    def _mint(self, user: str, scope: str) -> _Minted:
        lifetime = self._lifetime
        asked, asked_at = self._clock(), self._wall()
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
            self._changed = True
        # On the wall clock, the earlier of our own reckoning and the hub's expires_at: a
        # hub whose clock runs ahead of ours must not make a token look longer-lived.
        expires_at = asked_at + timedelta(seconds=lifetime)
        hub_says = _hub_expiry(model)
        if hub_says is not None and hub_says < expires_at:
            expires_at = hub_says
        return _Minted(secret, scope, asked + lifetime, expires_at)

    def _new_token(self, user: str, scope: str, lifetime: int) -> dict[str, Any]:
        return self._minter.new_token(
            user, scopes=[scope], expires_in=lifetime, note=PROBE_TOKEN_NOTE
        )
