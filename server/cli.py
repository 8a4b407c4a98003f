"""`tsobench serve` (also `python -m tsobench.server`): run the TSO server in the foreground."""

from __future__ import annotations

import asyncio
import shutil
import sys
from dataclasses import replace
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
@click.option(
    "--members",
    "size",
    type=click.IntRange(1, 9),
    default=1,
    show_default=True,
    help="Start a PD-like cluster of this many members (child processes) on consecutive ports from --port "
    '(or free ones), sharing --data-dir; one leads, the others answer Tso with UNAVAILABLE "not leader".',
)
@click.option(
    "--no-restart",
    is_flag=True,
    help="With --members: leave a member that dies dead (by default it is restarted, as a follower).",
)
@click.option(
    "--member",
    type=click.IntRange(0),
    default=None,
    help="With --members N and --port P: run only member K of that cluster (on port P+K, sharing --data-dir), "
    "by hand: to bring back a member left dead by --no-restart.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show gRPC's own log lines.")
def serve_command(
    port_file: str | None,
    metrics_port_file: str | None,
    exit_with_parent: bool,
    parent_temp_dir: tuple[str, ...],
    verbose: bool,
    size: int,
    no_restart: bool,
    member: int | None,
    **options: Any,
) -> None:
    """Serve PD's Tso and GetMembers over gRPC (with health checking and reflection).

    With --members N, a cluster: --port-file then lists every member's HOST:PORT, one a line, the leader first.
    """
    from .app import ServerError, new_event_loop, serve  # after the command line has set gRPC's log level
    from .supervisor import serve_cluster

    try:
        config = build(ServerConfig, options)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if member is not None:
        config, size = _one_member(config, size, member), 1
    if size > 1 and (config.metrics_port or metrics_port_file):
        raise click.UsageError("with --members, each member picks a free metrics port: no --metrics-port/-file")
    try:
        if size > 1:
            cluster = serve_cluster(config, size, port_file, exit_with_parent=exit_with_parent, restart=not no_restart)
            orphaned = asyncio.run(cluster)
        else:
            with asyncio.Runner(loop_factory=lambda: new_event_loop(config)) as runner:
                orphaned = runner.run(serve(config, port_file, metrics_port_file, exit_with_parent=exit_with_parent))
    except (ServerError, DataDirLocked, ValueError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        return
    if orphaned:  # nobody is left to clean up after us
        for folder in parent_temp_dir:
            shutil.rmtree(folder, ignore_errors=True)


def _one_member(config: ServerConfig, size: int, member: int) -> ServerConfig:
    """Member ``member`` of the ``size``-member cluster whose members listen on --port and the ports after it."""
    if size < 2 or member >= size:
        raise click.UsageError(f"--member {member} needs --members N with N > {member} (the cluster it belongs to)")
    if not config.port:
        raise click.UsageError(
            "--member needs --port: the cluster's first port (its members are on the ports after it)"
        )
    addresses = tuple(f"{config.host}:{config.port + i}" for i in range(size))
    try:
        return replace(config, port=config.port + member, member_addresses=addresses, member_index=member)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
