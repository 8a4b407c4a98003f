"""``tsobench plan``: from measurements to "run this, on that many processes".

Only safe strategies are recommended (never the unsafe control, never a
configuration with a violation, an error or an unfinished run). Every measured
point is a candidate; with the headroom kept free, it needs

    processes = ceil(target / (per-process throughput x (1 - headroom)))

client processes, on ceil(processes / cores) machines. Adding client processes
cannot take the server past its capacity, so each candidate also has a ceiling:
the most server RPCs/s measured divided by the candidate's RPCs per timestamp
(batching stretches it), or, without server counters, the best total throughput
measured; never above the series' USL peak, never below what the point itself
measured. A target past every ceiling is unreachable; one past what was
actually measured is an extrapolation and is flagged as one.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

import pandas as pd
from rich.console import Console
from rich.table import Table

from .aggregate import repeats
from .usl import LITTLE_TOLERANCE, SeriesFit, fit_cells, fit_series, littles_law


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
    measured_processes: int
    measured_tps: float  # all processes together
    per_process_tps: float
    p99_ms: float
    rpcs_per_ts: float | None
    processes: int  # needed for the target with the headroom
    machines: int
    cores_per_machine: int
    ceiling_tps: float
    ceiling_from: str
    meets_p99: bool
    reachable: bool
    extrapolated: bool

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
    """Measured before extrapolated, then fewest processes, lowest p99, most per process."""
    return (not o.usable, o.extrapolated, o.processes, o.p99_ms, -o.per_process_tps)


def plan(df: pd.DataFrame, target_tps: float, p99_ms: float | None = None, headroom: float = 0.3) -> Plan:
    """Which safe strategy and settings reach ``target_tps`` (timestamps/s)."""
    if not target_tps > 0:
        raise ValueError("--target-tps must be positive")
    if not 0 <= headroom < 1:
        raise ValueError("--headroom must be in [0, 1)")
    if p99_ms is not None and not p99_ms > 0:
        raise ValueError("--p99-ms must be positive")
    required = target_tps / (1 - headroom)
    agg = repeats(df)
    fits = tuple(fit_series(df))
    peaks = {f.series: f.fit.peak for f in fits if f.fit is not None}
    safe = agg[agg["safe"] & (agg["tps"] > 0)]
    rpc_ceiling = agg.loc[agg["clean"], "server_rps"].max()
    tps_ceiling = safe["tps"].max() if len(safe) else math.nan
    options = sorted(
        (_option(r, target_tps, headroom, p99_ms, rpc_ceiling, tps_ceiling, peaks) for _, r in safe.iterrows()),
        key=_rank,
    )
    within_p99 = [o for o in options if o.meets_p99]
    best = max(within_p99 or options, key=lambda o: o.measured_tps, default=None)
    usable = [o for o in options if o.usable]
    choice = usable[0] if usable else None
    return Plan(
        target_tps=target_tps,
        p99_ms=p99_ms,
        headroom=headroom,
        required_tps=required,
        reachable=choice is not None,
        extrapolated=bool(choice and choice.extrapolated),
        message=_message(target_tps, required, headroom, p99_ms, choice, best, options, within_p99),
        recommendation=choice,
        best_measured=best,
        options=tuple(options),
        fits=fits,
        littles_law=_littles_summary(df),
    )


def _option(
    r: pd.Series,
    target: float,
    headroom: float,
    p99_ms: float | None,
    rpc_ceiling: float,
    tps_ceiling: float,
    peaks: dict[str, float],
) -> Option:
    measured_processes = int(r["processes"])
    per_process = r["tps"] / measured_processes
    processes = math.ceil(target / (per_process * (1 - headroom)))
    required = target / (1 - headroom)
    cores = int(r["cpu_count"]) if pd.notna(r["cpu_count"]) and r["cpu_count"] > 0 else (os.cpu_count() or 1)
    rpcs_per_ts = r["rpcs_per_ts"] if pd.notna(r["rpcs_per_ts"]) and r["rpcs_per_ts"] > 0 else None
    if rpcs_per_ts is not None and pd.notna(rpc_ceiling):
        ceiling, source = rpc_ceiling / rpcs_per_ts, f"server: {rpc_ceiling:,.0f} RPCs/s max measured"
    else:
        ceiling, source = tps_ceiling, "best total throughput measured"
    peak = peaks.get(r["series"])
    if peak is not None and peak < ceiling:
        ceiling, source = peak, "USL peak of the series"
    if ceiling < r["tps"]:
        ceiling, source = r["tps"], "this point's own measurement"
    p99 = r["p99_us"] / 1e3
    return Option(
        series=r["series"],
        strategy=r["strategy"],
        api=r["api"],
        concurrency=int(r["concurrency"]),
        rate=None if pd.isna(r["rate"]) else float(r["rate"]),
        pool_size=_int(r["pool_size"]),
        streams=_int(r["streams"]),
        batch_wait_us=_int(r["batch_wait_us"]),
        count=_int(r["count"]),
        measured_processes=measured_processes,
        measured_tps=float(r["tps"]),
        per_process_tps=float(per_process),
        p99_ms=float(p99),
        rpcs_per_ts=None if rpcs_per_ts is None else float(rpcs_per_ts),
        processes=processes,
        machines=math.ceil(processes / cores),
        cores_per_machine=cores,
        ceiling_tps=float(ceiling),
        ceiling_from=source,
        meets_p99=p99_ms is None or p99 <= p99_ms,
        reachable=required <= ceiling,
        extrapolated=required > r["tps"],
    )


def _int(value: object) -> int | None:
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
            "violations, errors or an unfinished status are never recommended). Measure a safe strategy first."
        )
    if not within_p99:
        fastest = min(options, key=lambda o: o.p99_ms)
        return (
            f"UNREACHABLE: {need} with p99 <= {p99_ms:g} ms: no safe measured point meets that p99; the lowest "
            f"measured is {fastest.p99_ms:.2f} ms ({fastest.describe()}, p={fastest.measured_processes})."
        )
    if choice is None:
        top = max(within_p99, key=lambda o: o.ceiling_tps)
        return (
            f"UNREACHABLE: {need}. The highest ceiling of any safe point"
            + (f" within p99 <= {p99_ms:g} ms" if p99_ms is not None else "")
            + f" is {top.ceiling_tps:,.0f} ts/s ({top.describe()}; {top.ceiling_from}), and adding client "
            f"processes cannot take the server past its capacity. Best measured: {best.measured_tps:,.0f} ts/s "
            f"({best.describe()}, p={best.measured_processes}). Scale the TSO server, batch more, "
            "or lower the target or the headroom."
        )
    setting = (
        f"{choice.describe()} with {choice.processes} client process(es) "
        f"on {choice.machines} machine(s) of {choice.cores_per_machine} cores"
    )
    if not choice.extrapolated:
        return (
            f"REACHABLE (measured): {need}: {setting}. Measured {choice.measured_tps:,.0f} ts/s at p99 "
            f"{choice.p99_ms:.2f} ms with {choice.measured_processes} process(es)."
        )
    return (
        f"REACHABLE ONLY BY EXTRAPOLATION: {need}: {setting} would give "
        f"{choice.processes * choice.per_process_tps:,.0f} ts/s if each process keeps its measured "
        f"{choice.per_process_tps:,.0f} ts/s; the most measured is {best.measured_tps:,.0f} ts/s "
        f"({best.describe()}, p={best.measured_processes}). The estimated ceiling is {choice.ceiling_tps:,.0f} ts/s "
        f"({choice.ceiling_from}) and p99 {choice.p99_ms:.2f} ms is as measured at the smaller load. "
        "Measure this setting before relying on it."
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
    for col in ("measured ts/s", "p99 ms", "ceiling ts/s", "needs"):
        table.add_column(col, justify="right")
    table.add_column("verdict")
    for o in p.options[:limit]:
        if not o.meets_p99:
            verdict = "[yellow]p99 too high[/]"
        elif not o.reachable:
            verdict = "[red]beyond ceiling[/]"
        else:
            verdict = "[yellow]extrapolated[/]" if o.extrapolated else "[green]measured[/]"
        table.add_row(
            f"{o.describe()} (p={o.measured_processes})",
            f"{o.measured_tps:,.0f}",
            f"{o.p99_ms:.2f}",
            f"{o.ceiling_tps:,.0f}",
            f"{o.processes} proc, {o.machines} mach",
            verdict,
        )
    if len(p.options) > limit:
        table.caption = f"{len(p.options) - limit} more options in --json"
    console.print(table)
    fits = Table(title="USL fits (timestamps/s vs total callers)", title_justify="left")
    for col in ("series", "σ", "κ", "λ ts/s", "N*", "peak ts/s", "R²"):
        fits.add_column(col, justify="left" if col == "series" else "right")
    for s in p.fits:
        if s.fit is None:
            fits.add_row(s.series, f"{s.levels} level(s), needs 3", *["-"] * 5)
        else:
            c = fit_cells(s.fit)
            fits.add_row(s.series, c["sigma"], c["kappa"], c["lambda"], c["n_star"], c["peak"], c["r2"])
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
