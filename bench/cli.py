"""The one command line: ``tsobench run | strategies | serve | ...``."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape

from tsobench.server.cli import serve_command

from . import results
from .config import ConfigError, RunConfig, ServerKnobs

if TYPE_CHECKING:
    from .sweep import Point, PointOutcome, SweepPlan

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIRTY = 0, 1, 2, 3
SCHEDULER_HELP = "Run the shards on Dask: 'local' (a LocalCluster of --processes workers) or tcp://HOST:8786."
SERVER_HOST_HELP = "Embedded server: bind this address, one the Dask workers reach [default: 127.0.0.1]."


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="tsobench")
def main() -> None:
    """How should many callers share gRPC streams to a Timestamp Oracle? Measure it."""


main.add_command(serve_command)


@main.command("strategies")
def strategies_command() -> None:
    """List the strategies (built-in and plugins), one line each."""
    from tsobench import strategies

    for s in strategies.all_strategies().values():
        click.echo(f"{s.name:<16} {s.summary}")


def _csv(kind: type) -> Callable[[click.Context, click.Parameter, str | None], tuple | None]:
    """A click callback parsing "a,b,c" into a tuple of ``kind``."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple | None:
        if value is None:
            return None
        try:
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list of {kind.__name__}: {value!r}") from None

    return parse


def _rate(value: str) -> float | None:
    return None if value in ("0", "closed") else float(value)


@main.command("sweep")
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--strategies", callback=_csv(str), help="Comma-separated [default: all].")
@click.option("--apis", callback=_csv(str), help="thread,asyncio [default: both].")
@click.option("--concurrency", callback=_csv(int), help="Callers per process, e.g. 1,4,16,64,256.")
@click.option("--processes", callback=_csv(int), help="Client processes, e.g. 1,2.")
@click.option("--rates", callback=_csv(_rate), help="Open-loop total rates; 0 or 'closed' = closed loop.")
@click.option("--server-delay-ms", callback=_csv(float), help="Embedded server reply delays, e.g. 0,1,5.")
@click.option("--repeat", type=click.IntRange(1), default=None, help="Runs per point [default: 1].")
@click.option("--duration", "duration_s", type=float, default=None, help="Measured seconds per point [default: 5].")
@click.option("--warmup", "warmup_s", type=float, default=None, help="Warm-up seconds per point [default: 1].")
@click.option("--count", type=int, default=None, help="Timestamps per request.")
@click.option("--target", default=None, help="HOST:PORT of a PD-compatible server [default: embedded].")
@click.option("--scheduler", default=None, help=SCHEDULER_HELP)
@click.option("--server-host", default=None, help=SERVER_HOST_HELP)
@click.option("--output", "-o", default=None, help="Results folder [default: results/<name>/].")
@click.option("--name", default=None, help="Sweep name [default: sweep-<time>].")
@click.option("--resume", is_flag=True, help="Skip points that already have a completed result in --output.")
@click.option("--report", is_flag=True, help="Write the report into <output>/report/ when the sweep ends.")
def sweep_command(
    plan_file: str | None, output: str | None, name: str | None, resume: bool, report: bool, **axes
) -> None:
    """Run many points (strategy x api x concurrency x processes x rate x delay), one `tsobench run` each.

    PLAN_FILE is an optional TOML file with the same keys (lists for the axes); flags override it.
    """
    from .sweep import SweepPlan, read_plan

    overrides = {k: v for k, v in axes.items() if v is not None}
    try:
        if plan_file:
            plan, plan_output = read_plan(plan_file, **overrides)
            output = output or plan_output
        else:
            plan = SweepPlan.from_dict(overrides)
        plan.points()  # validates every point before anything runs
    except (ConfigError, TypeError) as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(_run_sweep(plan, output, name, resume, report=report))


@main.command("quickstart")
@click.option("--output", "-o", default=None, help="Results folder [default: results/quickstart-<time>/].")
@click.option("--resume", is_flag=True, help="Continue an interrupted quickstart in --output.")
def quickstart_command(output: str | None, resume: bool) -> None:
    """Every strategy on both APIs at a few concurrency levels (about two minutes on 2 cores), then the report."""
    from .sweep import SweepPlan

    plan = SweepPlan(concurrency=(1, 8, 64), duration_s=1.5, warmup_s=0.5)
    sys.exit(_run_sweep(plan, output, None, resume, prefix="quickstart", report=True))


def _run_sweep(
    plan: SweepPlan, output: str | None, name: str | None, resume: bool, prefix: str = "sweep", report: bool = False
) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .analysis.harness import annotate
    from .results import DEFAULT_DIR
    from .summary import point_line, sweep_table
    from .sweep import Sweep, dirty_points, estimate_s

    if resume and output is None:
        raise click.UsageError("--resume needs --output (the folder of the sweep to continue)")
    name = name or (Path(output).name if output else f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}")
    out = Path(output) if output else DEFAULT_DIR / name
    sweep = Sweep(plan, out, name, ["tsobench", *sys.argv[1:]])
    console = Console()
    console.print(f"{len(sweep.points)} points into {out}/ (about {estimate_s(plan) / 60:.1f} min)")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("sweep", total=len(sweep.points))

        def on_point(point: Point, outcome: PointOutcome) -> None:
            progress.console.print(point_line(point.key, outcome))
            progress.advance(task)

        try:
            outcomes = sweep.run(resume, on_point)
        except KeyboardInterrupt:
            sweep.interrupted = True
            sweep.write_manifest()
            outcomes = sweep.outcomes
    console.print(sweep_table(sweep, outcomes))
    console.print(f"results: {out}/  (manifest {out / 'sweep.json'})")
    if sweep.interrupted:
        console.print(f"interrupted: finished points are saved; continue with --resume --output {out}")
        return 130
    annotate(out)  # harness-bound points, now that every point (and any null run) is in
    if report:
        _report_after_sweep(out, console, findings=prefix == "quickstart")
    dirty = dirty_points(sweep)
    if dirty:
        console.print(f"[bold yellow]dirty safe points ({len(dirty)}):[/] " + escape("; ".join(dirty)), soft_wrap=True)
        return EXIT_DIRTY
    console.print("[green]every safe point clean[/] (a failing negative control is expected)")
    return EXIT_OK


def _report_after_sweep(out: Path, console: Console, findings: bool) -> None:
    from .analysis.report import write_report

    with console.status("writing the report"):
        try:
            written = write_report([out])
        except ValueError as exc:
            console.print(f"[yellow]no report:[/] {escape(str(exc))}")
            return
    for skipped in written.skipped:
        console.print(f"[yellow]warning:[/] {escape(str(skipped))}", highlight=False, soft_wrap=True)
    if findings:
        console.print("\n[bold]Findings[/]")
        for line in written.findings.lines():
            console.print(escape(line), highlight=False, soft_wrap=True)
    console.print(f"report: {written.html}  ({len(written.paths)} files in {written.html.parent}/)")


def _output_path(output: str | None, run_id: str) -> Path:
    if output is None:
        return results.default_path(run_id)
    path = Path(output)
    if output.endswith(("/", "\\")) or path.is_dir():
        return path / f"{run_id}.json"
    return path


def run_options(f):
    """The options of one run (shared by ``run`` and the benchmark suite's docs)."""
    options = [
        click.option("--strategy", "-s", required=True, help="Strategy name (see `tsobench strategies`)."),
        click.option(
            "--api",
            default="thread",
            show_default=True,
            help="thread (sync grpcio) or asyncio (grpc.aio).",
        ),
        click.option(
            "--concurrency",
            "-c",
            type=int,
            default=16,
            show_default=True,
            help="Callers per process.",
        ),
        click.option("--processes", "-p", type=int, default=1, show_default=True, help="Client processes."),
        click.option(
            "--duration",
            "duration_s",
            type=float,
            default=None,
            help="Measured seconds [default: 10].",
        ),
        click.option(
            "--requests",
            type=int,
            default=None,
            help="Measured requests in total (instead of --duration).",
        ),
        click.option(
            "--warmup",
            "warmup_s",
            type=float,
            default=1.0,
            show_default=True,
            help="Seconds excluded from figures.",
        ),
        click.option(
            "--rate",
            type=float,
            default=None,
            help="Open loop: total requests/s, Poisson arrivals.",
        ),
        click.option("--count", type=int, default=1, show_default=True, help="Timestamps per request."),
        click.option(
            "--target",
            default=None,
            help="HOST:PORT of a PD-compatible server [default: embedded].",
        ),
        click.option("--target-metrics", default=None, help="Prometheus URL of the target's tso_* counters."),
        click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="Seeds arrivals, jitter, failures.",
        ),
        click.option(
            "--pool-size",
            type=int,
            default=None,
            help="pool: streams [default: min(concurrency, 8)].",
        ),
        click.option("--streams", type=int, default=1, show_default=True, help="dispatcher: streams (lanes)."),
        click.option(
            "--max-batch",
            type=int,
            default=10_000,
            show_default=True,
            help="dispatcher: cap on count per request.",
        ),
        click.option(
            "--batch-wait-us",
            type=int,
            default=0,
            show_default=True,
            help="dispatcher: wait this long for more.",
        ),
        click.option(
            "--max-inflight",
            type=int,
            default=1,
            show_default=True,
            help="dispatcher: batches in flight per stream.",
        ),
        click.option(
            "--connections",
            type=int,
            default=1,
            show_default=True,
            help="Distinct channels (TCP connections).",
        ),
        click.option(
            "--timeout",
            "timeout_s",
            type=float,
            default=5.0,
            show_default=True,
            help="Per-request deadline, s.",
        ),
        click.option("--cluster-id", type=int, default=None, help="[default: ask GetMembers]"),
        click.option(
            "--loop",
            type=click.Choice(["asyncio", "uvloop"]),
            default="asyncio",
            show_default=True,
            help="asyncio API: the event loop.",
        ),
        click.option("--server-delay-ms", type=float, default=0.0, help="Embedded server: delay per reply."),
        click.option(
            "--server-jitter-ms",
            type=float,
            default=0.0,
            help="Embedded server: random extra delay.",
        ),
        click.option(
            "--server-fail-rate",
            type=float,
            default=0.0,
            help="Embedded server: fraction of streams aborted.",
        ),
        click.option("--scheduler", default=None, help=SCHEDULER_HELP),
        click.option("--server-host", default=None, help=SERVER_HOST_HELP),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_config(server_delay_ms: float, server_jitter_ms: float, server_fail_rate: float, **kwargs) -> RunConfig:
    try:
        knobs = ServerKnobs(server_delay_ms, server_jitter_ms, server_fail_rate)
        if knobs.delay_ms < 0 or knobs.jitter_ms < 0 or not 0 <= knobs.fail_rate <= 1:
            raise ConfigError("server delay/jitter must be >= 0 and fail rate within [0, 1]")
        return RunConfig(server=knobs, **kwargs)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


@main.command("run")
@run_options
@click.option("--output", "-o", default=None, help="Results file or folder [default: results/<run_id>.json].")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def run_command(output: str | None, quiet: bool, **kwargs) -> None:
    """Run one strategy under load and check every timestamp.

    Exit 0: clean; 3: completed with correctness violations or errors (results
    saved); 2: bad options; 1: the run could not start.
    """
    from .runner import RunError, run
    from .summary import print_run, progress_line

    # SIGTERM (a scheduler, a timeout, kill) stops the run like Ctrl-C: load stopped, results saved, server gone.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config = build_config(**kwargs)
    err = Console(stderr=True)
    try:
        with err.status("starting", spinner="dots") as status:
            on_progress = None if quiet else (lambda p: status.update(progress_line(p)))
            result = run(config, command=["tsobench", *sys.argv[1:]], on_progress=on_progress)
    except RunError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        err.print("interrupted before the load started; nothing to save")
        sys.exit(130)
    path = results.write(result, _output_path(output, result.run_id))
    print_run(result, str(path))
    sys.exit(EXIT_OK if result.judgement.clean else EXIT_DIRTY)


@main.command("report")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--output", "-o", default=None, help="Folder to write into [default: <results folder>/report/].")
@click.option("--concurrency", "-c", type=int, default=None, help="Per-process concurrency of the percentile spectrum.")
def report_command(paths: tuple[str, ...], output: str | None, concurrency: int | None) -> None:
    """Write report.md, a self-contained report.html and the plots (PNG) from results.

    PATHS are results files or folders (searched recursively), and pytest-benchmark JSON.
    A file that cannot be read is left out with a warning. Exit 0: written; 3: written,
    but some files were left out; 2: bad input (nothing to report).
    """
    from .analysis.report import write_report

    err = Console(stderr=True)
    try:
        written = write_report(paths, output, concurrency=concurrency)
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(EXIT_USAGE)
    for path in written.paths:
        click.echo(path)
    for skipped in written.skipped:
        err.print(f"[yellow]warning:[/] {escape(str(skipped))}", highlight=False, soft_wrap=True)
    sys.exit(EXIT_DIRTY if written.skipped else EXIT_OK)


@main.command("plan")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--target-tps", type=float, required=True, help="Timestamps per second to provision for.")
@click.option("--p99-ms", type=float, default=None, help="Latency limit: p99 at or below this.")
@click.option("--headroom", type=float, default=0.3, show_default=True, help="Share of capacity kept free.")
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON on stdout.")
def plan_command(
    paths: tuple[str, ...], target_tps: float, p99_ms: float | None, headroom: float, as_json: bool
) -> None:
    """Which safe strategy and settings reach --target-tps, on how many processes and machines.

    Exit 0: reachable (the message says when only by extrapolation); 3: unreachable; 2: bad input.
    """
    from .analysis.loader import load
    from .analysis.plan import plan, print_plan, to_json

    try:
        answer = plan(load(paths), target_tps, p99_ms, headroom)
    except ValueError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(EXIT_USAGE)
    if as_json:
        click.echo(to_json(answer))
    else:
        print_plan(answer)
    sys.exit(EXIT_OK if answer.reachable else EXIT_DIRTY)


if __name__ == "__main__":
    main()
