"""The one command line: ``tsobench run | strategies | serve | ...``."""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape

from tsobench.bench.model import results
from tsobench.bench.model.config import RunConfig
from tsobench.bench.model.exits import (
    EXIT_DIRTY,
    EXIT_DISK,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNKNOWN,
    EXIT_USAGE,
    exit_code,
)
from tsobench.bench.runs.stops import on_stop_signals
from tsobench.bench.sweeps.slo import click_options as _slo_options
from tsobench.bench.sweeps.sweep import FALLBACK_SAVED
from tsobench.files import check_writable
from tsobench.options import ConfigError, build, click_options, did_you_mean, sweep_click_options
from tsobench.server.cli import serve_command

if TYPE_CHECKING:
    from tsobench.bench.analysis.findings import Findings
    from tsobench.bench.sweeps.sweep import Point, PointOutcome, Sweep, SweepPlan

PIPED_WIDTH = 200
PROGRESS_MODES = ("lines", "bar", "none")  # tsobench run --progress (summary.RunProgress)


class _Group(click.Group):
    """Lists each command with its whole first sentence (click cuts them at 45 characters), offers the
    close command for a typo, and says a usage error's reason first."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, " ".join((command.help or "").split("\n\n")[0].split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            raise click.UsageError(f"no command {name!r}{did_you_mean(name, self.list_commands(ctx))}", ctx)
        return super().resolve_command(ctx, args)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """click's own, but a usage error reads: the reason first, then where to look."""
        run = functools.partial(super().main, args, prog_name, complete_var, standalone_mode=False, **extra)
        if not standalone_mode:
            return run()
        try:
            code: Any = run()
        except click.UsageError as exc:
            _usage_error(exc)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


def _usage_error(exc: click.UsageError) -> NoReturn:
    """``error: <why>`` on the first line, then the command's usage and its --help: one glance says
    what is wrong (click opens with the usage and puts the reason three lines down)."""
    err = make_console(stderr=True)
    err.print(f"[bold red]error:[/] {escape(exc.format_message())}", highlight=False, soft_wrap=True)
    if exc.ctx is not None:
        usage = exc.ctx.get_usage().removeprefix("Usage: ")
        err.print(f"usage: {escape(usage)}   (more: {exc.ctx.command_path} --help)", highlight=False, soft_wrap=True)
    sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(package_name="tsobench")
@click.option("--verbose", "-v", is_flag=True, help="Show gRPC's own log lines (hidden otherwise).")
def main(verbose: bool) -> None:
    """How should many callers share gRPC streams to a Timestamp Oracle? Measure it.

    Exit codes: 0 clean; 1 could not start; 2 bad options; 3 completed but not clean; 130 interrupted.
    """
    # -v is read from argv before grpc loads (tsobench.grpc_log); here it only needs to exist.


def stop_signals() -> contextlib.AbstractContextManager[None]:
    """SIGTERM and SIGHUP (``timeout``, systemd, CI runners, a closed terminal) stop a run as Ctrl-C does:
    the load ends, what was measured is saved, nothing is left behind."""
    return on_stop_signals(signal.default_int_handler)


def signals_ignored() -> contextlib.AbstractContextManager[None]:
    """While what was measured is being saved: a late signal must not lose it."""
    return on_stop_signals(signal.SIG_IGN)


def make_console(stderr: bool = False) -> Console:
    """Rich output; when piped, wide enough that no table wraps mid-field (rich assumes 80 columns)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else PIPED_WIDTH)


def progress_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--progress lines|bar|none`` and ``-q`` (none): what a run shows on stderr while it goes."""
    f = click.option("--quiet", "-q", is_flag=True, help="Show nothing while it runs (--progress none).")(f)
    return click.option(
        "--progress",
        type=click.Choice(PROGRESS_MODES),
        default="lines",
        show_default=True,
        help="While it runs, on stderr: a line per --interval that stays (with a status line under them "
        "on a terminal), the status line alone, or nothing.",
    )(f)


def json_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--json", "as_json", is_flag=True, help=f"{what} as one JSON document on stdout (the rest goes to stderr)."
    )


main.add_command(serve_command)

SHELLS = ("bash", "zsh", "fish")


@main.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_command(shell: str) -> None:
    """Print the shell completion script (commands, options and their values: strategies, APIs, faults).

    Install it once, e.g. for bash: tsobench completion bash > ~/.local/share/bash-completion/completions/tsobench
    (zsh: into a folder on $fpath as _tsobench; fish: ~/.config/fish/completions/tsobench.fish).
    """
    from click.shell_completion import get_completion_class

    shell_class = get_completion_class(shell)
    assert shell_class is not None  # click knows every shell in SHELLS
    click.echo(shell_class(main, {}, "tsobench", "_TSOBENCH_COMPLETE").source())


@main.command("strategies")
def strategies_command() -> None:
    """List the strategies (built-in, reference and plugins), one line each, and those that cannot run here."""
    from tsobench import strategies

    for s in strategies.all_strategies().values():
        only = "" if s.apis == strategies.APIS else f" ({', '.join(s.apis)} API only)"
        click.echo(f"{s.name:<16} {s.summary}{only}")
    for name, why in strategies.problems().items():
        click.echo(f"{name:<16} UNAVAILABLE: {why}")


@main.command("sweep")
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False))
@sweep_click_options(RunConfig)
@click.option("--repeat", type=click.IntRange(1), default=None, help="Runs per point, round-robin [default: 1].")
@click.option("--output", "-o", default=None, help="Results folder [default: results/<name>/].")
@click.option("--name", default=None, help="Sweep name [default: sweep-<time>].")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the sweep recorded in --output: its plan (options given must match it), "
    "skipping points already measured.",
)
@click.option("--report", is_flag=True, help="Write the report into <output>/report/ when the sweep ends.")
@json_option("Every point's outcome")
def sweep_command(
    plan_file: str | None,
    output: str | None,
    name: str | None,
    resume: bool,
    report: bool,
    as_json: bool,
    **settings: Any,
) -> None:
    """Run many points (strategy x api x concurrency x processes x rate x delay), one `tsobench run` each.

    PLAN_FILE is an optional TOML file with the same keys (lists for the axes); flags override it.
    Every option of `tsobench run` can be given, for every point. Exit 130: interrupted (SIGINT,
    SIGTERM or SIGHUP); the finished points are saved and the last line is the command that resumes.
    """
    from tsobench.bench.sweeps.sweep import SweepPlan, plan_keys

    given = {k: v for k, v in settings.items() if v not in (None, ())}
    try:
        if plan_file:
            keys, plan_output = plan_keys(plan_file)
            given, output = {**keys, **given}, output or plan_output
        plan = None if resume else SweepPlan.from_dict(given)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(_run_sweep(plan, output, name, resume=resume, given=given, report=report, as_json=as_json))


# Four levels: a USL fit has three parameters and needs more levels than that to say anything (usl.MIN_LEVELS),
# so the plan's one-process ceiling exists after the quickstart.
QUICKSTART_CONCURRENCY = (1, 4, 16, 64)


@main.command("quickstart")
@click.option("--output", "-o", default=None, help="Results folder [default: results/quickstart-<time>/].")
@click.option("--resume", is_flag=True, help="Continue an interrupted quickstart in --output.")
@json_option("Every point's outcome")
def quickstart_command(output: str | None, resume: bool, as_json: bool) -> None:
    """Every strategy on both APIs at a few concurrency levels, and the null baseline to know the harness's
    own ceiling (about three minutes on 2 cores), then the report with its findings."""
    from tsobench.bench.sweeps.sweep import SweepPlan
    from tsobench.strategies import names

    if not resume:
        for line in reference_left_out():
            make_console(stderr=as_json).print(f"[yellow]note:[/] {escape(line)}", highlight=False, soft_wrap=True)
    plan = (
        None
        if resume
        else SweepPlan.of(
            strategies=names(),
            concurrency=QUICKSTART_CONCURRENCY,
            duration_s=1.0,
            warmup_s=0.3,
            interval_s=0.1,  # 10 intervals a run: the fewest batch means that may decide (stats.MIN_BATCHES)
        )
    )
    sys.exit(_run_sweep(plan, output, None, resume=resume, prefix="quickstart", report=True, as_json=as_json))


def reference_left_out() -> list[str]:
    """A line per reference client the quickstart leaves out (its package is not installed), and how to add it."""
    from tsobench.strategies import registry

    missing = registry.problems()
    return [
        f"{s.name} (the production client, a reference) is left out: {missing[s.name]}; "
        "add it with: pip install 'tsobench[reference]'"
        for s in registry.REFERENCE
        if s.name in missing
    ]


def _refuse(message: str) -> NoReturn:
    """Bad input that is not an option's (a folder, a file): one line on stderr, exit 2."""
    make_console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(EXIT_USAGE)


def _run_sweep(
    plan: SweepPlan | None,
    output: str | None,
    name: str | None,
    resume: bool = False,
    given: Mapping[str, Any] | None = None,
    prefix: str = "sweep",
    report: bool = False,
    as_json: bool = False,
) -> int:
    """Start ``plan`` into ``output``, or (``resume``) continue the sweep recorded there: the folder
    checked and locked before any point runs."""
    from tsobench.bench.model.results import DEFAULT_DIR
    from tsobench.bench.sweeps.sweep import MANIFEST, FolderError, FolderLock, Sweep

    if resume and output is None:
        raise click.UsageError("--resume needs --output (the folder of the sweep to continue)")
    out = Path(output) if output else DEFAULT_DIR / (name or f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}")
    if resume and not (out / MANIFEST).is_file():
        _refuse(f"nothing to resume in {out}/: it has no {MANIFEST}")
    try:
        lock = FolderLock.take(out)
    except FolderError as exc:
        _refuse(str(exc))
    with lock:
        try:
            if resume:
                sweep = Sweep.resume(out, given or {}, name)
            else:
                assert plan is not None  # only a resume comes without a plan
                sweep = Sweep(plan, out, name or out.name, ["tsobench", *sys.argv[1:]])
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
        resume_with = ["tsobench", prefix, "--resume", *(["--report"] if report and prefix == "sweep" else [])]
        resume_with += ["-o", str(out), *(["--json"] if as_json else [])]
        return _sweep(sweep, resume_with, report=report, as_json=as_json)


def _sweep(sweep: Sweep, resume_with: list[str], report: bool, as_json: bool = False) -> int:
    """Run a sweep with its progress, then its table, findings, the report and the exit code
    (with ``as_json``, the people's part on stderr and the outcomes as JSON on stdout)."""
    code, html = _sweep_shown(sweep, resume_with, report, make_console(stderr=as_json))
    if as_json:
        from tsobench.bench.cli.output import emit_json, sweep_document
        from tsobench.bench.sweeps.sweep import dirty_points

        emit_json(sweep_document(sweep, dirty_points(sweep), html))
    return code


def _sweep_shown(sweep: Sweep, resume_with: list[str], report: bool, console: Console) -> tuple[int, Path | None]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from tsobench.bench.cli.summary import point_line, sweep_table
    from tsobench.bench.sweeps.sweep import MANIFEST, dirty_points, estimate_s

    out = sweep.out
    resuming = "resuming: " if sweep.resuming else ""
    console.print(f"{resuming}{len(sweep.points)} points into {out}/ (about {estimate_s(sweep.plan) / 60:.1f} min)")
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

        outcomes = sweep.run(on_point)
    console.print(sweep_table(sweep, outcomes))
    console.print(f"results: {out}/  (manifest {out / MANIFEST})")
    if sweep.write_failure is not None:
        console.print(
            f"[bold red]stopped:[/] {escape(sweep.write_failure)}; make room, then resume with: "
            + escape(shlex.join(resume_with)),
            soft_wrap=True,
            highlight=False,
        )
        return EXIT_DISK, None
    if sweep.interrupted:
        console.print(
            f"interrupted ({sweep.stop_signal}): finished points are saved; resume with: {shlex.join(resume_with)}",
            soft_wrap=True,
            highlight=False,
        )
        return EXIT_INTERRUPTED, None
    html = None
    if report:
        html = _report_after_sweep(out, console)
    else:
        _findings_after_sweep(out, console)
    dirty = dirty_points(sweep)
    if dirty:
        console.print(f"[bold yellow]dirty safe points ({len(dirty)}):[/] " + escape("; ".join(dirty)), soft_wrap=True)
        return EXIT_DIRTY, html
    console.print("[green]every safe point clean[/] (a failing negative control is expected)")
    return EXIT_OK, html


def print_findings(found: Findings, console: Console) -> None:
    """The findings as every command that ends with them prints them (quickstart, sweep, report)."""
    console.print("\n[bold]Findings[/]")
    for line in found.lines():
        console.print(escape(line), highlight=False, soft_wrap=True)


def _findings_after_sweep(out: Path, console: Console) -> None:
    """A sweep without --report still ends with what its data says."""
    from tsobench.bench.analysis.loader import load
    from tsobench.bench.analysis.report import build
    from tsobench.bench.analysis.validation import no_library_warnings

    try:
        with no_library_warnings():
            found = build(load([out])).findings
    except ValueError as exc:
        console.print(f"[yellow]no findings:[/] {escape(str(exc))}")
        return
    print_findings(found, console)


def _report_after_sweep(out: Path, console: Console) -> Path | None:
    from tsobench.bench.analysis.report import write_report
    from tsobench.bench.analysis.validation import no_library_warnings

    with console.status("writing the report"), no_library_warnings():
        try:
            written = write_report([out])
        except ValueError as exc:
            console.print(f"[yellow]no report:[/] {escape(str(exc))}")
            return None
    for skipped in written.skipped:
        console.print(f"[yellow]warning:[/] {escape(str(skipped))}", highlight=False, soft_wrap=True)
    print_findings(written.findings, console)
    console.print(f"report: {written.html}  ({len(written.paths)} files in {written.html.parent}/)")
    return written.html


@main.command("run")
@click_options(RunConfig)
@click.option("--output", "-o", default=None, help="Results file or folder [default: results/<run_id>.json].")
@progress_option
@json_option("The run's figures and verdict")
def run_command(output: str | None, quiet: bool, progress: str, as_json: bool, **options: Any) -> None:
    """Run one strategy under load and check every timestamp.

    Exit 0: clean; 3: completed with correctness violations, errors or starved
    callers (results saved); 130: interrupted (what was measured is saved); 2:
    bad options; 1: the run could not start; 5: the results could not be written
    where asked (saved to the fallback file it names, or nowhere).
    """
    from tsobench.bench.cli.output import emit_json, run_document
    from tsobench.bench.cli.summary import RunProgress, print_run
    from tsobench.bench.runs.runner import RunError, run

    try:
        config = build(RunConfig, options)
        config.runnable()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    path, folder = _output(output)
    if why := check_writable(path if folder else path.parent):
        raise click.UsageError(f"--output: {why}")
    err = make_console(stderr=True)
    with stop_signals():
        try:
            with RunProgress(err, config, "none" if quiet else progress) as shown:
                result = run(config, command=["tsobench", *sys.argv[1:]], on_progress=shown.update)
                shown.finish(result)
        except RunError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            sys.exit(EXIT_FAILED)
        except KeyboardInterrupt:
            err.print("interrupted before the load started; nothing to save")
            sys.exit(EXIT_INTERRUPTED)
    with signals_ignored():  # what was measured is being saved: a late signal must not lose it
        target = path / f"{result.run_id}.json" if folder else path
        saved = _save(result, target, err)
        print_run(result, str(saved) if saved else None, err if as_json else make_console())
        if as_json:
            emit_json(run_document(result, saved))
    if saved != target:  # only in the fallback, or nowhere: a script must not take the output for written
        sys.exit(EXIT_DISK)
    sys.exit(exit_code(result))


def _output(output: str | None) -> tuple[Path, bool]:
    """Where the results go, and whether that is a folder (for ``<run_id>.json``) rather than the file."""
    if output is None:
        return results.DEFAULT_DIR, True
    path = Path(output)
    return path, output.endswith(("/", "\\")) or path.is_dir()


def _save(result: results.RunResult, path: Path, err: Console) -> Path | None:
    """Write the results; if that fails now (a full disk, a folder gone), write them to a fallback
    path and name it, so what was measured is never lost to the output."""
    try:
        return results.write(result, path)
    except OSError as exc:
        err.print(
            f"[bold red]could not write {escape(str(path))}:[/] {escape(exc.strerror or str(exc))}", soft_wrap=True
        )
        fallback = Path(tempfile.gettempdir()) / path.name
        try:
            # a name of its own (mkstemp: created, never another run's): the next failure overwrites nothing
            fd, name = tempfile.mkstemp(prefix=f"{path.stem}-", suffix=".json")
            os.close(fd)
            fallback = Path(name)
            written = results.write(result, fallback)
        except OSError as again:
            why = escape(again.strerror or str(again))
            err.print(f"[bold red]nor {escape(str(fallback))}:[/] {why}", soft_wrap=True)
            return None
        err.print(f"{FALLBACK_SAVED} {escape(str(written))} instead", soft_wrap=True, highlight=False)
        return written


@main.command("report")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--output", "-o", default=None, help="Folder to write into [default: <results folder>/report/].")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1),
    default=None,
    help="Per-process concurrency of the percentile spectrum.",
)
@json_option("The files written, those left out and the findings")
def report_command(paths: tuple[str, ...], output: str | None, concurrency: int | None, as_json: bool) -> None:
    """Write report.md, a self-contained report.html, the plots (PNG), runs.csv and points.csv from results.

    PATHS are results files or folders (searched recursively), and pytest-benchmark JSON.
    A file that cannot be read is left out with a warning. Exit 0: written; 3: written,
    but some files were left out; 2: bad input (nothing to report).
    """
    from tsobench.bench.analysis.report import write_report
    from tsobench.bench.analysis.validation import no_library_warnings

    problem = check_writable(output) if output is not None else None
    if problem is not None:
        _refuse(problem)  # before loading anything: a report that cannot be written is no report
    err = make_console(stderr=True)
    try:
        with no_library_warnings():
            written = write_report(paths, output, concurrency=concurrency)
    except ValueError as exc:
        _refuse(str(exc))
    print_findings(written.findings, make_console(stderr=as_json))
    for skipped in written.skipped:
        err.print(f"[yellow]warning:[/] {escape(str(skipped))}", highlight=False, soft_wrap=True)
    if as_json:
        from tsobench.bench.cli.output import emit_json, report_document

        emit_json(report_document(written))
    else:
        click.echo()
        for path in written.paths:
            click.echo(path)
    sys.exit(EXIT_DIRTY if written.skipped else EXIT_OK)


@main.command("plan")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--target-tps",
    type=click.FloatRange(0, min_open=True),
    required=True,
    help="Timestamps per second to provision for.",
)
@click.option(
    "--p99-ms", type=click.FloatRange(0, min_open=True), default=None, help="Latency limit: p99 at or below this."
)
@click.option("--headroom", type=float, default=0.3, show_default=True, help="Share of capacity kept free.")
@click.option(
    "--rtt-ms", type=click.FloatRange(0, min_open=True), help="Plan for clients this round trip (ms) from the server."
)
@click.option("--confirm", is_flag=True, help="Run the confirming sweep it prints: exit 0 as predicted, 3 not.")
@click.option("--scheduler", default=None, help="With --confirm: run the confirming sweep's shards on Dask here.")
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON on stdout.")
def plan_command(
    paths: tuple[str, ...],
    target_tps: float,
    p99_ms: float | None,
    headroom: float,
    rtt_ms: float | None,
    confirm: bool,
    scheduler: str | None,
    as_json: bool,
) -> None:
    """Which safe strategy and settings reach --target-tps, on how many processes and machines.

    Exit 0: reachable (the message says when only by extrapolation); 3: unreachable (above a ceiling it
    names); 4: unknown (beyond what was measured, the server's ceiling not known, or nothing measured near
    --rtt-ms); 2: bad input. With --confirm: 0 when the confirming measurement falls within the prediction's
    interval, 3 when not, 4 when nothing could be confirmed.
    """
    from tsobench.bench.analysis.loader import load, skipped
    from tsobench.bench.analysis.plan import UNKNOWN, UNREACHABLE, plan, print_plan, to_json
    from tsobench.bench.analysis.validation import no_library_warnings

    err = make_console(stderr=True)
    try:
        with no_library_warnings():
            df = load(paths)
            answer = plan(df, target_tps, p99_ms, headroom, rtt_ms)
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(EXIT_USAGE)
    for left_out in skipped(df):  # on stderr: --json prints one document on stdout
        err.print(f"[yellow]warning:[/] {escape(str(left_out))}", highlight=False, soft_wrap=True)
    code = {UNREACHABLE: EXIT_DIRTY, UNKNOWN: EXIT_UNKNOWN}.get(answer.answer, EXIT_OK)
    if not confirm:
        if as_json:
            click.echo(to_json(answer))
        else:
            print_plan(answer, make_console())
        sys.exit(code)
    if not as_json:
        print_plan(answer, make_console())
    sys.exit(_confirm(answer, scheduler, as_json))


def _confirm(answer: Any, scheduler: str | None, as_json: bool) -> int:
    """Run the plan's confirming sweep into a fresh folder and judge it; the sweep's output goes to stderr."""
    import json
    import os
    import subprocess

    from tsobench.bench.analysis.loader import load
    from tsobench.bench.analysis.plan import confirmation, prediction

    err = make_console(stderr=True)
    # The embedded server runs one thread: the clients get the other cores (a --target's server runs elsewhere).
    o = answer.recommendation or answer.focus
    most = (os.cpu_count() or 1) - (0 if o is None or o.target else 1)
    predicted = prediction(answer, max(1, most), scheduler)
    if predicted is None:
        err.print("[yellow]nothing to confirm:[/] the plan names no setting with a process count", highlight=False)
        if as_json:
            click.echo(json.dumps({"plan": answer.to_dict(), "confirmation": None}, default=str))
        return EXIT_UNKNOWN
    argv = shlex.split(predicted.command)
    out = Path(argv[argv.index("-o") + 1] + time.strftime("-%Y%m%dT%H%M%S"))
    argv[argv.index("-o") + 1] = str(out)
    argv = [a for a in argv if a != "--report"]
    err.print(f"confirming: {shlex.join(argv)}", highlight=False, soft_wrap=True)
    done = subprocess.run([sys.executable, "-m", "tsobench.bench", *argv[1:]], stdout=sys.stderr, check=False)
    measured = confirmation(predicted, load([str(out)]) if out.exists() else _empty())
    if as_json:
        click.echo(json.dumps({"plan": answer.to_dict(), "confirmation": measured.to_dict()}, default=_plain))
    else:
        style = "green" if measured.held else "red"
        make_console().print(f"[bold {style}]{escape(measured.sentence())}[/]", highlight=False)
    if measured.measured_tps is None:
        err.print(f"[yellow]the confirming sweep measured nothing (exit {done.returncode})[/]", highlight=False)
        return EXIT_UNKNOWN
    return EXIT_OK if measured.held else EXIT_DIRTY


def _empty() -> Any:
    import pandas as pd

    return pd.DataFrame()


def _plain(value: object) -> object:
    """numpy scalars as numbers, anything else as text."""
    return value.item() if hasattr(value, "item") else str(value)


@main.command("compare")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--strategies",
    default=None,
    metavar="A,B",
    help="Two designs within one RESULTS, point by point: A is BASE, B is NEW.",
)
@click.option(
    "--min-effect",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="Smallest change that counts, as a fraction of BASE.  [default: 0.05 (5 %)]",
)
@click.option(
    "--significance",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="1 - the confidence of the intervals.  [default: 0.05 (95 % intervals)]",
)
@click.option("--allow-unknown", is_flag=True, help="Exit 0, not 4, when some point cannot be told.")
@click.option("--strict", is_flag=True, help="Refuse (exit 2) when the two sides ran in different environments.")
@click.option("--markdown", is_flag=True, help="Print Markdown instead of the table.")
@click.option("--json", "as_json", is_flag=True, help="The comparison as one JSON document on stdout.")
@click.option("--csv", "csv_file", default=None, type=click.Path(dir_okay=False), help="Also write the table as CSV.")
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False), help="Also write the Markdown here.")
def compare_command(
    paths: tuple[str, ...],
    strategies: str | None,
    min_effect: float | None,
    significance: float | None,
    allow_unknown: bool,
    strict: bool,
    markdown: bool,
    as_json: bool,
    csv_file: str | None,
    output: str | None,
) -> None:
    """Compare BASE NEW (results folders or files) point by point: faster, slower, no significant change
    or cannot tell; or, with --strategies a,b, two designs within one RESULTS.

    Points match by strategy, API and every option that defines a point, never by the target's
    address, seed, length or time. Exit 0: no regression, every point told; 3: some point is
    slower (throughput down or p99 up by more than --min-effect, all of its interval) or no longer
    clean; 4: some point cannot be told (one run a side without samples that decide: use --repeat),
    unless --allow-unknown; 2: bad input (no common points, unreadable files, --strict across
    different environments).
    """
    from tsobench.bench.analysis.compare import compare, print_comparison, to_csv, to_document, to_markdown_text
    from tsobench.bench.analysis.validation import no_library_warnings
    from tsobench.bench.cli.output import emit_json
    from tsobench.files import write_atomically

    given = {k: v for k, v in (("min_effect", min_effect), ("significance", significance)) if v is not None}
    pair: tuple[str, str] | None = None
    if strategies is not None:
        names = [s.strip() for s in strategies.split(",") if s.strip()]
        if len(names) != 2 or names[0] == names[1]:
            _refuse(f"--strategies takes two different strategies, a,b (got {strategies!r})")
        pair = (names[0], names[1])
        if len(paths) != 1:
            _refuse(f"--strategies compares two designs within one RESULTS: give one path (got {len(paths)})")
    elif len(paths) != 2:
        _refuse(f"compare takes BASE and NEW (got {len(paths)} path(s)), or one RESULTS with --strategies a,b")
    try:
        base, *new = paths
        with no_library_warnings():
            result = compare(base, new[0] if new else None, strategies=pair, **given)
    except ValueError as exc:
        _refuse(str(exc))
    if strict and result.environment:
        _refuse("--strict: the two sides ran in different environments: " + "; ".join(map(str, result.environment)))
    for path, text in (
        (output, to_markdown_text(result) if output else ""),
        (csv_file, to_csv(result) if csv_file else ""),
    ):
        if path:
            try:
                write_atomically(path, text)
            except OSError as exc:
                _refuse(f"cannot write {path}: {exc.strerror}")
    if as_json:
        emit_json(to_document(result))
    elif markdown:
        click.echo(to_markdown_text(result), nl=False)
    else:
        print_comparison(result, make_console())
    if result.regressions:
        sys.exit(EXIT_DIRTY)
    sys.exit(EXIT_UNKNOWN if result.unknowns and not allow_unknown else EXIT_OK)


@main.command("slo")
@_slo_options
@click.option("--p99-ms", type=float, required=True, help="The objective: p99 at or below this, ms.")
@click.option("--strategies", default=None, help="Several designs: a comma-separated list of strategies.")
@click.option("--apis", default=None, help="With --strategies: a comma-separated list of APIs [default: --api].")
@click.option("--min-rate", type=float, default=None, help="Halve no lower than this, requests/s.  [default: 10]")
@click.option("--max-rate", type=float, default=None, help="Double no higher than this, requests/s.  [default: 1e7]")
@click.option(
    "--resolution", type=float, default=None, help="Stop when the bracket is within this share.  [default: 0.1]"
)
@click.option("--max-steps", type=int, default=None, help="Steps per design at most.  [default: 20]")
@click.option("--output", "-o", default=None, help="Results folder [default: results/slo-<time>/].")
@click.option("--quiet", "-q", is_flag=True, help="No progress line while a step runs.")
@json_option("Each design's search")
def slo_command(
    p99_ms: float,
    strategies: str | None,
    apis: str | None,
    output: str | None,
    quiet: bool,
    as_json: bool,
    **options: Any,
) -> None:
    """Search the highest open-loop rate whose p99 stays within --p99-ms with no errors.

    Doubling from --rate, then bisecting; each step a short run (--duration, 3 s unless given) against
    one server (an embedded one for the whole search, or --target). Every option of `tsobench run` is
    accepted. Writes each step's results file and slo.json. Exit 0: a sustainable rate found (for every
    design); 3: some design misses the target even at the lowest rate; 2: bad input; 1: could not start;
    130: interrupted (what was measured is saved).
    """
    from tsobench.bench.cli.summary import progress_line, slo_step_line, slo_table
    from tsobench.bench.model.results import DEFAULT_DIR
    from tsobench.bench.runs.runner import Progress, RunError
    from tsobench.bench.sweeps.slo import Search, Step, designs, run_searches

    limits = {k: options.pop(k) for k in ("min_rate", "max_rate", "resolution", "max_steps")}
    try:
        configs = designs(options, strategies, apis)
        for config in configs:
            config.runnable()
        start = {"start": options["rate"]} if options["rate"] is not None else {}
        search = Search(p99_ms, **start, **{k: v for k, v in limits.items() if v is not None})
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    out = Path(output) if output else DEFAULT_DIR / f"slo-{time.strftime('%Y%m%d-%H%M%S')}"
    console, err = make_console(stderr=as_json), make_console(stderr=True)
    console.print(f"{len(configs)} design(s), p99 <= {p99_ms:g} ms, steps into {out}/")
    with stop_signals(), err.status("starting", spinner="dots") as status:  # SIGTERM, SIGHUP stop it like Ctrl-C

        def on_start(design: str, n: int, rate: float) -> None:
            status.update(f"{design} step {n}: {rate:,.0f} requests/s")

        def on_step(design: str, n: int, step: Step) -> None:
            console.print(slo_step_line(design, n, step), highlight=False)

        def on_progress(p: Progress) -> None:
            status.update(progress_line(p))

        try:
            command = ["tsobench", *sys.argv[1:]]
            outcomes = run_searches(configs, search, out, command, on_start, on_step, None if quiet else on_progress)
        except RunError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            sys.exit(EXIT_FAILED)
        except KeyboardInterrupt:
            err.print(f"interrupted; what was measured is in {out}/")
            sys.exit(EXIT_INTERRUPTED)
    console.print(slo_table(outcomes, p99_ms))
    for o in outcomes:
        console.print(escape(o.line()), highlight=False, soft_wrap=True)
    console.print(f"steps and manifest: {out}/  ({out / 'slo.json'})")
    if as_json:
        from tsobench.bench.cli.output import emit_json, slo_document

        emit_json(slo_document(outcomes, p99_ms, out))
    if any(o.interrupted for o in outcomes):
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK if all(o.best for o in outcomes) else EXIT_DIRTY)
