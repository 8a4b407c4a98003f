"""`tsobench serve` (also `python -m tsobench.server`): run the TSO server in the foreground."""

from __future__ import annotations

import asyncio
import shutil
import sys
from typing import Any

import click

from tsobench.options import ConfigError, build, click_options

from .config import ServerConfig
from .window import DataDirLocked


@click.command("serve")
@click_options(ServerConfig)
@click.option("--port-file", type=click.Path(dir_okay=False), help="Write the bound port here once serving.")
@click.option("--metrics-port-file", type=click.Path(dir_okay=False), help="Write the metrics port here.")
@click.option(
    "--exit-with-parent",
    is_flag=True,
    help="Stop cleanly when stdin closes: the launching process holds the pipe, so its death (kill -9 too) closes it.",
)
@click.option(
    "--parent-temp-dir",
    type=click.Path(file_okay=False),
    multiple=True,
    help="With --exit-with-parent: a folder of the launcher's to remove when the server stops because stdin closed.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show gRPC's own log lines.")
def serve_command(
    port_file: str | None,
    metrics_port_file: str | None,
    exit_with_parent: bool,
    parent_temp_dir: tuple[str, ...],
    verbose: bool,
    **options: Any,
) -> None:
    """Serve PD's Tso and GetMembers over gRPC (with health checking and reflection)."""
    from .app import ServerError, serve  # after the command line has set gRPC's log level

    try:
        config = build(ServerConfig, options)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        orphaned = asyncio.run(serve(config, port_file, metrics_port_file, exit_with_parent=exit_with_parent))
    except (ServerError, DataDirLocked, ValueError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        return
    if orphaned:  # nobody is left to clean up after us
        for folder in parent_temp_dir:
            shutil.rmtree(folder, ignore_errors=True)
