"""Repeats of one point folded into one row: the median, the spread, the interval, the worst verdict.

A point is ``loader.POINT`` (every option that makes two runs the same). Latency
percentiles of several runs come from merging their HDR histograms (the
percentiles of all the requests together), never from averaging percentiles;
only rows without a histogram (pytest-benchmark) fall back to the median of the
runs' percentiles, and say so in ``latency_from``. Each point's throughput and
p99 also get a median with its 95 % bootstrap interval (``stats``): from its
repeats, or from one run's measured intervals (``samples_from`` says which).
Repeats fold by their worst stored verdict, never by judging their sums again.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import cast

import pandas as pd

from tsobench.bench.analysis import harness
from tsobench.bench.analysis.loader import BASELINE_MATCH, DISTANCE, LATENCY_KEYS, POINT, SERIES, flag, named
from tsobench.bench.analysis.stats import RunFigures, estimate, point_samples
from tsobench.bench.measure import latency
from tsobench.bench.model.verdict import Judgement, Verdict

# Figures of one point that are the same for every run of it, taken from the first.
SAME: tuple[str, ...] = ("total_callers", "open_loop", "safe", "baseline", "reference", "settings")
SAME += ("bound_in_flight", "bound_unit", "bound_why", "rtt_emulated_ms", "loopback")
# Figures whose median over the repeats the point reports.
MEDIANS: tuple[str, ...] = ("cpu_per_1k_ts", "rpcs_per_ts", "server_mean_batch", "client_cpu_s", "littles_law_ratio")
MEDIANS += ("duration_s", "server_cpu_share", "server_cpu_us_per_ts", "server_threads", "measured_s", "rtt_ms")
MEDIANS += ("mean_us", "batch_rpcs_per_s", "batch_mean_batch", "batch_rpc_us_mean", "batch_wait_us_mean")
MEDIANS += ("server_others_rpcs",)  # RPCs a --target answered beyond the run's own: others' load


def with_series(df: pd.DataFrame, without: Sequence[str] = (), column: str = "series") -> pd.DataFrame:
    """A copy with a ``series`` label (or ``column``): strategy/api plus whatever else of the point varies in
    the data (the load axes aside, and the keys ``without``), and "(reference)" for a production client. An
    option some strategy records as its own setting (``strategy.settings``: the dispatcher's
    rpc_concurrency) is named only for the strategies it matters to."""
    out = df.copy()
    # A missing value (pytest-benchmark has no such setting) is not a variation.
    fixed = ("source", "strategy", "api", *without)
    varying = [k for k in SERIES if k not in fixed and df[k].nunique() > 1]
    owned = {k for settings in df["settings"] if isinstance(settings, tuple) for k in settings}

    def label(row: pd.Series) -> str:
        text = f"{row['strategy']}/{row['api']}"
        for k in varying:
            if k in owned and k not in (row["settings"] or ()):
                continue  # not a setting of this strategy: its value changes nothing here
            value = row[k]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not pd.isna(value):
                text += " " + named(k, value)
        text += " (reference)" if flag(row["reference"]) else ""
        return text + (" [pytest-benchmark]" if row["source"] == "pytest-benchmark" else "")

    out[column] = [label(r) for _, r in df.iterrows()] if len(df) else pd.Series(dtype=str)
    return out


def repeats(df: pd.DataFrame) -> pd.DataFrame:
    """One row per point: medians, min-max spreads, intervals, merged latency, the worst verdict."""
    df = with_series(with_series(df, without=DISTANCE, column="design"))  # a design: the series at any distance
    rows = [_fold(g) for _, g in df.groupby(list(POINT), dropna=False, sort=True)]
    out = harness.mark(pd.DataFrame(rows), "tps", BASELINE_MATCH)
    return out.sort_values(["series", "rate", "total_callers", "processes"], na_position="first", ignore_index=True)


def _fold(g: pd.DataFrame) -> dict[str, object]:
    first = g.iloc[0]
    row: dict[str, object] = {k: first[k] for k in ("series", "design", *POINT, *SAME)}
    row["runs"] = len(g)
    row.update(verdict_columns(g))
    for col, name in (("throughput_tps", "tps"), ("throughput_rps", "rps")):
        row[name], row[f"{name}_min"], row[f"{name}_max"] = g[col].median(), g[col].min(), g[col].max()
    row.update(_latency(g))
    for k in ("p50", "p99"):
        row[f"{k}_min_us"], row[f"{k}_max_us"] = g[f"{k}_us"].min(), g[f"{k}_us"].max()
    samples = point_samples([RunFigures.of(r) for _, r in g.iterrows()])
    figures = estimate(samples)
    row["samples"] = samples
    row["tps_est"], row["p99_est"] = figures.tps, figures.p99_us
    row["samples_from"] = samples.tps.describe()
    for col in MEDIANS:
        row[col] = g[col].median()
    row.update(totals(g))
    row["jain"] = g["jain"].min()  # the least fair repeat
    row["min_per_caller"], row["max_per_caller"] = g["min_per_caller"].min(), g["max_per_caller"].max()
    row["cpu_count"] = g["cpu_count"].max()
    row["server_rps"] = (g["server_rpcs"] / g["measured_s"]).median()
    row["rtt_min_ms"] = g["rtt_min_ms"].min()  # the shortest round trip seen: what a bound may assume
    return row


def _latency(g: pd.DataFrame) -> dict[str, object]:
    """The percentiles of all the runs' requests: their histograms merged (or one run's own figures)."""
    first = g.iloc[0]
    histograms = g["histogram"].dropna().tolist()
    if len(histograms) == 1 and len(g) == 1:  # one run: its own figures came from this very histogram
        out: dict[str, object] = {f"{k}_us": float(first[f"{k}_us"]) for k in LATENCY_KEYS}
        return {**out, "histogram": histograms[0], "latency_from": "merged histograms"}
    if len(histograms) == len(g):
        merged = latency.merge(histograms)  # all the runs' requests in one histogram
        answered = merged.get_total_count() > 0  # no answers: no latency ("-"), never 0
        summary = cast(Mapping[str, float], latency.summarize(merged))  # every value is a number
        out = {f"{k}_us": float(v) if answered else math.nan for k, v in summary.items()}
        return {**out, "histogram": latency.encode(merged), "latency_from": "merged histograms"}
    out = {f"{k}_us": g[f"{k}_us"].median() for k in LATENCY_KEYS}
    return {**out, "histogram": None, "latency_from": "median of runs"}


def worst(g: pd.DataFrame) -> pd.Series:
    """The run with the worst stored verdict (``Verdict`` is ordered worst first)."""
    ranks = [Verdict(v).rank for v in g["verdict"]]
    return g.iloc[ranks.index(min(ranks))]


def verdict_columns(g: pd.DataFrame, name_point: bool = False) -> dict[str, object]:
    """The runs' verdict together: the worst of the stored ones, with its detail (and, ``name_point``, the
    point it came from) and how many runs had it."""
    bad = worst(g)
    judgement = Judgement(Verdict(bad["verdict"]), str(bad["verdict_detail"]), bool(bad["negative_control"]))
    return {
        "verdict_text": _verdict_text(g, bad, judgement, name_point),
        "verdict": judgement.verdict.value,
        "clean": judgement.clean,
        "dirty": bool(g["dirty"].any()),
        "negative_control": bool(g["negative_control"].any()),
    }


def _verdict_text(g: pd.DataFrame, bad: pd.Series, judgement: Judgement, name_point: bool) -> str:
    """``clean: 12,345 timestamps checked (3 runs)``, or the worst run's verdict, where it was and how many
    runs had it: ``starved: 41 of 64 callers got no reply at c=64 (2 of 3 runs: starved)``."""
    if judgement.clean:
        checked = g["checked"].sum(min_count=1)
        if pd.isna(checked):  # pytest-benchmark records no count of checked timestamps
            return "clean"
        if len(g) == 1:
            return str(judgement)  # as `tsobench run` stored it
        faults = sum(len(f) for f in g["fault_outcomes"] if isinstance(f, tuple | list))
        recovered = f", {faults} fault(s) recovered" if faults else ""
        return f"clean: {int(checked):,} timestamps checked{recovered} ({len(g)} runs)"
    text = f"{judgement.verdict.value}: {judgement.detail}" if judgement.detail else judgement.verdict.value
    if name_point:
        text += f" at {where(bad)}"
    if len(g) > 1:
        text += f" ({int((g['verdict'] == bad['verdict']).sum())} of {len(g)} runs: {judgement.verdict.value})"
    return text + (" (negative control: failing is expected)" if judgement.negative_control else "")


def designs(agg: pd.DataFrame) -> pd.DataFrame:
    """The points a reader chooses between: safe, clean, with throughput; never the harness's ceiling nor a
    production client shown for reference."""
    return agg[agg["clean"] & agg["safe"] & ~agg["baseline"] & ~agg["reference"] & (agg["tps"] > 0)]


def per_series(df: pd.DataFrame) -> pd.DataFrame:
    """Every run of a series: counts summed, the verdict of its worst point (with the point named)."""
    df = with_series(df)
    rows = []
    for series, g in df.groupby("series", sort=True):
        row: dict[str, object] = {"series": series, "strategy": g["strategy"].iloc[0], "api": g["api"].iloc[0]}
        row["runs"] = len(g)
        row.update(totals(g))
        row.update(verdict_columns(g, name_point=True))
        row["safe"], row["baseline"] = bool(g["safe"].all()), bool(g["baseline"].any())
        rows.append(row)
    return pd.DataFrame(rows)


def where(r: pd.Series) -> str:
    """The load of a point or run: ``c=64``, ``c=4 p=2``, ``c=8 rate=500/s``."""
    text = f"c={int(r['concurrency'])}"
    if r["processes"] > 1:
        text += f" p={int(r['processes'])}"
    if pd.notna(r["rate"]):
        text += f" rate={r['rate']:g}/s"
    return text


TOTALS = (
    "checked",
    "requests_ok",
    "requests_failed",
    "timestamps",
    "violations",
    "duplicates",
    "non_monotonic",
    "mismatched",
    "callers",
    "starved_callers",
    "censored",
)


def totals(g: pd.DataFrame) -> dict[str, object]:
    """Counts summed over runs, errors by kind, and the statuses seen."""
    out: dict[str, object] = {col: g[col].sum(min_count=1) for col in TOTALS}
    errors: Counter[str] = Counter()
    for e in g["errors"]:
        if isinstance(e, dict):
            errors.update(e)
    out["errors"] = dict(errors)
    out["statuses"] = ",".join(sorted(set(g["status"].dropna())))
    return out
