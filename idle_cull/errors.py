"""Every exception idle-cull raises on purpose, in one tree.

``command.boundary.exit_status_for`` is the one place that turns an exception into an exit status
(the right-hand column). Every message is meant to be read by an operator at 3 a.m.: it
says what is wrong and what to do about it, and never contains the API token.

    IdleCullError
    ├── ConfigError ............. bad option, environment or file: USAGE (2)
    │   └── MetricsUnavailable .. a metrics option without prometheus-client: USAGE (2)
    ├── HubError ................ the hub could not be used: HUB_UNUSABLE (3)
    │   ├── HubAuthError ........ 401/403, the token lacks a scope
    │   ├── HubUnavailable ...... unreachable, timeouts, 5xx after retries
    │   ├── HubProtocolError .... an answer that is not the JupyterHub API
    │   ├── TokenLifetimeTooLong  a probe token asked to live longer than the hub allows
    │   └── RoutesUnavailable ... the proxy's routing table could not be read
    │                             (--probe-via=route-target)
    ├── PassInterrupted ......... deadline or signal before acting: ACTION_FAILED (1)
    ├── LockHeld ................ another pass holds --lock-file: LOCKED (75)
    ├── ClocksDisagree .......... hub and local clocks far apart: CLOCKS_DISAGREE (6)
    └── OutputError ............. a report or metrics file not written: OUTPUT_FAILED (5)
        └── PushgatewayError .... the Pushgateway refused or was unreachable
"""

from __future__ import annotations

__all__ = [
    "ClocksDisagree",
    "ConfigError",
    "HubAuthError",
    "HubError",
    "HubProtocolError",
    "HubUnavailable",
    "IdleCullError",
    "LockHeld",
    "MetricsUnavailable",
    "OutputError",
    "PassInterrupted",
    "PushgatewayError",
    "RoutesUnavailable",
    "TokenLifetimeTooLong",
]


class IdleCullError(Exception):
    """Base class for every error this tool reports without a traceback."""


class ConfigError(IdleCullError):
    """The command line, environment or a referenced file is wrong; nothing was sent."""


class HubError(IdleCullError):
    """The hub could not be used as asked.

    ``attempts`` counts the requests made before giving up, so that a report can say
    whether retries were spent.
    """

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class HubAuthError(HubError):
    """401 or 403: the token is wrong or lacks a scope (the message names it)."""


class HubUnavailable(HubError):
    """Unreachable, timing out, or answering 5xx after the retries ran out."""


class HubProtocolError(HubError):
    """The hub answered something that is not the JupyterHub REST API we know."""


class TokenLifetimeTooLong(HubError):
    """The hub caps the lifetime of new tokens (``token_expires_in_max_seconds``, from
    JupyterHub 5.0) below the one asked for; ``limit`` is its cap in seconds (0: unknown)."""

    def __init__(self, message: str, *, limit: int = 0, attempts: int = 1) -> None:
        super().__init__(message, status=400, attempts=attempts)
        self.limit = limit


class RoutesUnavailable(HubError):
    """``--probe-via=route-target``: the proxy's routing table could not be read
    (unreachable, its token refused, or an answer that is not configurable-http-proxy's).

    A ``HubError`` (exit 3, as for the hub itself: unreachable or a refused credential
    alike): the proxy is part of the deployment the pass needs, and the table is read
    before anything is acted on. A missing proxy token is a ``ConfigError`` instead.
    """


class ClocksDisagree(IdleCullError):
    """The hub's clock and this machine's differ too much to measure idleness on either.

    Raised before anything is acted on, only when ``--clock`` was left at its default.
    """


class PassInterrupted(IdleCullError):
    """The deadline passed or a signal came before anything was acted on."""


class LockHeld(IdleCullError):
    """Another pass holds the lock; this one must not run (exit 75, EX_TEMPFAIL)."""


class OutputError(IdleCullError):
    """A report or metrics file could not be written; the pass itself already ran.

    The message names the path, so the operator knows which option to fix.
    """


class PushgatewayError(OutputError):
    """The Pushgateway could not be reached or refused the metrics."""


class MetricsUnavailable(ConfigError):
    """A metrics option was given but the optional ``prometheus-client`` is missing.

    A ``ConfigError``: it is a fault of the installation, found before anything is sent.
    """
