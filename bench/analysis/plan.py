"""``tsobench plan``: from measurements to "run this, on that many processes", with how sure that is.

Only safe, clean strategies are candidates (never the negative control, never
a run ``verdict.judge`` does not call clean, never the ``null`` harness
ceiling). Every figure names where it comes from, and only a ceiling that can
be defended is called one:

- server side (``ceilings``): measured at saturation, or the server's cost
  model (``costmodel``, fitted on every run against the same server) at the
  batch the setting would have at the planned rate, with its interval. A target
  above the interval at the most the design can batch is UNREACHABLE; above the
  interval at the planned batch, or inside it, is UNKNOWN (and says what would
  tell); at or below its low end, the client side decides. What the server was
  seen answering is this design's own measurement, a lower bound.
- client side: one client process, from the USL fit of its series (only a fit
  of at least 4 concurrency levels with R² >= 0.8 sets one). More client
  processes lift it, so the answer is a number of processes, as a range from
  the per-process rate's interval, and the sweep that would confirm it.
- the rate per process: with ``--p99-ms``, a design's open-loop runs (``tsobench
  slo`` steps) that held the objective are what it sustains; its closed-loop
  throughput is used only where none exist, and is marked as such.
- the distance (``--rtt-ms``): only points measured near that round trip; a
  loopback figure is never carried to a longer one. Each design's stated bound
  at that round trip is named, and where nothing was measured near it, the
  sweep that would measure it.

With the headroom kept free a candidate needs
``ceil(target / (per-process throughput x (1 - headroom)))`` processes.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tsobench.bench.analysis import costmodel
from tsobench.bench.analysis.aggregate import designs, repeats
from tsobench.bench.analysis.ceilings import UNKNOWN_FROM, Batch, ServerSide, planned_batch, server_side
from tsobench.bench.analysis.distance import distance_key, distance_text, round_trip_ms
from tsobench.bench.analysis.loader import BY_KEY, POINT, flag, named
from tsobench.bench.analysis.stats import Samples, median_ci, prediction_interval
from tsobench.bench.analysis.usl import SeriesFit, fit_cells, fit_series, littles_law
from tsobench.bench.measure.fairness import LITTLES_LAW_TOLERANCE
from tsobench.options import word

CONFIRM_DURATION_S = 10  # the confirming sweep's measured seconds per point
NEAR = 1.5  # a point measured within this factor of --rtt-ms was measured near it
SUSTAINED, CLOSED_ONLY, CLOSED, OPEN = (
    "sustained: the highest open-loop rate that held the objective",
    "closed-loop throughput (no sustainable rate measured for this design)",
    "closed-loop throughput",
    "open loop",
)


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
    basis: str  # what its rate per process is: SUSTAINED | CLOSED_ONLY | CLOSED | OPEN
    distance: str  # where it was measured, in words
    rtt_ms: float | None  # its round trip (None: not recorded)
    measured_processes: int
    measured_tps: float  # all processes together
    per_process_tps: float
    per_process_interval: tuple[float, float] | None  # the median's interval (stats), per process
    per_process_spread: tuple[float, float] | None  # where one new measurement is expected (95 % prediction)
    p99_ms: float
    rpcs_per_ts: float | None
    ts_per_rpc: float  # at the planned rate
    batch_from: str
    pd_rpcs_per_s: float  # the load the target puts on the server: RPCs/s at that batch
    cores_per_machine: int | None  # as measured (cpu_count of the runs)
    server_ceiling_tps: float | None  # a ceiling that can be defended; None: unknown
    server_ceiling_interval: tuple[float, float] | None
    server_ceiling_kind: str | None  # "fitted cost" | "measured at saturation" | None (unknown)
    server_ceiling_from: str
    server_best_tps: float | None  # the ceiling's high end at the most this design can batch
    server_lower_bound_tps: float  # the most this design was seen answering: a lower bound
    server_lower_bound_from: str
    server_cpu_share: float | None  # the server's cores busy in the window (None: not recorded)
    server_threads: int  # the cores the server can use
    client_ceiling_tps: float | None  # one process, from a good enough USL fit
    client_ceiling_from: str
    processes: int | None  # needed for the target with the headroom (None: beyond the server ceiling)
    processes_range: tuple[int, int] | None  # from the per-process rate's interval
    machines: int | None
    limit: str  # measured | client side | server side | server at this batch | server uncertain | server unknown | p99
    meets_p99: bool
    reachable: bool | None  # None: not known either way
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

    def needs(self) -> str:
        """``8 processes`` or ``8 processes (6-11)``."""
        if self.processes is None:
            return "-"
        low, high = self.processes_range or (self.processes, self.processes)
        spread = f" ({low}-{high})" if (low, high) != (self.processes, self.processes) else ""
        return f"{self.processes} process(es){spread}"


@dataclass(frozen=True)
class AtDistance:
    """What the runs say at the user's round trip (``--rtt-ms``)."""

    rtt_ms: float
    near: int  # points measured near it
    measured: tuple[str, ...]  # the distances the runs were measured at
    bounds: tuple[str, ...]  # each design's stated bound at this round trip
    sweep: str | None  # the sweep that would measure it (None: something was measured near it)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    target_tps: float
    p99_ms: float | None
    headroom: float
    required_tps: float  # target / (1 - headroom): the capacity to provision
    answer: str  # REACHABLE | MORE_PROCESSES | UNKNOWN | UNREACHABLE
    reachable: bool
    extrapolated: bool
    limit: str  # what decides the answer (a Candidate's limit, "no data" or "distance")
    message: str
    recommendation: Candidate | None
    focus: Candidate | None  # the row the message is about: the recommendation, or what stands in the way
    runner_up: Candidate | None  # the best option of another design
    best_measured: Candidate | None
    options: tuple[Candidate, ...]  # best first
    fits: tuple[SeriesFit, ...]
    cost_models: tuple[costmodel.Fit, ...]
    at_distance: AtDistance | None
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
            "runner_up": _option_dict(self.runner_up),
            "best_measured": _option_dict(self.best_measured),
            "options": [_option_dict(o) for o in self.options],
            "fits": [f.to_dict() for f in self.fits],
            "cost_models": [m.to_dict() for m in self.cost_models],
            "at_distance": self.at_distance.to_dict() if self.at_distance else None,
            "littles_law": self.littles_law,
        }


def _option_dict(option: Candidate | None) -> dict[str, object] | None:
    """An option as JSON: an unbounded figure (a ceiling the runs set no upper end to) as null."""
    if option is None:
        return None
    return {"setting": option.setting(), **_finite(asdict(option))}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


REACHABLE, MORE_PROCESSES, UNKNOWN, UNREACHABLE = "reachable", "reachable with more processes", "unknown", "unreachable"
OPEN_LIMITS = ("server at this batch", "server uncertain", "server unknown")  # not known either way


def _rank(o: Candidate) -> tuple:
    """Usable first, then those not known either way, then those beyond a server ceiling (the highest
    ceiling first), then those missing the p99; within each: sustained before closed loop, measured before
    extrapolated, fewest processes, lowest p99, most per process."""
    state = 0 if o.usable else 1 if o.meets_p99 and o.reachable is None else 2 if o.meets_p99 else 3
    ceiling = -(o.server_best_tps or 0) if state == 2 else 0
    weaker = o.basis == CLOSED_ONLY
    return (state, ceiling, weaker, o.extrapolated, o.processes or math.inf, o.p99_ms, -o.per_process_tps)


def plan(
    df: pd.DataFrame,
    target_tps: float,
    p99_ms: float | None = None,
    headroom: float = 0.3,
    rtt_ms: float | None = None,
) -> Plan:
    """Which safe strategy and settings reach ``target_tps`` (timestamps/s), at ``rtt_ms`` when given."""
    if not target_tps > 0 or not math.isfinite(target_tps):
        raise ValueError("--target-tps must be a positive number")
    if not 0 <= headroom < 1:
        raise ValueError("--headroom must be in [0, 1)")
    if p99_ms is not None and not p99_ms > 0:
        raise ValueError("--p99-ms must be positive")
    if rtt_ms is not None and not (rtt_ms > 0 and math.isfinite(rtt_ms)):
        raise ValueError("--rtt-ms must be a positive number")
    required = target_tps / (1 - headroom)
    agg = repeats(df)
    fits = tuple(fit_series(df))
    by_series = {f.series: f for f in fits}
    models = costmodel.fit_all(df)
    per_point = _per_point(df)
    points = designs(agg)  # never the harness's own ceiling, nor a production client shown for reference
    at_distance = None
    if rtt_ms is not None:
        near = points[[_near(r, rtt_ms) for _, r in points.iterrows()]]
        at_distance = _at_distance(points, near, rtt_ms)
        points = near
    bases = _bases(points, p99_ms)
    seen = _seen(points, per_point)
    options = sorted(
        (
            _option(r, target_tps, headroom, p99_ms, basis, by_series.get(r["series"]), models, per_point, seen)
            for i, r in points.iterrows()
            if (basis := bases[i]) is not None
        ),
        key=_rank,
    )
    within_p99 = [o for o in options if o.meets_p99]
    best = max(within_p99 or options, key=lambda o: o.measured_tps, default=None)
    usable = [o for o in options if o.usable]
    choice = usable[0] if usable else None
    if choice is not None:
        answer, limit, focus = (MORE_PROCESSES if choice.extrapolated else REACHABLE), choice.limit, choice
    elif not options and at_distance is not None and at_distance.sweep is not None:
        answer, limit, focus = UNKNOWN, "distance", None
    elif not options:
        answer, limit, focus = UNREACHABLE, "no data", None
    elif not within_p99:
        answer, limit, focus = UNREACHABLE, "p99", min(options, key=lambda o: o.p99_ms)
    elif unknown := [o for o in within_p99 if o.reachable is None]:
        answer, limit, focus = UNKNOWN, unknown[0].limit, unknown[0]  # ranked: fewest processes first
    else:
        answer, limit = UNREACHABLE, "server side"
        focus = max(within_p99, key=lambda o: o.server_best_tps or 0)
    runner_up = next((o for o in options if focus is not None and o.series != focus.series), None)
    message = _message(answer, target_tps, required, headroom, p99_ms, focus, best, at_distance)
    if runner_up is not None:
        message += f" Runner-up: {_runner_up(runner_up)}."
    if options and at_distance is not None and at_distance.sweep is not None:
        message += f" Designs not measured near {at_distance.rtt_ms:g} ms are left out; {at_distance.sweep} would."
    return Plan(
        target_tps=target_tps,
        p99_ms=p99_ms,
        headroom=headroom,
        required_tps=required,
        answer=answer,
        reachable=choice is not None,
        extrapolated=bool(choice and choice.extrapolated),
        limit=limit,
        message=message,
        recommendation=choice,
        focus=focus,
        runner_up=runner_up,
        best_measured=best,
        options=tuple(options),
        fits=fits,
        cost_models=tuple(models.values()),
        at_distance=at_distance,
        littles_law=_littles_summary(df),
    )


def _key(values: Any) -> tuple:
    """A point's key with every gap as None (NaN never equals itself)."""
    return tuple(None if not isinstance(v, tuple | list) and pd.isna(v) else v for v in values)


def _per_point(df: pd.DataFrame) -> dict[tuple, dict[str, Any]]:
    """Per point (``loader.POINT``): the server its runs measured (``costmodel.server_key``) and the streams
    the server saw opened per RPC, figures ``aggregate.repeats`` does not fold."""
    out: dict[tuple, dict[str, Any]] = {}
    for _, r in df.iterrows():
        entry = out.setdefault(
            _key(r[k] for k in POINT), {"server": costmodel.server_key(r), "rpcs": 0.0, "streams": 0.0}
        )
        if pd.notna(r["server_rpcs"]) and pd.notna(r["server_streams"]):
            entry["rpcs"] += float(r["server_rpcs"])
            entry["streams"] += float(r["server_streams"])
    return out


LOOPBACK_MS = 0.2  # the longest round trip a loopback point stands for, however a loaded machine measured it


def _near(r: pd.Series, rtt_ms: float) -> bool:
    """Whether the point was measured within x``NEAR`` of ``rtt_ms``: an emulated round trip as set, a loopback
    one only for a round trip under ``LOOPBACK_MS`` (its measured GetMembers time on a busy machine is
    scheduling, not distance), else the round trip measured before the load."""
    emulated = r.get("rtt_emulated_ms")
    if emulated is not None and pd.notna(emulated) and emulated > 0:
        rtt: float | None = float(emulated)
    elif flag(r.get("loopback")):
        return rtt_ms <= LOOPBACK_MS
    else:
        rtt = round_trip_ms(r)
    return rtt is not None and rtt_ms / NEAR <= rtt <= rtt_ms * NEAR


def _at_distance(points: pd.DataFrame, near: pd.DataFrame, rtt_ms: float) -> AtDistance:
    """Each design's bound at ``rtt_ms`` (its stated requests or batches in flight per round trip, per
    process) and, where no point of it was measured near that round trip, the sweep that would."""
    measured = _distances(points)
    bounds = []
    missing: dict[str, set[str]] = {}
    for design, g in points.groupby("design", sort=True):
        first = g.iloc[0]
        most = g.loc[g["bound_in_flight"].fillna(0).astype(float).idxmax()]  # its largest measured in-flight
        in_flight, unit = most.get("bound_in_flight"), str(most.get("bound_unit") or "requests")
        if in_flight is not None and pd.notna(in_flight) and in_flight > 0:
            per_s = float(in_flight) / (rtt_ms / 1e3)
            at = f" c={int(most['concurrency'])}" if g["bound_in_flight"].nunique() > 1 else ""  # it varies with c
            what = "RPCs" if unit == "batches" else "requests"
            one = unit.removesuffix("es" if unit == "batches" else "s") if in_flight == 1 else unit
            bounds.append(
                f"{design}{at}: at most {per_s:,.0f} {what}/s per process ({int(in_flight)} "
                f"{one} in flight per round trip"
                + (", each batch carrying every caller that queued)" if unit == "batches" else ")")
            )
        else:
            bounds.append(f"{design}: states no bound")
        if not near["design"].eq(design).any():
            missing.setdefault(str(first["strategy"]), set()).add(str(first["api"]))
    sweep = None
    if missing or near.empty:
        strategies = sorted(missing) or sorted(set(points["strategy"])) or ["dispatcher"]
        apis = sorted({a for s in missing.values() for a in s}) or ["asyncio"]
        argv = ["tsobench", "sweep", "--strategies", ",".join(strategies), "--apis", ",".join(apis)]
        argv += ["--concurrency", "1,8,64", "--server-rtt-ms", f"{rtt_ms:g}", "--duration", "5"]
        argv += ["-o", f"results/rtt-{rtt_ms:g}ms", "--report"]
        sweep = shlex.join(argv)
    return AtDistance(rtt_ms, len(near), measured, tuple(bounds), sweep)


def _distances(points: pd.DataFrame) -> tuple[str, ...]:
    """The distances measured, each once: ``loopback (round trips measured 0.05-0.96 ms)``, ``2 ms emulated``."""
    out = []
    keys = pd.Series([distance_key(r) for _, r in points.iterrows()], index=points.index, dtype=object)
    for key, g in points.groupby(keys, sort=True):
        rtts = [x for x in (round_trip_ms(r) for _, r in g.iterrows()) if x is not None]
        span = (
            f"{min(rtts):.2f}-{max(rtts):.2f}" if rtts and min(rtts) != max(rtts) else f"{rtts[0]:.2f}" if rtts else ""
        )
        out.append(f"{key} (round trips measured {span} ms)" if span else str(key))
    return tuple(out)


def _bases(points: pd.DataFrame, p99_ms: float | None) -> dict[Any, str | None]:
    """What each point's rate stands for. With ``p99_ms``: a design with open-loop points is planned from
    those (the highest that held it is what it sustains; none held: it sustains nothing at that p99), its
    closed-loop points dropped; a design without any is planned from its closed loop, marked. Without
    ``p99_ms`` every point is what it is."""
    out: dict[Any, str | None] = {}
    for _, g in points.groupby("design", sort=False):
        held = g[g["open_loop"] & (g["p99_us"] / 1e3 <= p99_ms)] if p99_ms is not None else g.iloc[0:0]
        top = held["tps"].idxmax() if not held.empty else None
        offered = bool(g["open_loop"].any())  # arrivals were offered: what it sustains is known, held or not
        for i, r in g.iterrows():
            if p99_ms is None:
                out[i] = OPEN if r["open_loop"] else CLOSED
            elif offered:
                out[i] = (SUSTAINED if i == top else OPEN) if r["open_loop"] else None
            else:
                out[i] = CLOSED_ONLY
    return out


def _seen(points: pd.DataFrame, per_point: dict[tuple, dict[str, Any]]) -> dict[tuple, tuple[float, str]]:
    """Per design and server: the most it was measured answering, and where."""
    out: dict[tuple, tuple[float, str]] = {}
    for _, r in points.iterrows():
        key = (r["design"], per_point[_key(r[k] for k in POINT)]["server"])
        if key not in out or r["tps"] > out[key][0]:
            out[key] = (float(r["tps"]), f"{r['series']} c={int(r['concurrency'])} p={int(r['processes'])}")
    return out


def rate_interval(row: pd.Series) -> tuple[float, float] | None:
    """The interval of a point's throughput median, from its samples (``stats``: repeats, or one run's
    batch means); None with a single figure or samples that only show steadiness. The one place the
    plan asks ``stats`` for an interval."""
    samples = row.get("samples")
    tps = getattr(samples, "tps", None)
    if not isinstance(tps, Samples):
        return None
    est = median_ci(tps)
    if est.confidence is None or est.low is None or est.high is None:
        return None
    return est.low, est.high


def rate_spread(row: pd.Series) -> tuple[float, float] | None:
    """Where one new measurement of the point is expected (``stats.prediction_interval`` of its samples:
    repeats, or one run's batch means), not the median's interval; None without samples that decide."""
    tps = getattr(row.get("samples"), "tps", None)
    return prediction_interval(tps) if isinstance(tps, Samples) else None


def _option(
    r: pd.Series,
    target: float,
    headroom: float,
    p99_ms: float | None,
    basis: str,
    fit: SeriesFit | None,
    models: dict[tuple[str, ...], costmodel.Fit],
    per_point: dict[tuple, dict[str, Any]],
    seen: dict[tuple, tuple[float, str]],
) -> Candidate:
    measured_processes = int(r["processes"])
    per_process = float(r["tps"]) / measured_processes
    required = target / (1 - headroom)
    cores = int(r["cpu_count"]) if pd.notna(r["cpu_count"]) and r["cpu_count"] > 0 else None
    rpcs_per_ts = float(r["rpcs_per_ts"]) if pd.notna(r["rpcs_per_ts"]) and r["rpcs_per_ts"] > 0 else None
    point = per_point[_key(r[k] for k in POINT)]
    count = _int(r["count"]) or 1
    processes = math.ceil(required / per_process)
    batch: Batch = planned_batch(
        r, required / processes / count, point["streams"] / point["rpcs"] if point["rpcs"] else 0.0
    )
    seen_tps, seen_at = seen[(r["design"], point["server"])]
    server: ServerSide = server_side(r, models.get(point["server"]), batch, seen_tps, seen_at)
    if fit is not None and fit.fit is not None and fit.ceiling is not None:
        client_ceiling, client_from = fit.ceiling, f"client side: one process, USL peak (R² {fit.fit.r2:.2f})"
    else:
        client_ceiling = None
        client_from = "no client-side ceiling: " + (fit.no_ceiling_because if fit else "no one-process fit")
    p99 = float(r["p99_us"]) / 1e3
    meets_p99 = p99_ms is None or p99 <= p99_ms
    extrapolated = required > r["tps"]
    interval = server.ceiling_interval
    reachable: bool | None
    if not meets_p99:
        limit, reachable = "p99", False
    elif not extrapolated:
        limit, reachable = "measured", True
    elif server.ceiling_tps is None or interval is None:
        limit, reachable = "server unknown", None  # beyond what was measured, and nothing says how far it goes
    elif server.best_tps is not None and required > server.best_tps:
        limit, reachable = "server side", False  # above the ceiling even at the most this design batches
    elif required > interval[1]:
        limit, reachable = "server at this batch", None  # a larger batch would lift it: not known either way
    elif required > interval[0]:
        limit, reachable = "server uncertain", None  # inside the ceiling's interval
    else:
        limit, reachable = "client side", True
    rate = rate_interval(r)
    spread = rate_spread(r)
    per_interval = (rate[0] / measured_processes, rate[1] / measured_processes) if rate else None
    span = None
    if per_interval and per_interval[0] > 0 and limit not in ("server side", "p99"):
        span = (math.ceil(required / per_interval[1]), math.ceil(required / per_interval[0]))
    needed = None if limit in ("server side", "p99") else processes
    option = Candidate(
        series=r["series"],
        strategy=r["strategy"],
        api=r["api"],
        concurrency=int(r["concurrency"]),
        rate=None if pd.isna(r["rate"]) else float(r["rate"]),
        settings=tuple((k, _cell(r[k])) for k in r["settings"] if k in r.index),
        count=_int(r["count"]),
        target=None if pd.isna(r["target"]) else str(r["target"]),
        basis=basis,
        distance=distance_text(r),
        rtt_ms=round_trip_ms(r),
        measured_processes=measured_processes,
        measured_tps=float(r["tps"]),
        per_process_tps=per_process,
        per_process_interval=per_interval,
        per_process_spread=(spread[0] / measured_processes, spread[1] / measured_processes) if spread else None,
        p99_ms=p99,
        rpcs_per_ts=rpcs_per_ts,
        ts_per_rpc=batch.ts_per_rpc,
        batch_from=batch.how,
        pd_rpcs_per_s=target / batch.ts_per_rpc,
        cores_per_machine=cores,
        server_ceiling_tps=server.ceiling_tps,
        server_ceiling_interval=interval,
        server_ceiling_kind=server.ceiling_kind,
        server_ceiling_from=server.ceiling_from,
        server_best_tps=server.best_tps,
        server_lower_bound_tps=server.lower_bound_tps,
        server_lower_bound_from=server.lower_bound_from,
        server_cpu_share=server.cpu_share,
        server_threads=server.threads,
        client_ceiling_tps=client_ceiling,
        client_ceiling_from=client_from,
        processes=needed,
        processes_range=span,
        machines=math.ceil(needed / cores) if needed is not None and cores else None,
        limit=limit,
        meets_p99=meets_p99,
        reachable=reachable,
        extrapolated=extrapolated,
        command=None,
    )
    if needed is None or not extrapolated:
        return option
    # A client-side answer is confirmed at its process count; an unknown server side is probed, not fleeted.
    probe = needed if limit == "client side" else min(needed, PROBE_MAX_PROCESSES)
    return replace(option, command=confirm_command(option, probe))


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
    at: AtDistance | None,
) -> str:
    need = f"{target:,.0f} ts/s ({required:,.0f} ts/s of capacity with {headroom:.0%} headroom)"
    if focus is None and at is not None and at.sweep is not None:
        return (
            f"UNKNOWN at {at.rtt_ms:g} ms: {need}: nothing was measured near a {at.rtt_ms:g} ms round trip (measured: "
            f"{'; '.join(at.measured) or 'nothing'}), and a figure measured nearer is not carried that far. Each "
            f"design's bound at {at.rtt_ms:g} ms: {'; '.join(at.bounds)}. The sweep that would measure it: {at.sweep}"
        )
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
            f"{_ceiling(focus)} ({focus.setting()}; {focus.server_ceiling_from}), and at most "
            f"{_tps(focus.server_best_tps or 0)} ts/s at the most it can batch. More client processes cannot take "
            f"the server past it. Best measured{within}: {best_text} Scale the TSO server (more cores or servers), "
            "or lower the target or the headroom." + _context(focus)
        )
    assert focus.processes is not None  # within p99 and no server ceiling in the way: a process count
    setting = f"{focus.setting()} with {focus.needs()} {_machines(focus)}"
    if answer == UNKNOWN:
        if focus.limit == "server unknown":
            server = (
                f"The server-side ceiling is unknown: {focus.server_ceiling_from.removeprefix(UNKNOWN_FROM)}. Known "
                f"is a lower bound of its capacity, not a ceiling: {focus.server_lower_bound_from}."
            )
        elif focus.limit == "server at this batch":
            server = (
                f"At the batch this setting would have, the {focus.server_ceiling_from}; batching more per RPC "
                f"would allow up to {_best(focus)}, which a higher rate per stream (more callers per process, fewer "
                "streams) would need measuring."
            )
        else:
            server = f"The target lies inside the server ceiling's interval: the {focus.server_ceiling_from}."
        return (
            f"UNKNOWN beyond what was measured: {need}. Reachable as far as measured{within}: {best_text} "
            f"{server} If the server keeps up, {setting} would give {focus.processes * focus.per_process_tps:,.0f} "
            f"ts/s. Find out by loading it harder with its CPU recorded (--target-metrics for a --target): "
            f"{focus.command}" + _context(focus)
        )
    if answer == REACHABLE:
        return (
            f"REACHABLE (measured): {need}: {setting}. Measured {focus.measured_tps:,.0f} ts/s at p99 "
            f"{focus.p99_ms:.2f} ms with {focus.measured_processes} process(es)." + _context(focus)
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
        f"{focus.per_process_tps:,.0f} ts/s; the {focus.server_ceiling_from}; {client}. p99 "
        f"{focus.p99_ms:.2f} ms is as measured at "
        f"{focus.measured_processes} process(es). Confirm with: {focus.command}" + _context(focus)
    )


def _ceiling(o: Candidate) -> str:
    """``80,000 ts/s [71,000, 90,000] (fitted cost)``."""
    if o.server_ceiling_tps is None:
        return "unknown"
    text = f"{_tps(o.server_ceiling_tps)} ts/s"
    if o.server_ceiling_interval is not None:
        text += f" [{_tps(o.server_ceiling_interval[0])}, {_tps(o.server_ceiling_interval[1])}]"
    return f"{text} ({o.server_ceiling_kind})"


def _best(o: Candidate) -> str:
    if o.server_best_tps is None:
        return "an unknown rate (the runs cannot tell a timestamp's cost apart)"
    if not math.isfinite(o.server_best_tps):
        return "a rate the runs set no upper end to"
    return f"{o.server_best_tps:,.0f} ts/s"


def _tps(value: float) -> str:
    """``80,000``, or ``no upper end`` where the runs set none."""
    return f"{value:,.0f}" if math.isfinite(value) else "no upper end"


def _context(o: Candidate) -> str:
    """What the row's figures rest on: its rate's basis, its distance, the load it puts on the server."""
    per = f"{o.per_process_tps:,.0f} ts/s per process"
    if o.per_process_interval is not None:
        per += f" [{o.per_process_interval[0]:,.0f}, {o.per_process_interval[1]:,.0f}]"
    else:
        per += " (no interval: a single figure)"
    text = f" Rate per process: {per}, {o.basis}; measured at {o.distance}"
    if o.rtt_ms is None or o.rtt_ms < 0.5:
        text += " (clients farther from the server get less: plan at their distance with --rtt-ms)"
    return (
        f"{text}. The target puts {o.pd_rpcs_per_s:,.0f} RPCs/s on the server ({o.ts_per_rpc:,.1f} ts per RPC: "
        f"{o.batch_from})."
    )


def _runner_up(o: Candidate) -> str:
    verdict = VERDICTS[o.limit].split("]", 1)[1].removesuffix("[/]")
    return f"{o.setting()} (p={o.measured_processes}): {verdict}, needs {o.needs()}, server ceiling {_ceiling(o)}"


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
    "server at this batch": "[yellow]beyond server ceiling at this batch[/]",
    "server uncertain": "[yellow]within the server ceiling's interval[/]",
    "client side": "[yellow]more processes (extrapolated)[/]",
    "measured": "[green]measured[/]",
}


def shown(p: Plan, limit: int) -> tuple[Candidate, ...]:
    """The first ``limit`` options, and always the one the answer is about and the best measured."""
    must = {id(o) for o in (p.focus, p.recommendation, p.runner_up, p.best_measured) if o is not None}
    return tuple(o for i, o in enumerate(p.options) if i < limit or id(o) in must)


def print_plan(p: Plan, console: Console | None = None, limit: int = 10) -> None:
    """The options (best first), the server's cost models, the USL fits, Little's law and the verdict."""
    console = console or Console()
    title = f"Plan for {p.target_tps:,.0f} ts/s, headroom {p.headroom:.0%}" + (
        f", p99 <= {p.p99_ms:g} ms" if p.p99_ms is not None else ""
    )
    table = Table(title=title, title_justify="left")
    table.add_column("setting (measured processes)", ratio=3)
    for col in ("ts/s per process", "p99 ms", "server ceiling ts/s", "server seen ts/s", "1-process ceiling", "needs"):
        table.add_column(col, justify="right")
    table.add_column("verdict")
    rows = shown(p, limit)
    for o in rows:
        needs = "-"
        if o.processes is not None and (o.usable or o.reachable is None):
            low, high = o.processes_range or (o.processes, o.processes)
            needs = f"{o.processes} proc" + (f" ({low}-{high})" if low != high else "")
            needs += f", {o.machines} mach" if o.machines else ""
            needs += "?" if o.reachable is None else ""  # only if the server keeps up
        ceiling = _ceiling(o).removesuffix(" ts/s") if o.server_ceiling_tps else "unknown"
        per = f"{o.per_process_tps:,.0f}"
        if o.per_process_interval is not None:
            per += f" [{o.per_process_interval[0]:,.0f}, {o.per_process_interval[1]:,.0f}]"
        mark = "▶ " if o is p.focus else "2nd " if o is p.runner_up else ""
        basis = " closed loop" if o.basis == CLOSED_ONLY else " sustained" if o.basis == SUSTAINED else ""
        table.add_row(
            mark + f"{o.setting()} (p={o.measured_processes}){basis}",
            per,
            f"{o.p99_ms:.2f}",
            ceiling,
            f">= {o.server_lower_bound_tps:,.0f}",
            f"{o.client_ceiling_tps:,.0f}" if o.client_ceiling_tps is not None else "-",
            needs,
            VERDICTS[o.limit],
        )
    captions = ["▶ the row the answer is about, 2nd: the runner-up"] if p.focus is not None else []
    if any(o.basis == CLOSED_ONLY for o in rows):
        captions.append("closed loop: no sustainable rate measured for that design")
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
    for model in p.cost_models:
        print_cost_model(model, console)
    if p.at_distance is not None:
        at = p.at_distance
        console.print(
            f"At {at.rtt_ms:g} ms: {at.near} point(s) measured within x{NEAR:g} of it (measured: "
            f"{'; '.join(at.measured) or 'nothing'}). Bounds: " + "; ".join(at.bounds),
            highlight=False,
        )
        if at.sweep:
            console.print(f"The sweep that would measure the rest at {at.rtt_ms:g} ms: {at.sweep}", highlight=False)
    ll = p.littles_law
    if ll.get("runs"):
        status = "ok" if not ll["off"] else f"[yellow]{ll['off']} run(s) off by more than ±{ll['tolerance']:.0%}[/]"
        console.print(
            f"Little's law (req/s x mean latency / callers, closed loop): median {ll['median_ratio']:.3f} "
            f"over {ll['runs']} runs, range {ll['min_ratio']:.3f}-{ll['max_ratio']:.3f}: {status}"
        )
    style = {REACHABLE: "green", MORE_PROCESSES: "yellow", UNKNOWN: "yellow"}.get(p.answer, "red")
    console.print(f"[bold {style}]{escape(p.message)}[/]", highlight=False)


RESIDUALS_SHOWN = 8  # the worst runs shown; --json has them all


def print_cost_model(model: costmodel.Fit, console: Console) -> None:
    """A server's fitted costs with their intervals, then its worst-predicted runs (badly predicted marked)."""
    console.print(escape(costmodel.summary(model)), highlight=False)
    if not model.fitted:
        return
    title = f"Residuals of all {model.runs} runs"
    if model.runs > RESIDUALS_SHOWN:
        title = f"Residuals, the {RESIDUALS_SHOWN} largest of {model.runs}"
    table = Table(title=title, title_justify="left")
    for col in ("run", "setting", "CPU s measured", "fitted", "residual", ""):
        table.add_column(col, justify="left" if col in ("run", "setting", "") else "right")
    worst = sorted(model.residuals, key=lambda r: -abs(r.residual_s))[:RESIDUALS_SHOWN]
    for r in worst:
        table.add_row(
            r.run_id,
            r.setting,
            f"{r.observed_s:.4f}",
            f"{r.predicted_s:.4f}",
            f"{r.residual_s:+.4f}",
            "[red]predicted badly[/]" if r.bad else "",
        )
    console.print(table)


# --- confirming a plan --------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """What the confirming sweep should measure at ``processes``, and the sweep."""

    setting: str
    strategy: str
    api: str
    concurrency: int
    processes: int  # what is confirmed
    recommended: int  # what the plan needs
    why: str  # why fewer than recommended, or ""
    tps: float
    low: float
    high: float
    command: str
    p99_ms: float | None = None  # the plan's objective: a confirmation must meet it too


def prediction(p: Plan, most: int, scheduler: str | None = None) -> Prediction | None:
    """The plan's row (its recommendation, else its focus) at the most processes this machine (``most``) or
    ``scheduler`` can hold: that many times its per-process rate, within the per-process spread, never above
    the server ceiling's high end. None when the plan has no row to confirm."""
    o = p.recommendation or p.focus
    if o is None or o.processes is None:
        return None
    k = o.processes if scheduler else max(1, min(o.processes, most))
    why = "" if k == o.processes else f"this machine holds {k} client process(es) beside the server, not {o.processes}"
    low, high = o.per_process_spread or o.per_process_interval or (o.per_process_tps, o.per_process_tps)
    cap = o.server_ceiling_interval[1] if o.server_ceiling_interval else math.inf
    command = confirm_command(o, k)
    if scheduler:
        command += " " + shlex.join(["--scheduler", scheduler])
    return Prediction(
        o.setting(),
        o.strategy,
        o.api,
        o.concurrency,
        k,
        o.processes,
        why,
        min(k * o.per_process_tps, cap),
        min(k * low, cap),
        min(k * high, cap),
        command,
        p.p99_ms,
    )


@dataclass(frozen=True)
class Confirmation:
    predicted: Prediction
    measured_tps: float | None
    measured_low: float | None
    measured_high: float | None
    p99_ms: float | None
    held: bool

    def sentence(self) -> str:
        pr = self.predicted
        text = (
            f"Predicted {pr.tps:,.0f} ts/s [{pr.low:,.0f}, {pr.high:,.0f}] at {pr.processes} process(es) ({pr.setting})"
        )
        if pr.why:
            text += f"; {pr.why}, so {pr.processes} are confirmed"
        if self.measured_tps is None:
            return text + "; nothing was measured at that count."
        measured = f"{self.measured_tps:,.0f} ts/s"
        if self.measured_low is not None and self.measured_high is not None:
            measured += f" [{self.measured_low:,.0f}, {self.measured_high:,.0f}]"
        p99 = f", p99 {self.p99_ms:.2f} ms" if self.p99_ms is not None else ""
        verdict = "within the prediction's interval" if self.held else "OUTSIDE the prediction's interval"
        if pr.p99_ms is not None and (self.p99_ms is None or self.p99_ms > pr.p99_ms):
            verdict = f"p99 above the plan's {pr.p99_ms:g} ms"
        return f"{text}; measured {measured}{p99}: {verdict}."

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "sentence": self.sentence()}


def confirmation(predicted: Prediction, df: pd.DataFrame) -> Confirmation:
    """The confirming sweep's point at the predicted process count, against the prediction."""
    agg = repeats(df) if not df.empty else df
    if not agg.empty:
        pr = predicted
        same = (agg["strategy"] == pr.strategy) & (agg["api"] == pr.api) & (agg["concurrency"] == pr.concurrency)
        rows = agg[same & (agg["processes"] == pr.processes)]
    else:
        rows = agg
    if rows.empty:
        return Confirmation(predicted, None, None, None, None, False)
    r = rows.iloc[0]
    tps = float(r["tps"])
    interval = rate_interval(r)
    p99 = float(r["p99_us"]) / 1e3 if pd.notna(r["p99_us"]) else None
    within_p99 = predicted.p99_ms is None or (p99 is not None and p99 <= predicted.p99_ms)
    held = bool(r["clean"]) and predicted.low <= tps <= predicted.high and within_p99
    return Confirmation(
        predicted,
        tps,
        interval[0] if interval else None,
        interval[1] if interval else None,
        p99,
        held,
    )
