"""`tsobench serve` (also `python -m tsobench.server`): run the TSO server in the foreground."""

from __future__ import annotations

import asyncio
import shutil
import sys

import click

from .app import ServerError, serve
from .config import DEFAULT_CLUSTER_ID, ServerConfig
from .window import DataDirLocked


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="0 picks a free port.",
)
@click.option("--data-dir", default="tso-data", show_default=True, help="Where the TSO window is persisted.")
@click.option(
    "--cluster-id",
    type=click.IntRange(1, (1 << 64) - 1),
    default=DEFAULT_CLUSTER_ID,
    show_default=True,
)
@click.option(
    "--window-ms",
    type=click.IntRange(2),
    default=3000,
    show_default=True,
    help="High-water window ahead of physical.",
)
@click.option(
    "--delay-ms",
    type=click.FloatRange(0),
    default=0.0,
    help="Added to every reply (emulates network/disk).",
)
@click.option(
    "--jitter-ms",
    type=click.FloatRange(0),
    default=0.0,
    help="Uniform random extra delay per reply.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Probability that a reply is replaced by aborting its stream with UNAVAILABLE (per request, seeded).",
)
@click.option("--seed", type=int, default=None, help="Seed for jitter and failures.")
@click.option(
    "--metrics-port",
    type=click.IntRange(-1, 65535),
    default=0,
    show_default=True,
    help="Prometheus /metrics port; 0 picks a free one, -1 disables it.",
)
@click.option(
    "--port-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the bound port here once serving.",
)
@click.option(
    "--metrics-port-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the metrics port here.",
)
@click.option(
    "--accept-future-window",
    is_flag=True,
    help="Start from a saved window more than a day ahead of the wall clock (refused otherwise).",
)
@click.option(
    "--admin",
    is_flag=True,
    help="Also serve the fault-injection service tsobench.admin.Admin (AbortStreams, Stall, Delay); "
    "off by default, as any client could then disrupt the server.",
)
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
def serve_command(
    port_file: str | None,
    metrics_port_file: str | None,
    metrics_port: int,
    exit_with_parent: bool,
    parent_temp_dir: tuple[str, ...],
    **options,
) -> None:
    """Serve PD's Tso and GetMembers over gRPC (with health checking and reflection)."""
    try:
        config = ServerConfig(metrics_port=None if metrics_port < 0 else metrics_port, **options)
        orphaned = asyncio.run(serve(config, port_file, metrics_port_file, exit_with_parent=exit_with_parent))
    except (ServerError, DataDirLocked, ValueError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        return
    if orphaned:  # nobody is left to clean up after us
        for folder in parent_temp_dir:
            shutil.rmtree(folder, ignore_errors=True)
