"""What the data says, in a few sentences and one small table: who wins, by
how much, whether the negative control failed as it should, and what to
distrust. The report opens with it and ``tsobench quickstart`` ends with it.

Everything here is computed from the loaded results; nothing is assumed about
which strategy should win.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ..verdict import error_list
from . import timeline
from .harness import BOUND_SHARE, NULL
from .loader import Skipped
from .usl import LITTLE_TOLERANCE, littles_law

BASELINE = "per-request"  # the naive design every factor is also given against
MIN_P99_REQUESTS = 1_000  # below this a p99 rests on fewer than 10 answers above it
SHORT_RUN_S = 5.0  # measured seconds below which a run is called short
# compared only alike
KNOBS = ("count", "server_delay_ms", "server_jitter_ms", "server_fail_rate", "target", "faults")


@dataclass(frozen=True)
class Findings:
    summary: tuple[str, ...]  # the lead sentences
    header: tuple[str, ...]  # the winners table
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...]  # negative control, dirty safe points, fairness, harness-bound, Little's law
    caveats: tuple[str, ...]

    def lines(self) -> list[str]:
        """Plain text for a terminal."""
        out = [*self.summary, ""]
        if self.rows:
            widths = [max(len(r[i]) for r in (self.header, *self.rows)) for i in range(len(self.header))]
            for r in (self.header, *self.rows):
                out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            out.append("")
        out += [f"- {n}" for n in self.notes]
        out += ["Caveats:", *(f"- {c}" for c in self.caveats)]
        return out


def _ts(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:,.0f}"


def _ms(us: float) -> str:
    return "-" if pd.isna(us) else f"{us / 1e3:.2f}"


def _factor(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if pd.notna(a) and pd.notna(b) and b > 0 else "-"


def _point(r: pd.Series) -> str:
    text = f"{r['series']} c={int(r['concurrency'])}"
    if r["processes"] > 1:
        text += f" p={int(r['processes'])}"
    if pd.notna(r["rate"]):
        text += f" rate={r['rate']:g}/s"
    return text


def find(df: pd.DataFrame, agg: pd.DataFrame, skipped: Sequence[Skipped] = ()) -> Findings:
    """The findings of loaded results (``df``) and their folded repeats (``agg``)."""
    runs = agg[agg["source"] == "tsobench"]
    header, rows, summary = _winners(runs)
    notes = [
        *_negative_control(runs),
        *_dirty_safe(runs),
        _fairness(runs),
        _harness(runs),
        _littles(df[df["source"] == "tsobench"]),
        *_recovery(df),
    ]
    return Findings(tuple(summary), header, tuple(rows), tuple(notes), tuple(_caveats(df, runs, skipped)))


def _recovery(df: pd.DataFrame) -> list[str]:
    """Which design recovers fastest from each kind of fault (runs with --fault only)."""
    sentence = timeline.recovery_finding(timeline.runs(df))
    return [sentence] if sentence else []


def _winners(runs: pd.DataFrame) -> tuple[tuple[str, ...], list[tuple[str, ...]], list[str]]:
    ranked = runs[~runs["open_loop"] & runs["clean"] & runs["safe"] & ~runs["baseline"] & (runs["tps"] > 0)]
    knobs = [k for k in KNOBS if ranked[k].nunique(dropna=False) > 1]
    keys = ["api", "total_callers", "concurrency", "processes", *knobs]
    header: tuple[str, ...] = (
        "api",
        "callers",
        "best safe strategy",
        "ts/s",
        "p99 ms",
        "vs runner-up",
        f"vs {BASELINE}",
    )
    if knobs:
        header = (*header[:2], "setting", *header[2:])
    rows, best_per_api = [], {}
    for key, g in ranked.groupby(keys, sort=True, dropna=False):
        g = g.sort_values("tps", ascending=False)
        top = g.iloc[0]
        others = g[g["strategy"] != top["strategy"]]
        runner = others.iloc[0] if len(others) else None
        base = g[g["strategy"] == BASELINE]
        base_tps = base["tps"].max() if len(base) and top["strategy"] != BASELINE else float("nan")
        callers = f"{int(top['concurrency'])}" + (f" x {int(top['processes'])} proc" if top["processes"] > 1 else "")
        name = top["series"] + (" (harness-bound)" if top["harness_bound"] is True else "")
        row = [
            str(top["api"]),
            callers,
            name,
            _ts(top["tps"]),
            _ms(top["p99_us"]),
            f"{_factor(top['tps'], runner['tps'])} {runner['strategy']}" if runner is not None else "-",
            _factor(top["tps"], base_tps),
        ]
        if knobs:
            row.insert(2, " ".join(f"{k}={v}" for k, v in zip(knobs, key[4:], strict=True)))
        rows.append(tuple(row))
        if top["processes"] == 1 and not knobs:  # the highest one-process concurrency per API leads the text
            best_per_api[top["api"]] = (top, runner, base_tps)
    summary = []
    for api, (top, runner, base_tps) in sorted(best_per_api.items()):
        text = (
            f"{api}: at {int(top['concurrency'])} callers (the most measured in one process) the best safe "
            f"strategy is {top['strategy']} with {_ts(top['tps'])} ts/s at p99 {_ms(top['p99_us'])} ms"
        )
        if runner is not None:
            text += f", {_factor(top['tps'], runner['tps'])} the runner-up {runner['strategy']}"
        if pd.notna(base_tps):
            text += f" and {_factor(top['tps'], base_tps)} {BASELINE}"
        summary.append(text + ".")
    if not rows:
        summary.append("No safe strategy has a clean closed-loop point: there is no winner to name.")
    return header, rows, summary


def _negative_control(runs: pd.DataFrame) -> list[str]:
    control = runs[~runs["safe"]]
    if control.empty:
        return [
            "No negative control (an unsafe strategy) in these results: nothing shows the checks would catch the bug."
        ]
    notes = []
    for (strategy, api), g in control.groupby(["strategy", "api"], sort=True):
        failed, clean = g[~g["clean"]], g[g["clean"]]
        errors: Counter[str] = Counter()
        for e in failed["errors"]:
            errors.update(e)
        where = ", ".join(f"c={int(c)}" for c in sorted(clean["total_callers"]))
        if failed.empty:
            notes.append(
                f"NEGATIVE CONTROL DID NOT FAIL: {strategy}/{api} was clean at every point ({where}); the harness did "
                "not catch the bug here, so the other strategies' clean verdicts prove less than they seem."
            )
            continue
        violations = int(failed["violations"].fillna(0).sum())
        text = (
            f"Negative control {strategy}/{api} failed as expected at {len(failed)} of {len(g)} point(s): "
            f"{error_list(dict(errors))}" + (f"; {violations:,} timestamp violations" if violations else "")
        )
        if not clean.empty:
            text += f". It looked clean at {where}: with so few callers the race did not happen, which proves nothing"
        notes.append(text + ".")
    return notes


def _dirty_safe(runs: pd.DataFrame) -> list[str]:
    dirty = runs[runs["safe"] & runs["dirty"]]
    if dirty.empty:
        return []
    points = "; ".join(f"{_point(r)}: {r['verdict_text']}" for _, r in dirty.iterrows())
    return [f"NOT CLEAN (safe strategies, left out of the ranking): {points}."]


def _fairness(runs: pd.DataFrame) -> str:
    known = runs[runs["jain"].notna()]
    if known.empty:
        return 'Fairness: not recorded in these results (no `metrics.fairness`); the tables show "-".'
    starved = known[known["starved_callers"].fillna(0) > 0]
    designs = known[known["safe"] & ~known["baseline"]]  # what a reader chooses between
    worst = (designs if len(designs) else known).sort_values("jain").iloc[0]
    text = (
        f"Fairness (Jain's index of completions per caller, 1 = equal): lowest of the safe strategies "
        f"{worst['jain']:.2f} at {_point(worst)}"
        f" (per caller {worst['min_per_caller']:,.0f}-{worst['max_per_caller']:,.0f})"
    )
    if starved.empty:
        return text + "; no caller starved."
    listed = ", ".join(
        f"{_point(r)} ({int(r['starved_callers'])} of {_count(r['callers'])}"
        + ("" if r["safe"] else ", negative control")
        + ")"
        for _, r in starved.iterrows()
    )
    return text + f"; callers that completed nothing: {listed}."


def _count(value: float) -> str:
    return "?" if pd.isna(value) else f"{int(value)}"


def _harness(runs: pd.DataFrame) -> str:
    bound = runs[runs["harness_bound"].map(lambda v: v is True)]
    has_ceiling = runs["harness_ceiling_tps"].notna().any() or runs["baseline"].any()
    if not has_ceiling:
        return (
            f"Harness-bound points: unknown, no `{NULL}` strategy run to compare with "
            f"(add `--strategies {NULL},...` to measure the harness's own ceiling)."
        )
    if bound.empty:
        return f"No point is harness-bound (none reached {BOUND_SHARE:.0%} of the `{NULL}` strategy's throughput)."
    listed = ", ".join(
        f"{_point(r)} ({r['tps'] / r['harness_ceiling_tps']:.0%} of {_ts(r['harness_ceiling_tps'])})"
        for _, r in bound.iterrows()
    )
    return (
        f"Harness-bound (at least {BOUND_SHARE:.0%} of the `{NULL}` strategy's ts/s, so they measure the harness "
        f"as much as the strategy): {listed}."
    )


def _littles(df: pd.DataFrame) -> str:
    check = littles_law(df)
    if check.empty:
        return "Little's law: no clean closed-loop run to check."
    bad = check[~check["ok"]]
    if bad.empty:
        return f"Little's law holds within ±{LITTLE_TOLERANCE:.0%} on all {len(check)} clean closed-loop runs."
    listed = ", ".join(
        f"{r['strategy']}/{r['api']} {int(r['total_callers'])} callers (ratio {r['ratio']:.2f})"
        for _, r in bad.iterrows()
    )
    return (
        f"Little's law off by more than ±{LITTLE_TOLERANCE:.0%} (callers waiting outside the measured request, "
        f"or figures that disagree): {listed}."
    )


def _caveats(df: pd.DataFrame, runs: pd.DataFrame, skipped: Sequence[Skipped]) -> list[str]:
    out = []
    tso = df[df["source"] == "tsobench"]
    cores = sorted({int(c) for c in df["cpu_count"].dropna()})
    models = sorted({str(m) for m in df["cpu_model"].dropna()})
    if cores:
        out.append(
            f"Measured on {' and '.join(map(str, cores))} core(s) ({', '.join(models) or 'CPU unknown'}); "
            "client throughput scales with cores, so plan with `tsobench plan`, not these figures alone."
        )
    embedded = int(tso["target"].isna().sum())
    if embedded:
        out.append(
            f"{embedded} of {len(tso)} runs used the embedded server, which shares the machine's cores with the "
            "clients: both sides are slower than on separate machines."
        )
    measured = tso["measured_s"].dropna()
    if len(measured) and measured.min() < SHORT_RUN_S:
        out.append(
            f"Runs measured {measured.min():.1f}-{measured.max():.1f} s each: short runs are noisy; "
            f"use `--duration 10` or more before deciding."
        )
    out.append(_repeats(runs))
    few = runs[(runs["requests_ok"] > 0) & (runs["requests_ok"] < MIN_P99_REQUESTS)]
    if len(few):
        listed = ", ".join(f"{_point(r)} ({int(r['requests_ok'])})" for _, r in few.iterrows())
        out.append(f"p99 rests on fewer than {MIN_P99_REQUESTS:,} answers (under 10 above it) at: {listed}.")
    censored = int(tso["censored"].fillna(0).sum())
    if censored:
        out.append(f"{censored:,} requests were still unanswered at the end; their waits count as censored latencies.")
    if (df["source"] == "pytest-benchmark").any():
        out.append("pytest-benchmark entries are shown in the tables but not ranked with the runs.")
    if skipped:
        out.append(f"{len(skipped)} file(s) could not be read and were left out: " + "; ".join(map(str, skipped)) + ".")
    return out


def _repeats(runs: pd.DataFrame) -> str:
    if runs.empty or runs["runs"].max() <= 1:
        return "One run per point: the spread between repeats is unknown (`--repeat 3` measures it)."
    repeated = runs[runs["runs"] > 1]
    spread = (repeated["tps_max"] - repeated["tps_min"]) / repeated["tps"]
    worst = repeated.loc[spread.idxmax()]
    return (
        f"{len(repeated)} of {len(runs)} points were repeated; the widest throughput spread is {spread.max():.0%} "
        f"of the median ({_point(worst)})."
    )
