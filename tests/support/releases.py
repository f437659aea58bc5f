"""The JupyterHub releases the real-hub tests run against, read from ``hub_releases.txt``.

Each release lives in its own virtual environment, ``.venv/hubs/<release>/``, built by
``scripts/install`` from the same file; the culler itself always runs from the project's
``.venv``, exactly as it would against a remote hub. Keeping the list in a plain text file
lets the shell installer and the Python harness share it without either importing the other.
pytest's ``--hub-release`` (tests/conftest.py) picks one; the default is the newest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SUPPORT_DIR = Path(__file__).resolve().parent
RELEASES_FILE = SUPPORT_DIR / "hub_releases.txt"
HUBS_DIR = SUPPORT_DIR.parent.parent / ".venv" / "hubs"
INSTALL_HINT = "./scripts/install"


class UnknownRelease(ValueError):
    """A release was asked for that ``hub_releases.txt`` does not declare."""


@dataclass(frozen=True)
class HubRelease:
    """One line of ``hub_releases.txt``: a short name and the pip requirements behind it."""

    name: str
    requirements: tuple[str, ...]

    @property
    def venv(self) -> Path:
        return HUBS_DIR / self.name

    @property
    def version_info(self) -> tuple[int, ...]:
        """``jupyterhub==2.3.1`` -> ``(2, 3, 1)``: known before the hub starts."""
        for requirement in self.requirements:
            name, _, version = requirement.partition("==")
            if name.lower() == "jupyterhub" and version:
                return tuple(int(part) for part in version.split(".")[:3])
        raise ValueError(f"release {self.name} does not pin jupyterhub==X.Y.Z")

    @property
    def jupyterhub(self) -> Path:
        """The ``jupyterhub`` console script of this release's venv."""
        return self.venv / "bin" / "jupyterhub"


def parse_releases(text: str) -> list[HubRelease]:
    """Lines of ``release requirement...``; ``#`` comments and blank lines are skipped."""
    releases = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, *requirements = line.split()
        if not requirements:
            raise ValueError(f"{RELEASES_FILE.name}:{number}: release {name} has no requirements")
        releases.append(HubRelease(name, tuple(requirements)))
    if not releases:
        raise ValueError(f"{RELEASES_FILE.name} declares no release")
    return releases


def all_releases() -> list[HubRelease]:
    """Every declared release, oldest first, as the file lists them."""
    return parse_releases(RELEASES_FILE.read_text())


def default_release() -> HubRelease:
    """The release the whole integration suite runs against: the file's last line."""
    return all_releases()[-1]


def find_release(name: str | None) -> HubRelease:
    """The release called ``name`` (``None``: the default), or ``UnknownRelease``."""
    if name is None:
        return default_release()
    releases = all_releases()
    for release in releases:
        if release.name == name:
            return release
    known = ", ".join(r.name for r in releases)
    raise UnknownRelease(f"unknown JupyterHub release {name!r}; {RELEASES_FILE.name} has {known}")
