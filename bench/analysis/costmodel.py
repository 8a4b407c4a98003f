"""The server's cost, fitted on the runs against it: CPU = a·RPCs + b·timestamps + c·streams opened + d·seconds.

One run's CPU per timestamp carries whatever the server did besides answering
(its clock tick, its saves, the event loop's idling): at a light load that
idle work is most of it, so a ceiling taken from one light run is far too low
(36,805 ts/s from an SLO folder whose server was seen answering 95k). Across
the runs against one server (same target, build and host as the results record
them: ``target``, ``git_commit``, ``cpu_model``, ``cpu_count``, members), the
CPU each run's server used in its measured window (``metrics.server.cpu_s``) is
fitted to what it did in that window (``server_rpcs``, ``server_timestamps``,
``server_streams``, ``measured_s``): the fixed term takes the idle work, and
per-request (a stream per RPC), pool (an RPC per timestamp) and dispatcher (many
timestamps per RPC) runs pin down the other three. Costs cannot be negative, so
the fit is non-negative least squares; each cost's interval is a bootstrap over
the runs (the runs resampled with replacement and fitted again, unconstrained,
so an interval reaching below zero shows a cost the runs do not pin down, and a
ceiling that rests on it has no upper end).

Where the runs cannot tell two terms apart (only per-request runs: a stream,
an RPC and a timestamp each time; batches that all carried about as many
timestamps: an SLO search at low rates), the fit says which, and a prediction that
depends on telling them apart is refused rather than made up (``estimable``);
``SEPARATING_SWEEP`` is the sweep that would separate them. A build recorded
as ``<commit>-dirty`` counts as its commit: the server's code is rarely what a
dirty tree changes, and the residuals show it when it was.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import nnls

TERMS = ("rpcs", "timestamps", "streams", "seconds")
COLUMNS = {
    "rpcs": "server_rpcs",
    "timestamps": "server_timestamps",
    "streams": "server_streams",
    "seconds": "measured_s",
}
UNITS = {"rpcs": "µs per RPC", "timestamps": "µs per timestamp", "streams": "µs per stream opened"}
UNITS["seconds"] = "cores busy while idle"
SERVER = ("target", "git_commit", "cpu_model", "cpu_count", "server_members")  # what makes two runs one server
MIN_RUNS = len(TERMS) + 2  # more runs than costs, and some left over to judge the fit by
RESAMPLES = 1_000
SEED = 0  # the same files give the same intervals
CONFIDENCE = 0.95
CONFOUNDED = 0.02  # a direction of the costs whose singular value is below this share of the largest: not measured
ESTIMABLE = 0.05  # a prediction leaning this much on an unmeasured direction cannot be made
BAD_SPREADS = 3.0  # a run whose residual exceeds this many robust spreads of the residuals...
BAD_SHARE = 0.2  # ...and this share of its CPU is predicted badly
BATCH_SPAN = 4.0  # runs whose batches span less than this factor cannot tell an RPC's cost from a timestamp's...
NEAR_BATCH = 1.5  # ...so they predict only batches within this factor of those measured
SEPARATING_STRATEGIES = ("per-request", "pool", "dispatcher")  # a stream per RPC, an RPC per timestamp, batches
SEPARATING_CONCURRENCY = (1, 8, 64)  # a light load pins the idle work


@dataclass(frozen=True)
class Cost:
    """One term's cost: CPU seconds per unit (``value``), with its bootstrap interval."""

    term: str
    value: float
    low: float
    high: float

    def text(self) -> str:
        scale, spec = (1.0, ".3f") if self.term == "seconds" else (1e6, ",.2f")
        return (
            f"{format(self.value * scale, spec)} [{format(self.low * scale, spec)}, "
            f"{format(self.high * scale, spec)}] {UNITS[self.term]}"
        )


@dataclass(frozen=True)
class Residual:
    """One run: its server's CPU as measured and as the fit predicts it."""

    run_id: str
    setting: str
    observed_s: float
    predicted_s: float
    bad: bool

    @property
    def residual_s(self) -> float:
        return self.observed_s - self.predicted_s


@dataclass(frozen=True)
class Ceiling:
    """The most timestamps/s the server answers at one load mix, with its bootstrap interval."""

    tps: float
    low: float
    high: float
    cost_us_per_ts: float  # the server CPU a timestamp costs at this mix, without the idle work
    idle_cores: float


@dataclass(frozen=True)
class Fit:
    """The cost model of one server, or why there is none (``costs`` empty, ``why`` says)."""

    server: str  # the server in words
    key: tuple[str, ...]
    runs: int
    threads: int  # cores the server can use
    costs: tuple[Cost, ...]
    r2: float | None
    residuals: tuple[Residual, ...]
    confounded: tuple[tuple[str, ...], ...]  # groups of terms the runs cannot tell apart
    why: str  # "" when fitted
    draws: tuple[tuple[float, ...], ...]  # the bootstrap's fitted costs, one tuple per resample
    null: tuple[tuple[float, ...], ...]  # the directions of the (scaled) costs no run measured
    scales: tuple[float, ...]
    batches: tuple[float, float] = (1.0, 1.0)  # the fewest and most timestamps per RPC the runs measured

    @property
    def batches_apart(self) -> bool:
        """Whether the runs' batches differ enough to tell an RPC's cost from a timestamp's."""
        return self.batches[1] >= BATCH_SPAN * self.batches[0]

    @property
    def fitted(self) -> bool:
        return bool(self.costs)

    @property
    def bad(self) -> tuple[Residual, ...]:
        return tuple(r for r in self.residuals if r.bad)

    def estimable(self, weights: Sequence[float]) -> bool:
        """Whether the runs measured ``weights · costs`` (a load mix, or one cost alone)."""
        w = np.asarray(weights, dtype=float) / np.asarray(self.scales)
        norm = float(np.linalg.norm(w))
        return norm == 0 or all(abs(float(np.dot(v, w))) / norm < ESTIMABLE for v in self.null)

    def ceiling(self, rpcs_per_ts: float, streams_per_ts: float) -> Ceiling | None:
        """Timestamps/s the server's cores answer at this mix: (cores - idle) / cost per timestamp. None when
        not fitted or when the runs cannot tell the terms this mix needs apart."""
        mix = (rpcs_per_ts, 1.0, streams_per_ts, 0.0)
        if not self.fitted or not self.estimable(mix) or not self.estimable((0, 0, 0, 1)):
            return None
        low, high = self.batches
        if not self.batches_apart and not (low / NEAR_BATCH <= 1 / rpcs_per_ts <= high * NEAR_BATCH):
            return None  # a batch unlike any measured needs the two costs apart
        values = [c.value for c in self.costs]
        point = _ceiling(values, mix, self.threads)
        draws = np.array([_ceiling(d, mix, self.threads) for d in self.draws])
        low, high = _percentiles(draws)
        return Ceiling(point, min(low, point), max(high, point), float(np.dot(mix, values)) * 1e6, values[3])

    def to_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "runs": self.runs,
            "threads": self.threads,
            "costs": {
                c.term: {"value": c.value, "low": c.low, "high": c.high, "unit": "CPU s per unit"} for c in self.costs
            },
            "r2": self.r2,
            "confounded": [list(g) for g in self.confounded],
            "why": self.why or None,
            "residuals": [
                {
                    "run_id": r.run_id,
                    "setting": r.setting,
                    "observed_cpu_s": r.observed_s,
                    "predicted_cpu_s": r.predicted_s,
                    "bad": r.bad,
                }
                for r in self.residuals
            ],
        }


def _ceiling(costs: Sequence[float], mix: Sequence[float], threads: int) -> float:
    per_ts = float(np.dot(mix[:3], costs[:3]))
    spare = threads - costs[3]
    if spare <= 0:
        return 0.0
    return spare / per_ts if per_ts > 0 else math.inf


def _percentiles(draws: np.ndarray) -> tuple[float, float]:
    """The middle ``CONFIDENCE`` of the draws, each end a draw itself (an unbounded ceiling stays unbounded)."""
    tail = (1 - CONFIDENCE) / 2 * 100
    low = float(np.percentile(draws, tail, method="lower"))
    high = float(np.percentile(draws, 100 - tail, method="higher"))
    return low, high


def server_key(row: pd.Series) -> tuple[str, ...]:
    """Which server a run measured: its target (or the embedded one), build, host and members."""
    out = []
    for k in SERVER:
        value = row.get(k)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            text = "embedded" if k == "target" else "?"
        else:
            text = str(value).removesuffix("-dirty") if k == "git_commit" else str(value)
        out.append(text)
    return tuple(out)


def describe(key: tuple[str, ...]) -> str:
    target, commit, cpu, cores, members = key
    where = "the embedded server" if target == "embedded" else f"server {target}"
    build = f"build {commit[:8]}" if commit != "?" else "build not recorded"
    return f"{where} ({build}, {cpu}, {cores} cores" + (f", {members} members)" if members not in ("?", "1") else ")")


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """The runs whose server CPU and counters were recorded over a whole window, without faults."""
    if df.empty:
        return df
    ok = df["server_cpu_s"].notna() & (df["measured_s"] > 0)
    for col in COLUMNS.values():
        ok &= df[col].notna()
    ok &= df["faults"].map(lambda f: not f) & (df["status"].fillna("completed") == "completed")
    return df[ok]


def fit_all(df: pd.DataFrame) -> dict[tuple[str, ...], Fit]:
    """A cost model per server the runs measured (only servers whose CPU some run recorded)."""
    runs = usable(df)
    keys = [server_key(r) for _, r in runs.iterrows()]
    out: dict[tuple[str, ...], Fit] = {}
    for key in dict.fromkeys(keys):
        out[key] = fit(runs[[k == key for k in keys]], key)
    return out


def fit(runs: pd.DataFrame, key: tuple[str, ...]) -> Fit:
    """Non-negative least squares of the runs' server CPU on what the server did; intervals by bootstrap."""
    threads = int(runs["server_threads"].max()) if runs["server_threads"].notna().any() else 1
    empty = Fit(describe(key), key, len(runs), threads, (), None, (), (), "", (), (), (1.0,) * len(TERMS))
    if len(runs) < MIN_RUNS:
        why = f"{len(runs)} run(s) with the server's CPU recorded; a fit of {len(TERMS)} costs needs {MIN_RUNS}"
        return dataclasses.replace(empty, why=why)
    x = runs[[COLUMNS[t] for t in TERMS]].to_numpy(dtype=float)
    y = runs["server_cpu_s"].to_numpy(dtype=float)
    scales = np.linalg.norm(x, axis=0)
    scales[scales == 0] = 1.0
    xs = x / scales
    _, singular, vt = np.linalg.svd(xs, full_matrices=False)
    weak = singular < CONFOUNDED * singular[0]
    null = tuple(tuple(float(v) for v in vt[i]) for i in np.flatnonzero(weak))
    keep = _without_outliers(xs, y)  # a run predicted badly is named and left out of the fit
    values = nnls(xs[keep], y[keep])[0] / scales
    predicted = x @ values
    resid = y - predicted
    rng = np.random.default_rng(SEED)
    inside = np.flatnonzero(keep)
    draws = []
    for _ in range(RESAMPLES):
        pick = inside[rng.integers(0, len(inside), size=len(inside))]
        # Unconstrained: clamping at zero would hide how little the runs say about a cost (a timestamp's
        # apart from an RPC's when every batch was about one), and a ceiling at a large batch rests on it.
        draws.append(tuple(float(v) for v in np.linalg.lstsq(xs[pick], y[pick], rcond=None)[0] / scales))
    bounds = [_percentiles(np.array([d[i] for d in draws])) for i in range(len(TERMS))]
    costs = tuple(
        Cost(t, float(values[i]), min(bounds[i][0], values[i]), max(bounds[i][1], values[i]))
        for i, t in enumerate(TERMS)
    )
    fitted_y, fitted_resid = y[keep], resid[keep]
    sst = float(np.sum((fitted_y - fitted_y.mean()) ** 2))
    residuals = tuple(
        Residual(str(r["run_id"]), _setting(r), float(y[i]), float(predicted[i]), not bool(keep[i]))
        for i, (_, r) in enumerate(runs.iterrows())
    )
    answered = x[:, 0] > 0
    batch = x[answered, 1] / x[answered, 0]
    batches = (float(batch.min()), float(batch.max())) if len(batch) else (1.0, 1.0)
    confounded = _groups(null)
    if batches[1] < BATCH_SPAN * batches[0] and not any({"rpcs", "timestamps"} <= set(g) for g in confounded):
        confounded += (("rpcs", "timestamps"),)
    return Fit(
        server=describe(key),
        key=key,
        runs=len(runs),
        threads=threads,
        costs=costs,
        r2=1 - float(np.sum(fitted_resid**2)) / sst if sst > 0 else None,
        residuals=residuals,
        confounded=confounded,
        why="",
        draws=tuple(draws),
        null=null,
        scales=tuple(float(s) for s in scales),
        batches=batches,
    )


def _without_outliers(xs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which runs the fit keeps: the worst-predicted run is left out while its residual is beyond
    ``BAD_SPREADS`` robust spreads (1.4826 x the median absolute residual) and ``BAD_SHARE`` of its CPU,
    refitting each time (one wild run drags the fit, so its neighbours would look bad too); at most a
    quarter of the runs, and never below ``MIN_RUNS``."""
    keep = np.ones(len(y), dtype=bool)
    while keep.sum() > max(MIN_RUNS, len(y) * 3 // 4):
        resid = y - xs @ nnls(xs[keep], y[keep])[0]
        spread = 1.4826 * float(np.median(np.abs(resid[keep])))
        bad = keep & (np.abs(resid) > BAD_SPREADS * spread) & (np.abs(resid) > BAD_SHARE * np.maximum(y, 1e-9))
        if not bad.any():
            break
        keep[int(np.argmax(np.where(bad, np.abs(resid), -1.0)))] = False
    return keep


def _groups(null: tuple[tuple[float, ...], ...]) -> tuple[tuple[str, ...], ...]:
    """The terms each unmeasured direction mixes (those with a real share of it)."""
    return tuple(tuple(t for t, v in zip(TERMS, direction, strict=True) if abs(v) > 0.2) for direction in null)


def confounded_text(groups: tuple[tuple[str, ...], ...]) -> str:
    """``separate rpcs and timestamps; measure streams (it never varied)``."""
    parts = [
        f"separate {' and '.join(g)}" if len(g) > 1 else f"measure the cost of {g[0]} (it never varied)"
        for g in groups
        if g
    ]
    return "; ".join(parts) or "separate its terms"


def _setting(r: pd.Series) -> str:
    text = f"{r['strategy']}/{r['api']} c={int(r['concurrency'])}"
    if pd.notna(r.get("rate")):
        text += f" rate={float(r['rate']):g}/s"
    return text


def separating_sweep(key: tuple[str, ...] | None = None, target_metrics: str | None = None) -> str:
    """The sweep whose runs separate the four costs: a stream per RPC, an RPC per timestamp and batches, each
    at a light and a heavy load, against the same server."""
    argv = ["tsobench", "sweep", "--strategies", ",".join(SEPARATING_STRATEGIES), "--apis", "asyncio"]
    argv += ["--concurrency", ",".join(map(str, SEPARATING_CONCURRENCY)), "--duration", "5"]
    if key is not None and key[0] != "embedded":
        argv += ["--target", key[0], "--target-metrics", target_metrics or "<the server's metrics URL>"]
    argv += ["-o", "results/server-cost", "--report"]
    return shlex.join(argv)


def summary(f: Fit) -> str:
    """The fit in one or two sentences, its limits said."""
    if not f.fitted:
        return f"No cost model of {f.server}: {f.why}. The sweep that would fit one: {separating_sweep(f.key)}"
    costs = "; ".join(f"{c.term} {c.text()}" for c in f.costs)
    r2 = f", R² {f.r2:.3f}" if f.r2 is not None else ""
    text = f"Server cost model of {f.server}, {f.runs} runs{r2}: {costs}."
    if f.confounded:
        text += f" The runs cannot {confounded_text(f.confounded)}: {separating_sweep(f.key)} would."
    if f.bad:
        names = ", ".join(
            f"{r.run_id} ({r.setting}: {r.observed_s:.3f} s measured, {r.predicted_s:.3f} s fitted)" for r in f.bad
        )
        text += f" Predicted badly, left out of the fit: {names}."
    return text
