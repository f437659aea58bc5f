"""The exception tree; ``cli.main`` is the one place that turns it into an exit status.

Every message is meant to be read by an operator at 3 a.m.: it says what is wrong and
what to do about it, and never contains the API token.
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
    "MetricsUnavailable",
    "OutputError",
    "PushgatewayError",
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


class ClocksDisagree(IdleCullError):
    """The hub's clock and this machine's differ too much to measure idleness on either.

    Raised before anything is acted on, only when ``--clock`` was left at its default.
    """


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
