"""``tsobench plan``: from measurements to "run this, on that many processes".

Only safe, clean strategies are candidates (never the negative control, never
a run ``verdict.judge`` does not call clean, never the ``null`` harness
ceiling). Every ceiling names where it comes from, and only a ceiling that can
be defended is called one:

- server side (``ceilings``): from the server's CPU cost per timestamp on the
  cores it can use, or its measured rate when it was measured at saturation.
  A target above it is UNREACHABLE: more client processes cannot help. The
  most the server was seen answering is shown as a lower bound, never as a
  ceiling; without the server's CPU the ceiling is unknown, and a target beyond
  what was measured is UNKNOWN, never UNREACHABLE on that account.
- client side: one client process, from the USL fit of its series (only a fit
  of at least 4 concurrency levels with R² >= 0.8 sets one). More client
  processes lift it, so the answer to a client-side limit is a number of
  processes, on machines of the measured core count, and the exact
  ``tsobench sweep ... --processes 1,2,4`` command that would confirm it.

With the headroom kept free a candidate needs
``ceil(target / (per-process throughput x (1 - headroom)))`` processes.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tsobench.bench.analysis.aggregate import designs, repeats
from tsobench.bench.analysis.ceilings import UNKNOWN_FROM, ServerSide, server_side
from tsobench.bench.analysis.loader import BY_KEY, named
from tsobench.bench.analysis.usl import SeriesFit, fit_cells, fit_series, littles_law
from tsobench.bench.measure.fairness import LITTLES_LAW_TOLERANCE
from tsobench.options import word

CONFIRM_DURATION_S = 10  # the confirming sweep's measured seconds per point


@dataclass(frozen=True)
class Candidate:
    """One measured point, scaled out to the target."""

    series: str
    strategy: str
    api: str
    concurrency: int  # callers per process
    rate: float | None  # open-loop rate it was measured at (None: closed loop)
    settings: tuple[tuple[str, Any], ...]  # the options that matter to its strategy, as it says, and their values
    count: int | None
    target: str | None  # the server measured (None: the embedded one)
    measured_processes: int
    measured_tps: float  # all processes together
    per_process_tps: float
    p99_ms: float
    rpcs_per_ts: float | None
    cores_per_machine: int | None  # as measured (cpu_count of the runs)
    server_ceiling_tps: float | None  # a ceiling that can be defended; None: unknown
    server_ceiling_kind: str | None  # "cpu cost" | "measured at saturation" | None (unknown)
    server_ceiling_from: str
    server_lower_bound_tps: float  # the most the server was seen answering at this batching: a lower bound
    server_lower_bound_from: str
    server_cpu_share: float | None  # the server's cores busy in the window (None: not recorded)
    server_threads: int  # the cores the server can use
    client_ceiling_tps: float | None  # one process, from a good enough USL fit
    client_ceiling_from: str
    processes: int | None  # needed for the target with the headroom (None: beyond the server ceiling)
    machines: int | None
    limit: str  # "measured" | "client side" | "server side" | "server unknown" | "p99"
    meets_p99: bool
    reachable: bool | None  # None: beyond what was measured, with the server's ceiling unknown
    extrapolated: bool
    command: str | None  # the sweep that would confirm the process count

    @property
    def usable(self) -> bool:
        return self.meets_p99 and self.reachable is True

    def setting(self) -> str:
        """Strategy, API and the settings that matter for it, as its results file records them
        (``strategy.settings``: a plugin's are named like a built-in's; an older file names none)."""
        text = f"{self.strategy}/{self.api} c={self.concurrency}"
        text += "".join(f" {named(k, v)}" for k, v in self.settings)
        if self.count and self.count != 1:
            text += f" count={self.count}"
        if self.rate is not None:
            text += f" (open loop at {self.rate:g}/s)"
        return text


@dataclass(frozen=True)
class Plan:
    target_tps: float
    p99_ms: float | None
    headroom: float
    required_tps: float  # target / (1 - headroom): the capacity to provision
    answer: str  # REACHABLE | MORE_PROCESSES | UNKNOWN | UNREACHABLE
    reachable: bool
    extrapolated: bool
    limit: str  # what decides the answer: measured | client side | server side | server unknown | p99 | no data
    message: str
    recommendation: Candidate | None
    focus: Candidate | None  # the row the message is about: the recommendation, or what stands in the way
    best_measured: Candidate | None
    options: tuple[Candidate, ...]  # best first
    fits: tuple[SeriesFit, ...]
    littles_law: dict[str, float | int]

    def to_dict(self) -> dict[str, object]:
        return {
            "target_tps": self.target_tps,
            "p99_ms": self.p99_ms,
            "headroom": self.headroom,
            "required_tps": self.required_tps,
            "answer": self.answer,
            "reachable": self.reachable,
            "extrapolated": self.extrapolated,
            "limit": self.limit,
            "message": self.message,
            "recommendation": _option_dict(self.recommendation),
            "focus": _option_dict(self.focus),
            "best_measured": _option_dict(self.best_measured),
            "options": [_option_dict(o) for o in self.options],
            "fits": [f.to_dict() for f in self.fits],
            "littles_law": self.littles_law,
        }


def _option_dict(option: Candidate | None) -> dict[str, object] | None:
    if option is None:
        return None
    return {"setting": option.setting(), **asdict(option)}


REACHABLE, MORE_PROCESSES, UNKNOWN, UNREACHABLE = "reachable", "reachable with more processes", "unknown", "unreachable"


def _rank(o: Candidate) -> tuple:
    """Usable first, then those whose server side is unknown, then those beyond a server ceiling (the
    highest ceiling first), then those missing the p99; within each: measured before extrapolated,
    fewest processes, lowest p99, most per process."""
    state = 0 if o.usable else 1 if o.meets_p99 and o.reachable is None else 2 if o.meets_p99 else 3
    ceiling = -(o.server_ceiling_tps or 0) if state == 2 else 0
    return (state, ceiling, o.extrapolated, o.processes or math.inf, o.p99_ms, -o.per_process_tps)


def plan(df: pd.DataFrame, target_tps: float, p99_ms: float | None = None, headroom: float = 0.3) -> Plan:
    """Which safe strategy and settings reach ``target_tps`` (timestamps/s)."""
    if not target_tps > 0 or not math.isfinite(target_tps):
        raise ValueError("--target-tps must be a positive number")
    if not 0 <= headroom < 1:
        raise ValueError("--headroom must be in [0, 1)")
    if p99_ms is not None and not p99_ms > 0:
        raise ValueError("--p99-ms must be positive")
    required = target_tps / (1 - headroom)
    agg = repeats(df)
    fits = tuple(fit_series(df))
    by_series = {f.series: f for f in fits}
    candidates = designs(agg)  # never the harness's own ceiling, nor a production client shown for reference
    measured = agg[agg["clean"] & (agg["server_rps"] > 0)]
    server_rps = measured.groupby(_server(measured))["server_rps"].max().to_dict()  # per server measured
    options = sorted(
        (
            _option(r, target_tps, headroom, p99_ms, server_rps.get(_server(r)), by_series.get(r["series"]))
            for _, r in candidates.iterrows()
        ),
        key=_rank,
    )
    within_p99 = [o for o in options if o.meets_p99]
    best = max(within_p99 or options, key=lambda o: o.measured_tps, default=None)
    usable = [o for o in options if o.usable]
    choice = usable[0] if usable else None
    if choice is not None:
        answer, limit, focus = (MORE_PROCESSES if choice.extrapolated else REACHABLE), choice.limit, choice
    elif not options:
        answer, limit, focus = UNREACHABLE, "no data", None
    elif not within_p99:
        answer, limit, focus = UNREACHABLE, "p99", min(options, key=lambda o: o.p99_ms)
    elif unknown := [o for o in within_p99 if o.reachable is None]:
        answer, limit, focus = UNKNOWN, "server unknown", unknown[0]  # ranked: fewest processes first
    else:
        answer, limit = UNREACHABLE, "server side"
        focus = max(within_p99, key=lambda o: o.server_ceiling_tps or 0)
    return Plan(
        target_tps=target_tps,
        p99_ms=p99_ms,
        headroom=headroom,
        required_tps=required,
        answer=answer,
        reachable=choice is not None,
        extrapolated=bool(choice and choice.extrapolated),
        limit=limit,
        message=_message(answer, target_tps, required, headroom, p99_ms, focus, best),
        recommendation=choice,
        focus=focus,
        best_measured=best,
        options=tuple(options),
        fits=fits,
        littles_law=_littles_summary(df),
    )


def _server(rows: pd.DataFrame | pd.Series) -> pd.Series | str:
    """Which server a run measured: its --target, or "embedded"."""
    if isinstance(rows, pd.Series):
        return "embedded" if pd.isna(rows["target"]) else str(rows["target"])
    return rows["target"].fillna("embedded").astype(str)


def _option(
    r: pd.Series, target: float, headroom: float, p99_ms: float | None, server_rps: float | None, fit: SeriesFit | None
) -> Candidate:
    measured_processes = int(r["processes"])
    per_process = r["tps"] / measured_processes
    required = target / (1 - headroom)
    cores = int(r["cpu_count"]) if pd.notna(r["cpu_count"]) and r["cpu_count"] > 0 else None
    rpcs_per_ts = float(r["rpcs_per_ts"]) if pd.notna(r["rpcs_per_ts"]) and r["rpcs_per_ts"] > 0 else None
    server: ServerSide = server_side(r, server_rps)
    if fit is not None and fit.fit is not None and fit.ceiling is not None:
        client_ceiling, client_from = fit.ceiling, f"client side: one process, USL peak (R² {fit.fit.r2:.2f})"
    else:
        client_ceiling = None
        client_from = "no client-side ceiling: " + (fit.no_ceiling_because if fit else "no one-process fit")
    p99 = float(r["p99_us"]) / 1e3
    meets_p99 = p99_ms is None or p99 <= p99_ms
    extrapolated = required > r["tps"]
    reachable: bool | None
    if not meets_p99:
        limit, reachable = "p99", False
    elif not extrapolated:
        limit, reachable = "measured", True
    elif server.ceiling_tps is None:
        limit, reachable = "server unknown", None  # beyond what was measured, and nothing says how far it goes
    elif required > server.ceiling_tps:
        limit, reachable = "server side", False
    else:
        limit, reachable = "client side", True
    processes = None if limit in ("server side", "p99") else math.ceil(required / per_process)
    option = Candidate(
        series=r["series"],
        strategy=r["strategy"],
        api=r["api"],
        concurrency=int(r["concurrency"]),
        rate=None if pd.isna(r["rate"]) else float(r["rate"]),
        settings=tuple((k, _cell(r[k])) for k in r["settings"] if k in r.index),
        count=_int(r["count"]),
        target=None if pd.isna(r["target"]) else str(r["target"]),
        measured_processes=measured_processes,
        measured_tps=float(r["tps"]),
        per_process_tps=float(per_process),
        p99_ms=p99,
        rpcs_per_ts=rpcs_per_ts,
        cores_per_machine=cores,
        server_ceiling_tps=server.ceiling_tps,
        server_ceiling_kind=server.ceiling_kind,
        server_ceiling_from=server.ceiling_from,
        server_lower_bound_tps=server.lower_bound_tps,
        server_lower_bound_from=server.lower_bound_from,
        server_cpu_share=server.cpu_share,
        server_threads=server.threads,
        client_ceiling_tps=client_ceiling,
        client_ceiling_from=client_from,
        processes=processes,
        machines=math.ceil(processes / cores) if processes is not None and cores else None,
        limit=limit,
        meets_p99=meets_p99,
        reachable=reachable,
        extrapolated=extrapolated,
        command=None,
    )
    if processes is None or not extrapolated:
        return option
    # A client-side answer is confirmed at its process count; an unknown server side is probed, not fleeted.
    probe = processes if limit == "client side" else min(processes, PROBE_MAX_PROCESSES)
    return Candidate(**{**asdict(option), "command": confirm_command(option, probe)})


PROBE_MAX_PROCESSES = 16  # the largest sweep an UNKNOWN answer suggests for loading the server harder


def confirm_command(o: Candidate, processes: int) -> str:
    """The sweep that measures this setting at 1, 2, 4, ... up to ``processes`` client processes."""
    levels = sorted({*(2**k for k in range(processes.bit_length()) if 2**k < processes), processes})
    argv = ["tsobench", "sweep", "--strategies", o.strategy, "--apis", o.api, "--concurrency", str(o.concurrency)]
    argv += ["--processes", ",".join(map(str, levels)), "--duration", str(CONFIRM_DURATION_S)]
    if o.rate is not None:
        argv += ["--rates", f"{o.rate * processes / o.measured_processes:g}"]
    for key, value in o.settings:  # the strategy's own settings, as measured
        spec = BY_KEY[key]
        if value is not None and value != spec.default:
            argv += [spec.sweep_flag, word(value)]  # an axis (--rpc-concurrencies) takes a one-value list
    if o.count and o.count != 1:
        argv += ["--count", str(o.count)]
    if o.target:
        argv += ["--target", o.target]
    argv += ["-o", f"results/confirm-{o.strategy}-{o.api}-c{o.concurrency}", "--report"]
    return shlex.join(argv)


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _cell(value: Any) -> Any:
    """A table cell as its option's value: a whole float as an int (streams 2.0 is 2), a gap as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _message(
    answer: str,
    target: float,
    required: float,
    headroom: float,
    p99_ms: float | None,
    focus: Candidate | None,
    best: Candidate | None,
) -> str:
    need = f"{target:,.0f} ts/s ({required:,.0f} ts/s of capacity with {headroom:.0%} headroom)"
    if focus is None or best is None:
        return (
            f"UNREACHABLE: {need}: no safe, clean measured point to plan from (the unsafe control and runs with "
            "violations, errors, starvation or an unfinished status are never recommended). "
            "Measure a safe strategy first."
        )
    within = f" within p99 <= {p99_ms:g} ms" if p99_ms is not None else ""
    best_text = f"{best.measured_tps:,.0f} ts/s ({best.setting()}, p={best.measured_processes})."
    if not focus.meets_p99:
        return (
            f"UNREACHABLE: {need} with p99 <= {p99_ms:g} ms: no safe measured point meets that p99; the lowest "
            f"measured is {focus.p99_ms:.2f} ms ({focus.setting()}, p={focus.measured_processes})."
        )
    if answer == UNREACHABLE:
        return (
            f"UNREACHABLE: {need}. The highest server-side ceiling of any safe point{within} is "
            f"{focus.server_ceiling_tps:,.0f} ts/s ({focus.setting()}; {focus.server_ceiling_from}). More client "
            f"processes cannot take the server past it. Best measured{within}: {best_text} Scale the TSO server "
            "(more cores or servers), batch more timestamps per RPC, or lower the target or the headroom."
        )
    assert focus.processes is not None  # within p99 and no server ceiling in the way: a process count
    setting = f"{focus.setting()} with {focus.processes} client process(es) {_machines(focus)}"
    if answer == UNKNOWN:
        return (
            f"UNKNOWN beyond what was measured: {need}. Reachable as far as measured{within}: {best_text} The "
            f"server-side ceiling is unknown: {focus.server_ceiling_from.removeprefix(UNKNOWN_FROM)}. Known is a "
            "lower bound of its capacity, not a ceiling: "
            f"{focus.server_lower_bound_from}. If the server keeps up, {setting} would give "
            f"{focus.processes * focus.per_process_tps:,.0f} ts/s. Find out by loading it harder with its CPU "
            f"recorded (--target-metrics for a --target): {focus.command}"
        )
    if answer == REACHABLE:
        return (
            f"REACHABLE (measured): {need}: {setting}. Measured {focus.measured_tps:,.0f} ts/s at p99 "
            f"{focus.p99_ms:.2f} ms with {focus.measured_processes} process(es)."
        )
    assert focus.server_ceiling_tps is not None  # more processes are recommended only within a known ceiling
    client = (
        f"one process tops out near {focus.client_ceiling_tps:,.0f} ts/s ({focus.client_ceiling_from})"
        if focus.client_ceiling_tps is not None
        else focus.client_ceiling_from
    )
    return (
        f"REACHABLE WITH MORE CLIENT PROCESSES (extrapolated; the client side is the limit): {need}: {setting} "
        f"would give {focus.processes * focus.per_process_tps:,.0f} ts/s if each process keeps its measured "
        f"{focus.per_process_tps:,.0f} ts/s; the server side allows {focus.server_ceiling_tps:,.0f} ts/s "
        f"({focus.server_ceiling_from}); {client}. p99 {focus.p99_ms:.2f} ms is as measured at "
        f"{focus.measured_processes} process(es). Confirm with: {focus.command}"
    )


def _machines(o: Candidate) -> str:
    if not o.machines:
        return "(core count not recorded)"
    return (
        f"on {o.machines} machine(s) of {o.cores_per_machine} cores (the measured core count, one client "
        "process per core)"
    )


def _littles_summary(df: pd.DataFrame) -> dict[str, float | int]:
    check = littles_law(df)
    if check.empty:
        return {"runs": 0}
    return {
        "runs": len(check),
        "median_ratio": round(float(check["ratio"].median()), 4),
        "min_ratio": round(float(check["ratio"].min()), 4),
        "max_ratio": round(float(check["ratio"].max()), 4),
        "off": int((~check["ok"]).sum()),
        "tolerance": LITTLES_LAW_TOLERANCE,
    }


# --- output -----------------------------------------------------------------


def to_json(p: Plan) -> str:
    return json.dumps(p.to_dict(), indent=1, default=_jsonable)


def _jsonable(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


VERDICTS = {
    "p99": "[yellow]p99 too high[/]",
    "server side": "[red]beyond server ceiling[/]",
    "server unknown": "[yellow]beyond measured, server ceiling unknown[/]",
    "client side": "[yellow]more processes (extrapolated)[/]",
    "measured": "[green]measured[/]",
}


def shown(p: Plan, limit: int) -> tuple[Candidate, ...]:
    """The first ``limit`` options, and always the one the answer is about and the best measured."""
    must = {id(o) for o in (p.focus, p.recommendation, p.best_measured) if o is not None}
    return tuple(o for i, o in enumerate(p.options) if i < limit or id(o) in must)


def print_plan(p: Plan, console: Console | None = None, limit: int = 10) -> None:
    """The options (best first), the USL fits, Little's law and the verdict."""
    console = console or Console()
    title = f"Plan for {p.target_tps:,.0f} ts/s, headroom {p.headroom:.0%}" + (
        f", p99 <= {p.p99_ms:g} ms" if p.p99_ms is not None else ""
    )
    table = Table(title=title, title_justify="left")
    table.add_column("setting (measured processes)", ratio=3)
    for col in ("measured ts/s", "p99 ms", "server ceiling ts/s", "server seen ts/s", "1-process ceiling", "needs"):
        table.add_column(col, justify="right")
    table.add_column("verdict")
    rows = shown(p, limit)
    for o in rows:
        needs = "-"
        if o.processes is not None and (o.usable or o.reachable is None):
            needs = f"{o.processes} proc" + (f", {o.machines} mach" if o.machines else "")
            needs += "?" if o.reachable is None else ""  # only if the server keeps up
        ceiling = f"{o.server_ceiling_tps:,.0f} ({o.server_ceiling_kind})" if o.server_ceiling_tps else "unknown"
        table.add_row(
            ("▶ " if o is p.focus else "") + f"{o.setting()} (p={o.measured_processes})",
            f"{o.measured_tps:,.0f}",
            f"{o.p99_ms:.2f}",
            ceiling,
            f">= {o.server_lower_bound_tps:,.0f}",
            f"{o.client_ceiling_tps:,.0f}" if o.client_ceiling_tps is not None else "-",
            needs,
            VERDICTS[o.limit],
        )
    captions = ["▶ the row the answer is about"] if p.focus is not None else []
    if any(o.reachable is None and o.processes is not None for o in rows):
        captions.append("?: only if the server keeps up")
    if len(p.options) > len(rows):
        captions.append(f"{len(p.options) - len(rows)} more options in --json")
    table.caption = "; ".join(captions) or None
    console.print(table)
    fits = Table(title="USL fits, one client process (timestamps/s vs callers)", title_justify="left")
    for col in ("series", "σ", "κ", "λ ts/s", "N*", "peak ts/s", "R²", "ceiling"):
        fits.add_column(col, justify="left" if col in ("series", "ceiling") else "right")
    for s in p.fits:
        ceiling = f"{s.ceiling:,.0f}" if s.ceiling is not None else f"none: {s.no_ceiling_because}"
        if s.fit is None:
            fits.add_row(s.series, *["-"] * 6, ceiling)
        else:
            c = fit_cells(s.fit)
            fits.add_row(s.series, c["sigma"], c["kappa"], c["lambda"], c["n_star"], c["peak"], c["r2"], ceiling)
    console.print(fits)
    ll = p.littles_law
    if ll.get("runs"):
        status = "ok" if not ll["off"] else f"[yellow]{ll['off']} run(s) off by more than ±{ll['tolerance']:.0%}[/]"
        console.print(
            f"Little's law (req/s x mean latency / callers, closed loop): median {ll['median_ratio']:.3f} "
            f"over {ll['runs']} runs, range {ll['min_ratio']:.3f}-{ll['max_ratio']:.3f}: {status}"
        )
    style = {REACHABLE: "green", MORE_PROCESSES: "yellow", UNKNOWN: "yellow"}.get(p.answer, "red")
    console.print(f"[bold {style}]{escape(p.message)}[/]", highlight=False)
