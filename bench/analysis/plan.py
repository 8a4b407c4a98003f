"""``tsobench plan``: from measurements to "run this, on that many processes".

Only safe, clean strategies are candidates (never the negative control, never
a run ``verdict.judge`` does not call clean, never the ``null`` harness
ceiling). Every ceiling names where it comes from:

- server side: the most RPCs/s the server was measured answering, times the
  timestamps per RPC the candidate's batching achieved. It is a measured
  lower bound of the server's capacity; a target above it is UNREACHABLE as
  measured (scale or batch the server side, or measure it higher).
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
from rich.table import Table

from .aggregate import repeats
from .usl import LITTLE_TOLERANCE, SeriesFit, fit_cells, fit_series, littles_law

CONFIRM_DURATION_S = 10  # the confirming sweep's measured seconds per point


@dataclass(frozen=True)
class Option:
    """One measured point, scaled out to the target."""

    series: str
    strategy: str
    api: str
    concurrency: int  # callers per process
    rate: float | None  # open-loop rate it was measured at (None: closed loop)
    pool_size: int | None
    streams: int | None
    batch_wait_us: int | None
    count: int | None
    target: str | None  # the server measured (None: the embedded one)
    measured_processes: int
    measured_tps: float  # all processes together
    per_process_tps: float
    p99_ms: float
    rpcs_per_ts: float | None
    cores_per_machine: int | None  # as measured (cpu_count of the runs)
    server_ceiling_tps: float | None  # None: the server's counters were not measured
    server_ceiling_from: str
    client_ceiling_tps: float | None  # one process, from a good enough USL fit
    client_ceiling_from: str
    processes: int | None  # needed for the target with the headroom (None: beyond the server ceiling)
    machines: int | None
    limit: str  # "measured" | "client side" | "server side" | "p99"
    meets_p99: bool
    reachable: bool
    extrapolated: bool
    command: str | None  # the sweep that would confirm the process count

    @property
    def usable(self) -> bool:
        return self.meets_p99 and self.reachable

    def describe(self) -> str:
        """Strategy, API and the settings that matter for it (pool size, batch wait)."""
        text = f"{self.strategy}/{self.api} c={self.concurrency}"
        if self.strategy == "pool" and self.pool_size:
            text += f" pool_size={self.pool_size}"
        if self.strategy == "dispatcher" and self.batch_wait_us is not None:
            text += f" batch_wait_us={self.batch_wait_us} streams={self.streams}"
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
    reachable: bool
    extrapolated: bool
    limit: str  # what decides the answer: measured | client side | server side | p99 | no data
    message: str
    recommendation: Option | None
    best_measured: Option | None
    options: tuple[Option, ...]  # best first
    fits: tuple[SeriesFit, ...]
    littles_law: dict[str, float | int]

    def to_dict(self) -> dict[str, object]:
        return {
            "target_tps": self.target_tps,
            "p99_ms": self.p99_ms,
            "headroom": self.headroom,
            "required_tps": self.required_tps,
            "reachable": self.reachable,
            "extrapolated": self.extrapolated,
            "limit": self.limit,
            "message": self.message,
            "recommendation": _option_dict(self.recommendation),
            "best_measured": _option_dict(self.best_measured),
            "options": [_option_dict(o) for o in self.options],
            "fits": [f.to_dict() for f in self.fits],
            "littles_law": self.littles_law,
        }


def _option_dict(option: Option | None) -> dict[str, object] | None:
    if option is None:
        return None
    return {"setting": option.describe(), **asdict(option)}


def _rank(o: Option) -> tuple:
    """Usable first, measured before extrapolated, then fewest processes, lowest p99, most per process."""
    return (not o.usable, o.extrapolated, o.processes or math.inf, o.p99_ms, -o.per_process_tps)


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
    candidates = agg[agg["clean"] & agg["safe"] & ~agg["baseline"] & (agg["tps"] > 0)]
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
        limit = choice.limit
    elif not options:
        limit = "no data"
    else:
        limit = "p99" if not within_p99 else "server side"
    return Plan(
        target_tps=target_tps,
        p99_ms=p99_ms,
        headroom=headroom,
        required_tps=required,
        reachable=choice is not None,
        extrapolated=bool(choice and choice.extrapolated),
        limit=limit,
        message=_message(target_tps, required, headroom, p99_ms, choice, best, options, within_p99),
        recommendation=choice,
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
) -> Option:
    measured_processes = int(r["processes"])
    per_process = r["tps"] / measured_processes
    required = target / (1 - headroom)
    cores = int(r["cpu_count"]) if pd.notna(r["cpu_count"]) and r["cpu_count"] > 0 else None
    rpcs_per_ts = float(r["rpcs_per_ts"]) if pd.notna(r["rpcs_per_ts"]) and r["rpcs_per_ts"] > 0 else None
    if server_rps is not None:
        batching = "at this batching"
        if rpcs_per_ts is None:  # this point's batching was not measured: assume none (count ts per RPC)
            batching = "assuming no batching (not measured for this point)"
        ts_per_rpc = 1 / rpcs_per_ts if rpcs_per_ts is not None else float(r["count"] if pd.notna(r["count"]) else 1)
        server_ceiling = max(server_rps * ts_per_rpc, float(r["tps"]))
        server_from = (
            f"server side: {server_rps:,.0f} RPCs/s (the most measured) x {ts_per_rpc:,.1f} ts per RPC {batching}"
        )
    else:
        server_ceiling, server_from = None, "server side unknown: no server counters in these runs"
    if fit is not None and fit.fit is not None and fit.ceiling is not None:
        client_ceiling, client_from = fit.ceiling, f"client side: one process, USL peak (R² {fit.fit.r2:.2f})"
    else:
        client_ceiling = None
        client_from = "no client-side ceiling: " + (fit.no_ceiling_because if fit else "no one-process fit")
    p99 = float(r["p99_us"]) / 1e3
    meets_p99 = p99_ms is None or p99 <= p99_ms
    beyond = server_ceiling is not None and required > server_ceiling
    processes = None if beyond else math.ceil(required / per_process)
    extrapolated = required > r["tps"]
    if not meets_p99:
        limit = "p99"
    elif beyond:
        limit = "server side"
    else:
        limit = "client side" if extrapolated else "measured"
    option = Option(
        series=r["series"],
        strategy=r["strategy"],
        api=r["api"],
        concurrency=int(r["concurrency"]),
        rate=None if pd.isna(r["rate"]) else float(r["rate"]),
        pool_size=_int(r["pool_size"]),
        streams=_int(r["streams"]),
        batch_wait_us=_int(r["batch_wait_us"]),
        count=_int(r["count"]),
        target=None if pd.isna(r["target"]) else str(r["target"]),
        measured_processes=measured_processes,
        measured_tps=float(r["tps"]),
        per_process_tps=float(per_process),
        p99_ms=p99,
        rpcs_per_ts=rpcs_per_ts,
        cores_per_machine=cores,
        server_ceiling_tps=server_ceiling,
        server_ceiling_from=server_from,
        client_ceiling_tps=client_ceiling,
        client_ceiling_from=client_from,
        processes=processes,
        machines=math.ceil(processes / cores) if processes is not None and cores else None,
        limit=limit,
        meets_p99=meets_p99,
        reachable=not beyond,
        extrapolated=extrapolated,
        command=None,
    )
    if limit != "client side" or processes is None:
        return option
    return Option(**{**asdict(option), "command": confirm_command(option, processes)})


PROBE_MAX_PROCESSES = 16  # the largest sweep an UNREACHABLE answer suggests for loading the server harder


def confirm_command(o: Option, processes: int) -> str:
    """The sweep that measures this setting at 1, 2, 4, ... up to ``processes`` client processes."""
    levels = sorted({*(2**k for k in range(processes.bit_length()) if 2**k < processes), processes})
    argv = ["tsobench", "sweep", "--strategies", o.strategy, "--apis", o.api, "--concurrency", str(o.concurrency)]
    argv += ["--processes", ",".join(map(str, levels)), "--duration", str(CONFIRM_DURATION_S)]
    if o.rate is not None:
        argv += ["--rates", f"{o.rate * processes / o.measured_processes:g}"]
    if o.count and o.count != 1:
        argv += ["--count", str(o.count)]
    if o.target:
        argv += ["--target", o.target]
    argv += ["-o", f"results/confirm-{o.strategy}-{o.api}-c{o.concurrency}", "--report"]
    return shlex.join(argv)


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _message(
    target: float,
    required: float,
    headroom: float,
    p99_ms: float | None,
    choice: Option | None,
    best: Option | None,
    options: list[Option],
    within_p99: list[Option],
) -> str:
    need = f"{target:,.0f} ts/s ({required:,.0f} ts/s of capacity with {headroom:.0%} headroom)"
    if not options:
        return (
            f"UNREACHABLE: {need}: no safe, clean measured point to plan from (the unsafe control and runs with "
            "violations, errors, starvation or an unfinished status are never recommended). "
            "Measure a safe strategy first."
        )
    assert best is not None  # there are options, so there is a best one
    if not within_p99:
        fastest = min(options, key=lambda o: o.p99_ms)
        return (
            f"UNREACHABLE: {need} with p99 <= {p99_ms:g} ms: no safe measured point meets that p99; the lowest "
            f"measured is {fastest.p99_ms:.2f} ms ({fastest.describe()}, p={fastest.measured_processes})."
        )
    if choice is None:
        top = max(within_p99, key=lambda o: o.server_ceiling_tps or 0)
        # Enough processes to reach the target if each kept its rate, but a probe, not a fleet: at most PROBE_MAX.
        probe = confirm_command(top, min(PROBE_MAX_PROCESSES, math.ceil(required / top.per_process_tps)))
        return (
            f"UNREACHABLE as measured: {need}. The highest server-side ceiling of any safe point"
            + (f" within p99 <= {p99_ms:g} ms" if p99_ms is not None else "")
            + f" is {top.server_ceiling_tps:,.0f} ts/s ({top.describe()}; {top.server_ceiling_from}). "
            "That is what the server was measured answering, a lower bound of its capacity: no measurement "
            f"shows it can do more. Best measured: {best.measured_tps:,.0f} ts/s ({best.describe()}, "
            f"p={best.measured_processes}). Scale the TSO server, batch more timestamps per RPC, or lower the "
            f"target or the headroom; to find out whether the server can do more, load it harder: {probe}"
        )
    machines = (
        f"on {choice.machines} machine(s) of {choice.cores_per_machine} cores (the measured core count, "
        "one client process per core)"
        if choice.machines
        else "(core count not recorded)"
    )
    setting = f"{choice.describe()} with {choice.processes} client process(es) {machines}"
    if not choice.extrapolated:
        return (
            f"REACHABLE (measured): {need}: {setting}. Measured {choice.measured_tps:,.0f} ts/s at p99 "
            f"{choice.p99_ms:.2f} ms with {choice.measured_processes} process(es)."
        )
    assert choice.processes is not None  # a chosen option is within every ceiling
    server = (
        f"the server side allows {choice.server_ceiling_tps:,.0f} ts/s ({choice.server_ceiling_from})"
        if choice.server_ceiling_tps is not None
        else "the server's capacity was not measured (no server counters)"
    )
    client = (
        f"one process tops out near {choice.client_ceiling_tps:,.0f} ts/s ({choice.client_ceiling_from})"
        if choice.client_ceiling_tps is not None
        else choice.client_ceiling_from
    )
    return (
        f"REACHABLE WITH MORE CLIENT PROCESSES (extrapolated; the client side is the limit): {need}: {setting} "
        f"would give {choice.processes * choice.per_process_tps:,.0f} ts/s if each process keeps its measured "
        f"{choice.per_process_tps:,.0f} ts/s; {server}; {client}. p99 {choice.p99_ms:.2f} ms is as measured at "
        f"{choice.measured_processes} process(es). Confirm with: {choice.command}"
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
        "tolerance": LITTLE_TOLERANCE,
    }


# --- output -----------------------------------------------------------------


def to_json(p: Plan) -> str:
    return json.dumps(p.to_dict(), indent=1, default=_jsonable)


def _jsonable(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_plan(p: Plan, console: Console | None = None, limit: int = 10) -> None:
    """The options (best first), the USL fits, Little's law and the verdict."""
    console = console or Console()
    title = f"Plan for {p.target_tps:,.0f} ts/s, headroom {p.headroom:.0%}" + (
        f", p99 <= {p.p99_ms:g} ms" if p.p99_ms is not None else ""
    )
    table = Table(title=title, title_justify="left")
    table.add_column("setting (measured processes)", ratio=3)
    for col in ("measured ts/s", "p99 ms", "server ceiling ts/s", "1-process ceiling", "needs"):
        table.add_column(col, justify="right")
    table.add_column("verdict")
    verdicts = {
        "p99": "[yellow]p99 too high[/]",
        "server side": "[red]beyond server ceiling[/]",
        "client side": "[yellow]more processes (extrapolated)[/]",
        "measured": "[green]measured[/]",
    }
    for o in p.options[:limit]:
        needs = f"{o.processes} proc" + (f", {o.machines} mach" if o.machines else "") if o.usable else "-"
        table.add_row(
            f"{o.describe()} (p={o.measured_processes})",
            f"{o.measured_tps:,.0f}",
            f"{o.p99_ms:.2f}",
            f"{o.server_ceiling_tps:,.0f}" if o.server_ceiling_tps is not None else "-",
            f"{o.client_ceiling_tps:,.0f}" if o.client_ceiling_tps is not None else "-",
            needs,
            verdicts[o.limit],
        )
    if len(p.options) > limit:
        table.caption = f"{len(p.options) - limit} more options in --json"
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
    style = "green" if p.reachable and not p.extrapolated else ("yellow" if p.reachable else "red")
    console.print(f"[bold {style}]{p.message}[/]", highlight=False)
