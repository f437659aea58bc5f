"""The optional state directory (``--state-dir``): probe tokens kept from one pass to the next.

Every probe sends a token of the probed server's own user (``probe_tokens``). Without a
state directory each pass mints one per probed user (about 6 ms of hub CPU) and the
user's server checks the new token with the hub (about 3.6 ms, the floor of any probe).
Kept here, a token is minted once per lifetime and, while jupyterhub-singleuser's token
cache (5 minutes) still holds it, not even checked again.

What is kept, per hub: one JSON file named after a hash of the hub's URL (so one
directory used for two hubs never mixes them; the URL is also inside and checked), holding
for each user the secret, the one scope it was minted with and when it expires on the
wall clock (UTC: monotonic time does not survive the process).

Safety: the tokens open users' servers, so

- the directory must be a real directory (not a symbolic link) owned by this process's
  uid and closed to everyone else (0700); a missing one is created 0700. Anything else
  is a configuration error before anything is sent (``check_state_dir``);
- the file is read without following a link, only if it is a regular file of ours,
  closed to others, and at most ``MAX_STATE_BYTES``; it is written once at the end of a
  pass, atomically (a temporary file in the same directory, mode 0600, then a rename):
  two overlapping passes cannot corrupt it, the last writer wins;
- anything wrong with the file (corrupt, foreign, huge, wrong-typed, another hub's) is
  one warning and the pass mints as if there were no file: the state file can never
  fail a pass. No message quotes the file's content.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from idle_cull.errors import ConfigError
from idle_cull.safe_files import NotRegularFile, open_regular

__all__ = [
    "MAX_STATE_BYTES",
    "STATE_VERSION",
    "StoredToken",
    "TokenState",
    "check_state_dir",
    "current_uid",
    "read_state",
    "state_file_name",
]

log = logging.getLogger(__name__)

STATE_VERSION = 1
# A user's entry is about 200 bytes: 4 MiB holds some 20,000 users, more than any pass
# probes; a larger file is not one of ours.
MAX_STATE_BYTES = 4 * 1024 * 1024
MAX_SECRET_LENGTH = 256  # as probe_tokens: a hub token is 32 hex characters
MAX_USER_LENGTH = 1024


def current_uid() -> int:
    """This process's effective uid (a function, so tests can pretend to be someone else)."""
    return os.geteuid()


@dataclass(frozen=True)
class StoredToken:
    """One user's probe token as kept between passes; ``expires_at`` is UTC."""

    secret: str
    scope: str
    expires_at: datetime


def check_state_dir(
    path: Path, hub_url: str | None = None, *, uid: Callable[[], int] | None = None
) -> None:
    """Refuse (``ConfigError``, exit 2) a state directory that is not safe to keep tokens in.

    A missing directory is created with mode 0700 (its parent must exist). One that is a
    symbolic link, not a directory, owned by another uid, open to the group or others,
    or not writable is refused with what to do about it; so is a symbolic link in place of
    ``hub_url``'s state file (only this uid or root could have put it there, on purpose:
    writing would replace it, reading would follow it elsewhere). Anything else odd about
    the file is for ``TokenState.load`` to warn about.
    """
    flag = f"--state-dir {path}"
    uid = uid or current_uid
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as error:
        raise ConfigError(
            f"cannot create {flag}: {error.strerror} (its parent directory must exist and be "
            "writable)"
        ) from None
    try:
        info = os.lstat(path)
    except OSError as error:
        raise ConfigError(f"cannot use {flag}: {error.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise ConfigError(f"{flag} is a symbolic link; give the real directory's path")
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{flag} is not a directory; give a directory (created 0700 if missing)")
    if info.st_uid != uid():
        raise ConfigError(
            f"{flag} is owned by uid {info.st_uid}, not by uid {uid()} that runs idle-cull; "
            "it keeps tokens that open users' servers: use a directory of this user's own"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ConfigError(
            f"{flag} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}); it keeps "
            f"tokens that open users' servers: chmod 700 {path}"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} is not writable by idle-cull: chmod 700 {path}")
    if hub_url is not None:
        state_file = path / state_file_name(hub_url)
        if state_file.is_symlink():
            raise ConfigError(
                f"{state_file} is a symbolic link; idle-cull keeps its own file there: "
                "remove the link"
            )


def _hub_key(hub_url: str) -> str:
    """The hub's URL as the state knows it: without credentials or a trailing slash."""
    scheme, netloc, path, query, fragment = urlsplit(hub_url)
    host = netloc.rpartition("@")[2]
    return urlunsplit((scheme, host, path, query, fragment)).rstrip("/")


def state_file_name(hub_url: str) -> str:
    """One file per hub, named after its URL, so two hubs sharing a directory never mix."""
    digest = hashlib.sha256(_hub_key(hub_url).encode("utf-8")).hexdigest()[:16]
    return f"probe-tokens-{digest}.json"


def _usable_secret(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_SECRET_LENGTH
        and value.isascii()
        and value.isprintable()
        and not any(c.isspace() for c in value)
    )


def _probe_scope_of(scope: object, user: str) -> bool:
    """Whether ``scope`` is one ``probe_tokens`` mints for ``user``: nothing else is reused."""
    return scope in (f"access:servers!user={user}",) or (
        isinstance(scope, str) and scope.startswith(f"access:servers!server={user}/")
    )


def _expiry(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def read_state(data: Any, hub_url: str, now: datetime) -> dict[str, StoredToken]:
    """The tokens a parsed state file holds for ``hub_url`` that have not expired at ``now``.

    Raises ``ValueError`` saying what is wrong (never quoting a value) when the document
    is not one this module writes for this hub: then none of it is trusted.
    """
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object")
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"it is not a version {STATE_VERSION} state file")
    if data.get("hub") != _hub_key(hub_url):
        raise ValueError("it belongs to another hub URL")
    entries = data.get("tokens")
    if not isinstance(entries, dict):
        raise ValueError("its tokens are not a JSON object")
    tokens: dict[str, StoredToken] = {}
    for user, entry in entries.items():
        if not isinstance(entry, dict) or not 0 < len(user) <= MAX_USER_LENGTH:
            raise ValueError("an entry is not a stored token")
        secret, scope, expires_at = entry.get("token"), entry.get("scope"), entry.get("expires_at")
        moment = _expiry(expires_at)
        if not (
            isinstance(secret, str)
            and isinstance(scope, str)
            and _usable_secret(secret)
            and _probe_scope_of(scope, user)
            and moment is not None
        ):
            raise ValueError("an entry is not a stored token")
        if moment > now:
            tokens[user] = StoredToken(secret, scope, moment)
    return tokens


def state_document(tokens: Mapping[str, StoredToken], hub_url: str, now: datetime) -> str:
    """The file's text: the tokens that have not expired at ``now``, for ``hub_url``."""
    kept = {
        user: {
            "token": token.secret,
            "scope": token.scope,
            "expires_at": token.expires_at.astimezone(timezone.utc).isoformat(),
        }
        for user, token in sorted(tokens.items())
        if token.expires_at > now
    }
    return json.dumps({"version": STATE_VERSION, "hub": _hub_key(hub_url), "tokens": kept})


class TokenState:
    """The state file of one hub in a checked ``--state-dir``: ``load`` and ``save`` never raise."""

    def __init__(
        self, directory: Path, hub_url: str, *, uid: Callable[[], int] | None = None
    ) -> None:
        self.path = directory / state_file_name(hub_url)
        self._hub_url = hub_url
        self._uid = uid or current_uid

    def load(self, now: datetime) -> dict[str, StoredToken]:
        """The stored tokens still alive at ``now``; none (and one warning) when the file
        cannot be trusted."""
        try:
            content = self._read()
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            self._ignore(str(error))
            return {}
        try:
            data = json.loads(content)
        except RecursionError:
            self._ignore("it is nested too deeply to be a state file")
            return {}
        except ValueError:  # UnicodeDecodeError and JSONDecodeError included
            self._ignore("it is not valid JSON")
            return {}
        try:
            return read_state(data, self._hub_url, now)
        except ValueError as error:
            self._ignore(str(error))
            return {}

    def _read(self) -> bytes:
        """The file's bytes, if it is a regular file of ours that others cannot read."""
        try:
            descriptor = open_regular(self.path, os.O_RDONLY, follow=False)
        except NotRegularFile:
            raise ValueError("it is not a regular file") from None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise ValueError("it is a symbolic link") from None
            if error.errno == errno.ENOENT:
                raise FileNotFoundError(error.errno, error.strerror) from None
            raise ValueError(f"it cannot be read ({error.strerror})") from None
        with os.fdopen(descriptor, "rb") as file:
            info = os.fstat(file.fileno())
            if info.st_uid != self._uid():
                raise ValueError(f"it is owned by uid {info.st_uid}, not by this process's")
            if stat.S_IMODE(info.st_mode) & 0o077:
                raise ValueError("other users may read or change it")
            content = file.read(MAX_STATE_BYTES + 1)
        if len(content) > MAX_STATE_BYTES:
            raise ValueError(f"it is larger than {MAX_STATE_BYTES:,} bytes")
        return content

    def _ignore(self, why: str) -> None:
        log.warning(
            "ignoring the probe-token state file %s: %s; new probe tokens are minted and "
            "it is replaced at the end of the pass (remove it if this repeats)",
            self.path,
            why,
        )

    def save(self, tokens: Mapping[str, StoredToken], now: datetime) -> None:
        """Replace the file with ``tokens`` (expired ones dropped) in one rename; a failure
        is one warning: the next pass then mints again."""
        text = state_document(tokens, self._hub_url, now)
        directory = self.path.parent
        try:
            descriptor, temp_name = tempfile.mkstemp(
                dir=directory, prefix=".probe-tokens-", suffix=".tmp"
            )  # mode 0600, never through a link (O_EXCL)
        except OSError as error:
            self._not_saved(error)
            return
        try:
            with os.fdopen(descriptor, "wb") as temp:
                os.fchmod(temp.fileno(), 0o600)
                temp.write(text.encode("utf-8"))
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, self.path)  # replaces a link itself, never its target
        except OSError as error:
            with suppress(OSError):
                os.unlink(temp_name)
            self._not_saved(error)

    def _not_saved(self, error: OSError) -> None:
        log.warning(
            "could not save probe tokens to %s: %s; the next pass mints new ones (check "
            "--state-dir's space and permissions)",
            self.path,
            error.strerror or type(error).__name__,
        )
