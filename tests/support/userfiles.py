"""Files in a real single-user server's root directory, and reading them as idle-cull does.

Composes ``tests/support/singleuser.py``'s ``SingleUserHub``: its servers run as the
hub's own user with ``<workdir>/home/<name>`` as their working (and so root) directory,
so a test can write a user's keep-alive file the way the user's terminal would, set its
modification time, or put a symlink or a directory in its place. ``read`` then reads it
through the real proxy with a token minted for that user (``probe_tokens``), exactly as a
pass does.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

from idle_cull.evidence.keep_alive import KeepAliveReader
from idle_cull.evidence.probe_tokens import ProbeTarget, ProbeTokens
from idle_cull.evidence.proxy_routes import through_proxy
from idle_cull.hub.client import HubClient
from idle_cull.rules.postponement import KEEP_ALIVE_FILE, Reading
from tests.support.singleuser import SingleUserHub

__all__ = ["UserFiles"]

TOKEN_LIFETIME = 120  # seconds: a test's reads take a few


class UserFiles:
    """The keep-alive files of ``hub``'s users, written directly and read through the proxy."""

    def __init__(self, hub: SingleUserHub, *, proxy_url: str | None = None) -> None:
        self.hub = hub
        self._client = HubClient(hub.hub.api_url, hub.hub.culler_token, request_timeout=30)
        self._tokens = ProbeTokens(self._client, TOKEN_LIFETIME, probe_seconds=5)
        self._reader = KeepAliveReader(through_proxy(proxy_url or hub.public_url), timeout=3)
        self.tokens_handed_out: list[str] = []

    def close(self) -> None:
        self._reader.close()
        self._client.close()

    def __enter__(self) -> UserFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def root(self, user: str) -> Path:
        """The user's server's root directory (the spawner's home directory)."""
        return self.hub.hub.workdir / "home" / user

    def path(self, user: str) -> Path:
        return self.root(user) / KEEP_ALIVE_FILE

    def clear(self, user: str) -> None:
        """No keep-alive file of any kind (file, symlink or directory)."""
        path = self.path(user)
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)

    def write(self, user: str, content: str | bytes, written: datetime | None = None) -> Path:
        """Write the file as ``echo ... > keep-alive.txt`` would; ``written`` sets its mtime."""
        self.clear(user)
        path = self.path(user)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
        if written is not None:
            stamp = written.timestamp()
            os.utime(path, (stamp, stamp))
        return path

    def symlink(self, user: str, target: Path, written: datetime | None = None) -> Path:
        """The keep-alive file as a symlink to ``target`` (anywhere); ``written`` sets the
        link's own mtime, which is what the contents API reports (it uses ``lstat``)."""
        self.clear(user)
        path = self.path(user)
        path.symlink_to(target)
        if written is not None:
            stamp = written.timestamp()
            os.utime(path, (stamp, stamp), follow_symlinks=False)
        return path

    def directory(self, user: str) -> Path:
        self.clear(user)
        path = self.path(user)
        path.mkdir()
        (path / "18:00").write_text("2h\n")
        return path

    def read(self, user: str, server: str = "") -> Reading:
        """Read ``user``'s keep-alive file through the proxy with a token minted for them."""
        model = self.hub.server_model(user, server)
        url = model.get("url") if model else f"/user/{user}/"
        target = ProbeTarget(user, server, url, frozenset({server}))

        def token() -> str:
            secret = self._tokens.token_for(target)
            self.tokens_handed_out.append(secret)
            return secret

        return self._reader.read(target, token)
