"""The ``idle-cull`` command: options and environment in, one pass, exit status out.

This module is the click command and nothing more: options are defined in ``options``,
and ``app`` turns them into a pass and an exit status. It makes no HTTP requests and no
culling decisions itself.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from typing import Any

import click

from idle_cull import __version__
from idle_cull.command.config_file import config_file_options
from idle_cull.command.options import (
    NOT_OPTION_VARIABLES,
    UpstreamCompatibleCommand,
    cull_options,
    unknown_variables,
)
from idle_cull.exits import exit_status_help

__all__ = ["IdleCullCommand", "cli", "main"]


class IdleCullCommand(UpstreamCompatibleCommand):
    """The command, whose usage errors end like every other ending: click shows the
    error, then ``boundary.end_of_usage_error`` logs the summary line, and the exit
    status comes from the boundary's one table (2)."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        run = partial(super().main, *args, **kwargs)
        if not standalone_mode:
            return run(standalone_mode=False)
        try:
            status: Any = run(standalone_mode=False)
        except click.ClickException as error:
            error.show()
            # Imported here, as in ``cli``: --help and a valid command line never load it.
            from idle_cull.command.boundary import end_of_usage_error  # noqa: PLC0415

            sys.exit(end_of_usage_error(error))
        except click.Abort:  # Ctrl-C at a prompt, as click itself reports it
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(status or 0)


@click.command(
    cls=IdleCullCommand,
    epilog=exit_status_help(),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@cull_options
@config_file_options
@click.version_option(__version__, prog_name="idle-cull")
@click.pass_context
def cli(ctx: click.Context, /, **options: Any) -> None:
    """Do one pass over a JupyterHub: stop idle servers (and, if asked, delete idle
    users), then exit with a status a scheduler can act on.

    The API token comes from JUPYTERHUB_API_TOKEN or --api-token-file, never from the
    command line. Logs go to stderr. Run it from a systemd timer, cron or a Kubernetes
    CronJob; see the README for the scopes the token needs.
    """
    # Imported here so that --help and usage errors never load requests or dateutil.
    from idle_cull.command.boundary import run_command  # noqa: PLC0415 - keeps start-up light

    refusal = unknown_variables(os.environ, known_variables(ctx.command))
    if refusal is not None:
        raise UnknownVariable(refusal)
    ctx.exit(run_command(options))


class UnknownVariable(click.ClickException):
    """An ``IDLE_CULL_*`` typo: one ``Error:`` line and exit 2, as for a config-file typo."""

    exit_code = 2


def known_variables(command: click.Command) -> frozenset[str]:
    """Every environment variable the command reads (as its options declare them, so the
    options table stays the one source), plus ``NOT_OPTION_VARIABLES``."""
    names = set(NOT_OPTION_VARIABLES)
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        names.update([envvar] if isinstance(envvar, str) else envvar or ())
    return frozenset(names)


def main() -> None:
    cli(prog_name="idle-cull")
