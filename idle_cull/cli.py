"""The ``idle-cull`` command: options and environment in, one pass, exit status out.

This module is the click command and nothing more: options are defined in ``options``,
and ``app`` turns them into a pass and an exit status. It makes no HTTP requests and no
culling decisions itself.
"""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

from idle_cull import __version__
from idle_cull.config_file import config_file_options
from idle_cull.exits import exit_status_help
from idle_cull.options import UpstreamCompatibleCommand, cull_options

__all__ = ["cli", "main"]


@click.command(
    cls=UpstreamCompatibleCommand,
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
    from idle_cull.app import run_command  # noqa: PLC0415 - keeps start-up light

    # A large clock skew fails the pass only when --clock was left at its default.
    options["clock_given"] = ctx.get_parameter_source("clock") is not ParameterSource.DEFAULT
    ctx.exit(run_command(options))


def main() -> None:
    cli(prog_name="idle-cull")
