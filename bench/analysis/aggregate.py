"""Repeats of one configuration folded into one row: the median and the spread.

Latency percentiles of several runs come from merging their HDR histograms
(the percentiles of all the requests together), never from averaging
percentiles; only rows without a histogram (pytest-benchmark) fall back to the
median of the runs' percentiles, and say so in ``latency_from``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any, cast

import pandas as pd

from .. import latency
from ..verdict import Judgement, judge
from . import harness
from .loader import CONFIG_FIELDS, LATENCY_KEYS

# What makes two runs repeats of each other.
CONFIG_KEYS = (
    "source",
    *(k for k in CONFIG_FIELDS if k != "duration_s"),  # a longer run of the same setup is a repeat
    "server_delay_ms",
    "server_jitter_ms",
    "server_fail_rate",
    "faults",  # runs with other faults are other experiments, not repeats
)
# What makes one line in a plot (and one USL fit): the configuration without
# the load axes. pool_size defaults to min(concurrency, 8), so it moves with them.
LOAD_KEYS = ("concurrency", "processes", "pool_size", "rate")
SERIES_KEYS = tuple(k for k in CONFIG_KEYS if k not in LOAD_KEYS)
SHORT = {"server_delay_ms": "delay_ms", "server_jitter_ms": "jitter_ms", "server_fail_rate": "fail_rate"}
LATENCY = LATENCY_KEYS


def with_series(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with a ``series`` label: strategy/api plus whatever else varies in the data."""
    out = df.copy()
    # A missing value (pytest-benchmark has no such setting) is not a variation.
    varying = [k for k in SERIES_KEYS if k not in ("source", "strategy", "api") and df[k].nunique() > 1]

    def label(row: pd.Series) -> str:
        text = f"{row['strategy']}/{row['api']}"
        for k in varying:
            value = row[k]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not pd.isna(value):
                text += f" {SHORT.get(k, k)}={value}"
        return text + (" [pytest-benchmark]" if row["source"] == "pytest-benchmark" else "")

    out["series"] = [label(r) for _, r in df.iterrows()] if len(df) else pd.Series(dtype=str)
    return out


def repeats(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: medians, min-max spreads, merged latency."""
    df = with_series(df)
    rows = []
    for _, g in df.groupby(list(CONFIG_KEYS), dropna=False, sort=True):
        rows.append(_fold(g))
    out = harness.mark(pd.DataFrame(rows), "tps")
    return out.sort_values(["series", "rate", "total_callers", "processes"], na_position="first", ignore_index=True)


def _fold(g: pd.DataFrame) -> dict[str, object]:
    first = g.iloc[0]
    row: dict[str, object] = {k: first[k] for k in ("series", *CONFIG_KEYS, "total_callers", "open_loop")}
    row["runs"] = len(g)
    row.update(_verdict_columns(g))
    for col, name in (("throughput_tps", "tps"), ("throughput_rps", "rps")):
        row[name], row[f"{name}_min"], row[f"{name}_max"] = g[col].median(), g[col].min(), g[col].max()
    histograms = g["histogram"].dropna().tolist()
    if len(histograms) == 1 and len(g) == 1:  # one run: its own figures came from this very histogram
        row.update({f"{k}_us": float(first[f"{k}_us"]) for k in LATENCY})
        row["histogram"] = histograms[0]
        row["latency_from"] = "merged histograms"
    elif len(histograms) == len(g):
        merged = latency.merge(histograms)  # all the runs' requests in one histogram
        answered = merged.get_total_count() > 0  # no answers: no latency ("-"), never 0
        summary = cast(Mapping[str, float], latency.summarize(merged))  # every value is a number
        row.update({f"{k}_us": float(v) if answered else math.nan for k, v in summary.items()})
        row["histogram"] = latency.encode(merged)
        row["latency_from"] = "merged histograms"
    else:
        row.update({f"{k}_us": g[f"{k}_us"].median() for k in LATENCY})
        row["histogram"] = None
        row["latency_from"] = "median of runs"
    for k in ("p50", "p99"):
        row[f"{k}_min_us"], row[f"{k}_max_us"] = g[f"{k}_us"].min(), g[f"{k}_us"].max()
    for col in ("cpu_per_1k_ts", "rpcs_per_ts", "mean_batch", "client_cpu_s", "littles_law_ratio", "duration_s"):
        row[col] = g[col].median()
    for col in ("server_cpu_share", "server_cpu_us_per_ts", "server_threads"):  # the plan's server ceiling
        row[col] = g[col].median()
    row.update(_totals(g))
    row["jain"] = g["jain"].min()  # the least fair repeat
    row["min_per_caller"], row["max_per_caller"] = g["min_per_caller"].min(), g["max_per_caller"].max()
    row["cpu_count"] = g["cpu_count"].max()
    row["measured_s"] = g["measured_s"].median()
    row["server_rps"] = (g["server_rpcs"] / g["measured_s"]).median()
    row["harness_bound"] = _recorded_flag(g["harness_bound"])
    row["harness_ceiling_tps"] = g["harness_ceiling_tps"].median()
    return row


def _recorded_flag(values: pd.Series) -> bool | None:
    """True if any repeat says so, False if all say not, None when none says."""
    known = [bool(v) for v in values if isinstance(v, bool)]
    return any(known) if known else None


STATUS_WORST_FIRST = ("failed", "interrupted", "completed")


def judgement(g: pd.DataFrame) -> Judgement:
    """The verdict of several runs together, by ``verdict.judge``'s own rules:
    the counts summed, the worst status."""
    statuses = set(g["status"].dropna())
    totals = _totals(g)
    return judge(
        {
            "status": next((s for s in STATUS_WORST_FIRST if s in statuses), "completed"),
            "strategy": {"safe": bool(g["safe"].all())},
            "metrics": {
                "requests_failed": _count(totals["requests_failed"]),
                "errors": totals["errors"],
                "callers": _count(totals["callers"]) or None,
                "fairness": {"starved_callers": _count(totals["starved_callers"])},
            },
            "correctness": {
                k: _count(totals[k]) for k in ("checked", "violations", "duplicates", "non_monotonic", "mismatched")
            },
        }
    )


def _count(value: Any) -> int:
    return 0 if value is None or pd.isna(value) else int(value)


def _verdict_columns(g: pd.DataFrame) -> dict[str, object]:
    j = judgement(g)
    unchecked = j.clean and g["checked"].isna().all()  # pytest-benchmark records no count of checked timestamps
    return {
        "verdict": j.verdict.value,
        "verdict_text": "clean" if unchecked else str(j),
        "clean": j.clean,
        "dirty": j.dirty,
        "safe": bool(g["safe"].all()),
        "baseline": bool(g["baseline"].any()),
        "negative_control": j.negative_control,
    }


def per_series(df: pd.DataFrame) -> pd.DataFrame:
    """Every run of a series summed: what the correctness table and plot show."""
    df = with_series(df)
    rows = []
    for series, g in df.groupby("series", sort=True):
        row: dict[str, object] = {"series": series, "strategy": g["strategy"].iloc[0], "api": g["api"].iloc[0]}
        row["runs"] = len(g)
        row.update(_totals(g))
        row.update(_verdict_columns(g))
        rows.append(row)
    return pd.DataFrame(rows)


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
    "in_flight_at_end",
)


def _totals(g: pd.DataFrame) -> dict[str, object]:
    """Counts summed over runs, errors by kind, and the statuses seen."""
    out: dict[str, object] = {col: g[col].sum(min_count=1) for col in TOTALS}
    errors: Counter[str] = Counter()
    for e in g["errors"]:
        if isinstance(e, dict):
            errors.update(e)
    out["errors"] = dict(errors)
    out["statuses"] = ",".join(sorted(set(g["status"].dropna())))
    return out
