"""Human-facing output of a run: a progress line while it runs, a table after."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tsobench.bench.measure.fairness import LITTLES_LAW_TOLERANCE
from tsobench.bench.model.config import RunConfig
from tsobench.bench.model.faults import Fault
from tsobench.bench.model.results import FaultOutcome, Metrics, RunResult
from tsobench.bench.model.verdict import Verdict, error_list, shard_error
from tsobench.bench.runs.runner import LiveInterval
from tsobench.bench.runs.runner import Progress as RunState
from tsobench.bench.sweeps.slo import Outcome, Step
from tsobench.bench.sweeps.sweep import PointOutcome, Sweep
from tsobench.options import specs, word, written


def ms(us: float | None, width: int = 0) -> str:
    """A latency for people: milliseconds, three decimals (µs resolution), the one unit of every human output."""
    return f"{'-':>{width}}" if us is None else f"{us / 1000:>{width},.3f}"


def progress_line(p: RunState) -> str:
    line = f"{p.phase:<9} {p.elapsed_s:5.1f}s / ~{p.expected_s:.0f}s  {p.done:>10,} requests"
    if p.interval is not None:
        p99 = f"{ms(p.interval.p99_us)} ms" if p.interval.requests else "-"
        line += f"  last interval {p.interval.tps:>10,.0f} ts/s  p99 {p99}"
    return line


def interval_line(i: LiveInterval, faults: Sequence[Fault] = ()) -> str:
    """One interval as it ends, a line that stays: its span from the measured window's start (the clock of
    the faults, the timeline and the report; the warm-up before 0), ts/s, requests and errors in it, p50 and
    p99 in ms, and the faults acting in it."""
    answered = i.requests > 0
    line = (
        f"{i.start_s:7.2f}–{i.end_s:.2f}s {'warmup' if i.warmup else '':<6} {i.tps:>12,.0f} ts/s "
        f"{i.requests:>10,} req {i.errors:>7,} err   p50 {ms(i.p50_us if answered else None, 8)} ms"
        f"  p99 {ms(i.p99_us if answered else None, 8)} ms"
    )
    acting = [f.spec for f in faults if _overlaps(f, i.start_s, i.end_s)]
    return line + (f"  [fault {', '.join(acting)}]" if acting else "")


def _overlaps(f: Fault, start_s: float, end_s: float) -> bool:
    """Whether fault ``f`` acts in [start, end) (an instant fault, such as abort, at its instant)."""
    return start_s <= f.at_s < end_s if f.end_s == f.at_s else f.at_s < end_s and f.end_s > start_s


def timeline_intervals(result: RunResult) -> list[LiveInterval]:
    """The results' timeline as interval lines: what the live lines missed (the last interval,
    or intervals shorter than the poll) is printed from here once the run is over."""
    step = float(result.config.get("interval_s") or 1.0)  # files before the option: 1 s
    out = []
    for e in result.timeline:
        index = math.floor(e["t_s"] / step + 1e-9)
        start, end = e["t_s"], (index + 1) * step
        if index >= 0:
            end = min(end, max(result.metrics["measured_s"], start))
        p50, p99 = e["p50_us"] or 0, e["p99_us"] or 0
        out.append(LiveInterval(index, start, end, e["ok"], e["failed"], e["tps"], p50, p99))
    return out


class RunProgress:
    """What a run shows on stderr while it goes (``--progress``): ``lines``, a line per interval that
    stays, under them (on a terminal) a status line to the end; ``bar``, the status line alone;
    ``none``, nothing. Piped, only the lines are written: a status line is for a person watching."""

    def __init__(self, console: Console, config: RunConfig, mode: str) -> None:
        self.console, self.config, self.mode = console, config, mode
        self._last = -(1 << 62)
        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        self._bar = Progress(*columns, console=console, transient=True) if mode != "none" else None
        self._task = self._bar.add_task("starting", total=config.expected_seconds()) if self._bar else None

    def __enter__(self) -> RunProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, p: RunState) -> None:
        if self._bar is None or self._task is None:
            return
        if self.mode == "lines" and p.interval is not None:
            self._line(p.interval)
        self._bar.update(self._task, description=progress_line(p), completed=p.elapsed_s, total=p.expected_s)

    def _line(self, interval: LiveInterval) -> None:
        if interval.index > self._last:
            self._last = interval.index
            line = interval_line(interval, self.config.faults)
            self.console.print(escape(line), highlight=False, soft_wrap=True)

    def finish(self, result: RunResult) -> None:
        """The intervals the live lines did not show (the last one ends with the run)."""
        if self.mode == "lines":
            for interval in timeline_intervals(result):
                self._line(interval)


VERDICT_STYLE = {
    Verdict.CLEAN: "bold green",
    Verdict.INTERRUPTED: "yellow",
    Verdict.ERRORS: "bold yellow",
    Verdict.STARVED: "bold red",
    Verdict.UNRECOVERED: "bold red",
    Verdict.VIOLATIONS: "bold red",
    Verdict.FAILED: "bold red",
}


def verdict(result: RunResult) -> str:
    j = result.judgement
    style = "magenta" if j.negative_control and not j.clean else VERDICT_STYLE[j.verdict]
    word = "OK" if j.clean else j.verdict.value.upper()
    control = "  (negative control: failing is expected)" if j.negative_control and not j.clean else ""
    return f"[{style}]{word}[/] ({escape(j.detail)}){control}"


def fairness_line(m: Metrics) -> str:
    """Completions per caller, starvation, censored waits and Little's law, in one line."""
    f = m["fairness"]
    jain = "-" if f["jain"] is None else f"{f['jain']:.3f}"
    line = f"jain {jain}  per caller {f['min_per_caller']:,}..{f['max_per_caller']:,}"
    if f["starved_callers"]:
        line += f"  [bold red]{f['starved_callers']} of {m['callers']} callers starved[/]"
    ratio = m.get("littles_law_ratio")
    if ratio is not None and abs(ratio - 1) > LITTLES_LAW_TOLERANCE:
        line += f"  [yellow]Little's law {ratio:.2f}: callers waited on something the latency does not show[/]"
    return line


def run_table(result: RunResult) -> Table:
    cfg, m = result.config, result.metrics
    lat = m["latency_us"]
    table = Table(
        title=f"{cfg['strategy']} / {cfg['api']}  c={cfg['concurrency']} p={cfg['processes']}"
        + (f" rate={cfg['rate']:g}/s" if cfg.get("rate") else "  closed loop"),
        show_header=False,
        title_justify="left",
    )
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "throughput",
        f"{m['throughput_rps']:,.0f} req/s   {m['throughput_tps']:,.0f} ts/s"
        f"   ({m['requests_ok']:,} ok in {m['measured_s']:.2f}s)",
    )
    if m["requests_ok"]:
        table.add_row("latency ms", "  ".join(f"{k} {ms(lat[k])}" for k in ("p50", "p90", "p99", "p999", "max")))
    else:
        table.add_row("latency ms", "- (no successful replies)")
    if "latency_uncorrected_us" in m:
        u = m["latency_uncorrected_us"]
        table.add_row("uncorrected", "  ".join(f"{k} {ms(u[k])}" for k in ("p50", "p90", "p99", "p999", "max")))
    table.add_row("errors", error_list(m["errors"]))
    for kind, sample in (m.get("error_samples") or {}).items():
        table.add_row("", escape(f"{kind}: {sample.get('message', '')} ({sample.get('where', '?')})"))
    if "fairness" in m:
        table.add_row("fairness", fairness_line(m))
    if m.get("censored"):
        table.add_row("at the close", f"{m['censored']:,} requests in flight: their waits so far are in the latency")
    if b := m.get("batching"):
        table.add_row(
            "batching",
            f"{b['rpcs_per_s']:,.0f} RPCs/s, mean batch {b['mean_batch']:,.2f}; per request: "
            f"{ms(b['wait_us_mean'])} ms waiting for its batch + {ms(b['rpc_us_mean'])} ms its RPC",
        )
    if m.get("reconnects"):
        table.add_row("reconnects", f"{m['reconnects']:,} streams reopened after a failure")
    cpu = f"{m['client_cpu_s']:.2f}s"
    if m.get("client_cpu_us_per_ts"):
        cpu += f"  ({m['client_cpu_us_per_ts']:.1f} µs per timestamp)"
    table.add_row("client cpu", cpu)
    s = m.get("server")
    if s:
        cpu = ""
        if s.get("cpu_us_per_rpc") is not None:
            cpu = f"  cpu {s['cpu_share']:.0%} of a core, {s['cpu_us_per_rpc']:,.1f} µs per rpc"
        opened = f"{s['streams']:,} streams opened in the window" if s["streams"] else "no stream opened in the window"
        table.add_row(
            "server",
            f"{s['rpcs']:,} rpcs  {s['timestamps']:,} ts  mean batch {s['mean_batch']:.2f}{cpu}  ({opened})",
        )
    table.add_row("distance", distance(result))
    for fault in result.faults:
        table.add_row("fault", recovery_line(fault))
    table.add_row("correctness", verdict(result))
    for shard in result.shards:
        if why := shard_error(shard):
            where = " ".join(str(shard[k]) for k in ("host", "worker") if shard.get(k))
            table.add_row(f"shard {shard['index']}", f"[bold red]failed[/] {escape(where)}: {escape(why)}")
    for warning in result.environment.get("warnings") or []:
        table.add_row("warning", f"[yellow]{escape(warning)}[/]")
    if result.status != "completed":
        table.add_row("status", f"[bold yellow]{result.status}[/]")
    return table


def distance(result: RunResult) -> str:
    """The round trip the figures were measured at, in words."""
    n = result.network
    if not n:
        return "-"
    rtt = n.get("rtt_ms")
    text = f"round trip {rtt['min']:.3f} ms min, {rtt['median']:.3f} ms median" if rtt else "round trip not measured"
    if e := n.get("emulated"):
        text += f" (emulated {e['rtt_ms']:g} ms" + (
            f" + up to {e['jitter_ms']:g} ms jitter)" if e["jitter_ms"] else ")"
        )
    elif n.get("loopback"):
        text += " (loopback: real clients sit 0.2-2 ms away)"
    return text


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def recovery_line(f: FaultOutcome) -> str:
    """What one fault did and how the callers recovered, in one line."""
    span = f"{f['spec']:<18} {f['started_s']:.2f}–{f['ended_s']:.2f}s"
    if not f["recovered"]:
        why = f["error"] or "no successful reply after it"
        return f"{escape(span)}  [bold red]NOT RECOVERED[/] ({escape(why)}); {f['failed_requests']:,} failed"
    during = "-" if f["p99_during_us"] is None else f"{f['p99_during_us'] / 1000:,.1f} ms"
    return (
        f"{escape(span)}  {f['failed_requests']:,} failed, first success {_seconds(f['first_success_after_s'])} "
        f"after its end, p99 during {during}, back to baseline after {_seconds(f['time_to_baseline_s'])}"
    )


def print_run(result: RunResult, path: str | None, console: Console | None = None) -> None:
    console = console or Console()
    console.print(run_table(result))
    if path:
        console.print(f"results: {path}")


STATUS_STYLE = {"ok": "green", "dirty": "yellow", "failed": "bold red", "interrupted": "yellow", "skipped": "dim"}


DONE_EARLIER = "done earlier"  # a resumed sweep's point whose result was already in the folder


def shown_status(outcome: PointOutcome) -> str:
    """The point's status as a person reads it: a dirty point by its verdict (``starved``, ``errors``,
    ``violations``, ...), a resumed one as done earlier, one not runnable here as skipped."""
    s = outcome.summary or {}
    if outcome.status == "skipped":
        return DONE_EARLIER if outcome.result else "skipped"
    if outcome.status == "dirty" and s.get("verdict"):
        return str(s["verdict"])
    return outcome.status


def point_line(key: str, outcome: PointOutcome) -> str:
    status = shown_status(outcome)
    style = STATUS_STYLE.get(outcome.status, "")
    figures = ""
    if outcome.summary:
        s = outcome.summary
        if not s.get("measured_s") and outcome.status == "interrupted":
            figures = "stopped before its measured window opened: nothing measured"
        else:
            p99 = ms(s["p99_us"] if s.get("requests_ok") else None, 8)  # no answers, no latency
            figures = f"{s['throughput_tps']:>10,.0f} ts/s  p99 {p99} ms"
            if outcome.status == "interrupted":
                figures += f"  (in {s['measured_s']:.1f}s measured before the stop)"
        if s["violations"] or s["requests_failed"]:
            figures += f"  violations {s['violations']}  failed {s['requests_failed']}"
        if outcome.status == "dirty" and s.get("detail"):
            figures += f"  {escape(str(s['detail']))}"
    elif outcome.error:
        figures = escape(outcome.error)
    return f"[{style}]{status:<12}[/] {key:<42} {figures}  ({outcome.wall_s:.1f}s)"


def sweep_table(sweep: Sweep, outcomes: dict[str, PointOutcome]) -> Table:
    """One row per point: the axes the sweep varies (every axis a sweep can vary, named as its flag),
    then what the point measured and its verdict."""
    varied = [
        spec
        for spec in specs(RunConfig)
        if spec.axis_key is not None and len({word(spec.get(p.config)) for p in sweep.points}) > 1
    ] or [s for s in specs(RunConfig) if s.key in ("strategy", "api", "concurrency")]
    table = Table(title=f"sweep {sweep.name}", title_justify="left")
    for spec in varied:
        table.add_column(spec.name, justify="right" if spec.kind in (int, float) else "left")
    for col in ("ts/s", "p99 ms", "verdict"):
        table.add_column(col, justify="left" if col == "verdict" else "right")
    for point in sweep.points:
        outcome = outcomes.get(point.key)
        if outcome is None:
            continue
        s = outcome.summary or {}
        verdict = shown_status(outcome)
        if outcome.status == "skipped" and not outcome.result:  # not runnable here
            verdict = f"skipped: {escape(outcome.error or '')}"
        if s.get("violations"):
            verdict = f"[bold red]{s['violations']} violations[/]"
        elif s.get("requests_failed") and outcome.status != "ok":  # a fault run's failures can be expected
            verdict = f"[yellow]{s['requests_failed']} errors[/]"
        table.add_row(
            *(escape(written(spec, spec.get(point.config))) for spec in varied),
            f"{s['throughput_tps']:,.0f}" if s else "-",
            ms(s["p99_us"]) if s.get("requests_ok") else "-",
            verdict,
        )
    return table


def slo_step_line(design: str, n: int, step: Step) -> str:
    """One step of an SLO search, as it ends."""
    mark = "[green]pass[/]" if step.passed else "[yellow]interrupted[/]" if step.interrupted else "[red]fail[/]"
    return f"{escape(design)} step {n}: {step.rate:,.0f}/s offered, {step.tps:,.0f} ts/s: {mark} ({escape(step.why)})"


def slo_table(outcomes: Sequence[Outcome], p99_ms: float) -> Table:
    """Each design's sustainable throughput at the objective, with the bracket its search found."""
    table = Table(title=f"Sustainable ts/s at p99 <= {p99_ms:g} ms", title_justify="left")
    for col in ("design", "sustainable ts/s", "offered requests/s", "p99 ms", "bracket requests/s", "steps", "stopped"):
        table.add_column(col, justify="left" if col in ("design", "stopped") else "right")
    for o in outcomes:
        best = o.best
        table.add_row(
            escape(o.design),
            f"{best.tps:,.0f}" if best else "-",
            f"{best.rate:,.0f}" if best else "-",
            f"{best.p99_ms:,.2f}" if best and best.p99_ms is not None else "-",
            o.bracket_text(),
            str(len(o.steps)),
            escape(o.stopped),
        )
    return table
