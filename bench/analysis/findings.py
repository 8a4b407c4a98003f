"""What the data says, in a few sentences and one small table: who wins, by
how much and how sure that is, whether the negative control failed as it
should, how close each design comes to its bound at its round trip, and what
to distrust. The report opens with it and ``tsobench quickstart`` ends with it.

Everything here is computed from the loaded results; nothing is assumed about
which strategy should win. A figure comes with its interval (``stats``), and
two points are told apart by the one rule (``stats.compare_samples``: the
interval of their ratio, all of it beyond the minimum effect); otherwise they
are "not distinguishable" (or "cannot tell", without samples that decide),
never ranked. Per API, callers and round trip, every safe design gets a factor
against every other (``Pairs``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from tsobench.bench.analysis import recovery_report, turnaround
from tsobench.bench.analysis.aggregate import designs, where
from tsobench.bench.analysis.distance import (
    bound_of,
    distance_key,
    distance_rank,
    distance_text,
    parallel_trades,
    round_trip_ms,
)
from tsobench.bench.analysis.harness import BOUND_SHARE, NULL
from tsobench.bench.analysis.loader import BASELINE_MATCH, DISTANCE, LOAD, Skipped, flag, named
from tsobench.bench.analysis.stats import CANNOT_TELL, SAME, Change, Estimate, compare_samples
from tsobench.bench.analysis.usl import littles_law
from tsobench.bench.measure.fairness import LITTLES_LAW_TOLERANCE
from tsobench.bench.model.verdict import error_list

BASELINE = "per-request"  # the naive design every factor is also given against
MIN_P99_REQUESTS = 1_000  # below this a p99 rests on fewer than 10 answers above it
SHORT_RUN_S = 5.0  # measured seconds below which a run is called short
FAIR_JAIN = 0.9  # the harness's own ceiling below this Jain's index is called unfair
FEW_SAMPLES = 5  # below this many samples a bootstrap interval is barely more than their range
TIED = "not distinguishable"


@dataclass(frozen=True)
class Pairs:
    """Every safe design at one API, callers and round trip against every other: the row's ts/s over
    the column's, with its interval, or "not distinguishable" / "cannot tell"."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Findings:
    summary: tuple[str, ...]  # the lead sentences
    header: tuple[str, ...]  # the winners table
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...]  # negative control, dirty safe points, fairness, the harness, bounds, Little's law
    caveats: tuple[str, ...]
    pairs: tuple[Pairs, ...] = ()

    def lines(self) -> list[str]:
        """Plain text for a terminal."""
        out = [*self.summary, ""]
        if self.rows:
            out += [*_aligned(self.header, self.rows), ""]
        for pairs in self.pairs:
            out += [pairs.title, *_aligned(pairs.header, pairs.rows), ""]
        out += [f"- {n}" for n in self.notes]
        out += ["Caveats:", *(f"- {c}" for c in self.caveats)]
        return out


def _aligned(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in (header, *rows)]


def _ts(value: float | None) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:,.0f}"


def _ms(us: float | None) -> str:
    return "-" if us is None or pd.isna(us) else f"{us / 1e3:.2f}"


def _point(r: pd.Series) -> str:
    return f"{r['series']} {where(r)}"


def _tps(r: pd.Series) -> str:
    """The point's ts/s with its interval: ``23,596 [21,004, 25,310]``."""
    est: Estimate = r["tps_est"]
    return est.format(",.0f")


def _p99(r: pd.Series) -> str:
    est: Estimate = r["p99_est"]
    return est.format(".2f", 1e-3)


def _rtt(r: pd.Series) -> str:
    rtt = round_trip_ms(r)
    return "-" if rtt is None else f"{rtt:.2f}"


def compare_points(a: pd.Series, b: pd.Series) -> tuple[str, Change]:
    """How ``a``'s throughput stands to ``b``'s by the one rule (``stats.compare_samples``):
    "distinguishable", TIED or "unknown" (no samples that decide), and a / b with its interval."""
    change = compare_samples(b["samples"].tps, a["samples"].tps)
    if change.direction == CANNOT_TELL:
        return "unknown", change
    return (TIED if change.direction == SAME else "distinguishable"), change


def factor(a: pd.Series, b: pd.Series) -> str:
    """``a`` over ``b`` as may be said: ``1.8x [1.6, 2.0]``, "not distinguishable", or the bare ratio
    flagged when the samples cannot decide."""
    how, change = compare_points(a, b)
    if change.ratio is None:
        return "-"
    if how == TIED:
        return TIED
    if how == "unknown":
        return f"{change.ratio:.1f}x ({CANNOT_TELL})"
    return str(change)


def _pairs(g: pd.DataFrame, title: str) -> Pairs | None:
    """Every design of one group against every other (None with fewer than two)."""
    if len(g) < 2:
        return None
    g = g.sort_values("tps_est_median", ascending=False)
    names = [str(r["series"]) for _, r in g.iterrows()]
    rows = []
    for (i, a), name in zip(g.iterrows(), names, strict=True):
        cells = ["" if i == j else factor(a, b) for j, b in g.iterrows()]
        rows.append((name, *cells))
    return Pairs(title, ("ts/s of / over", *names), tuple(rows))


def find(df: pd.DataFrame, agg: pd.DataFrame, skipped: Sequence[Skipped] = ()) -> Findings:
    """The findings of loaded results (``df``) and their folded repeats (``agg``)."""
    runs = agg[agg["source"] == "tsobench"]
    header, rows, summary, pairs = _winners(runs)
    notes = [
        *_negative_control(runs),
        *_dirty_safe(runs),
        _fairness(runs),
        *_harness_fairness(runs),
        _harness(runs),
        *_bounds(runs),
        *(t.sentence() for t in parallel_trades(runs)),
        *_references(runs),
        _littles(df[df["source"] == "tsobench"]),
        *turnaround.notes(df[df["source"] == "tsobench"]),
        *_recovery(df),
    ]
    caveats = tuple(_caveats(df, runs, skipped))
    return Findings(tuple(summary), header, tuple(rows), tuple(notes), caveats, tuple(pairs))


def _recovery(df: pd.DataFrame) -> list[str]:
    """Which design recovers fastest from each kind of fault (runs with --fault only)."""
    sentence = recovery_report.recovery_finding(recovery_report.runs(df))
    return [sentence] if sentence else []


def _by_median(points: pd.DataFrame) -> pd.DataFrame:
    """The points with ``tps_est_median``, the median of their throughput, to rank them by."""
    return points.assign(tps_est_median=[e.median for e in points["tps_est"]])


def _leader(g: pd.DataFrame) -> tuple[pd.Series, pd.Series | None, str]:
    """The point with the highest median throughput, the best point of another strategy, and how they stand."""
    g = g.sort_values("tps_est_median", ascending=False)
    top = g.iloc[0]
    others = g[g["strategy"] != top["strategy"]]
    runner = others.iloc[0] if len(others) else None
    how = compare_points(top, runner)[0] if runner is not None else "distinguishable"
    return top, runner, how


def _winners(runs: pd.DataFrame) -> tuple[tuple[str, ...], list[tuple[str, ...]], list[str], list[Pairs]]:
    ranked = _by_median(designs(runs[~runs["open_loop"]]))
    alike = [k for k in BASELINE_MATCH if k not in ("source", "api", *LOAD)]
    knobs = [k for k in alike if ranked[k].nunique(dropna=False) > 1]  # compared only alike
    keys = ["api", "total_callers", "concurrency", "processes", *knobs]  # pool_size follows the concurrency
    header: tuple[str, ...] = (
        "api",
        "callers",
        "RTT ms",
        "best safe strategy",
        "ts/s [interval]",
        "p99 ms [interval]",
        "vs runner-up",
        f"vs {BASELINE}",
    )
    if knobs:
        header = (*header[:2], "setting", *header[2:])
    rows, lead, pairs = [], {}, []
    for key, g in ranked.groupby(keys, sort=True, dropna=False):
        top, runner, how = _leader(g)
        setting = " ".join(named(k, v) for k, v in zip(knobs, key[4:], strict=True))
        table = _pairs(
            g, f"{top['api']}, {_callers(top)} callers, {distance_text(top)}" + (f", {setting}" * bool(setting))
        )
        if table is not None:
            pairs.append(table)
        base = g[g["strategy"] == BASELINE].sort_values("tps_est_median", ascending=False)
        name = top["design"] + (" (harness-bound)" if flag(top["harness_bound"]) else "")
        if how == TIED and runner is not None:
            name += f" or {runner['design']} ({TIED})"
        row = [
            str(top["api"]),
            _callers(top),
            _rtt(top),
            name,
            _tps(top),
            _p99(top),
            f"{runner['strategy']}: {factor(top, runner)}" if runner is not None else "-",
            factor(top, base.iloc[0]) if len(base) and top["strategy"] != BASELINE else "-",
        ]
        if knobs:
            row.insert(2, setting)
        rows.append(tuple(row))
        other_knobs = [k for k in knobs if k not in DISTANCE]
        if top["processes"] == 1 and not other_knobs:  # the highest one-process concurrency per API leads
            lead[(top["api"], distance_key(top))] = (top, runner, how, base)
    summary = [_lead(*v) for _, v in sorted(lead.items(), key=lambda kv: (kv[0][0], distance_rank(kv[1][0])))]
    if not rows:
        summary.append("No safe strategy has a clean closed-loop point: there is no winner to name.")
    return header, rows, summary, pairs


def _callers(r: pd.Series) -> str:
    return f"{int(r['concurrency'])}" + (f" x {int(r['processes'])} proc" if r["processes"] > 1 else "")


def _lead(top: pd.Series, runner: pd.Series | None, how: str, base: pd.DataFrame) -> str:
    where_ = f"{int(top['concurrency'])} callers (the most measured in one process), {distance_text(top)}"
    text = f"{top['api']}, {where_}: "
    if runner is not None and how == TIED:
        return text + (
            f"{top['strategy']} ({_tps(top)} ts/s) and {runner['strategy']} ({_tps(runner)} ts/s) are not "
            "distinguishable: the interval of their ratio does not lie beyond the minimum effect."
        )
    text += f"the best safe strategy is {top['strategy']} with {_tps(top)} ts/s at p99 {_p99(top)} ms"
    if runner is not None:
        text += f"; against the runner-up {runner['strategy']}: {factor(top, runner)}"
    if len(base) and top["strategy"] != BASELINE:
        text += f"; against {BASELINE}: {factor(top, base.iloc[0])}"
    if how == "unknown":
        text += " (one run per point without samples that decide: no difference is established; `--repeat 3`)"
    return text + "."


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
        places = ", ".join(f"c={int(c)}" for c in sorted(clean["total_callers"]))
        if failed.empty:
            notes.append(
                f"NEGATIVE CONTROL DID NOT FAIL: {strategy}/{api} was clean at every point ({places}); the harness "
                "did not catch the bug here, so the other strategies' clean verdicts prove less than they seem."
            )
            continue
        violations = int(failed["violations"].fillna(0).sum())
        text = (
            f"Negative control {strategy}/{api} failed as expected at {len(failed)} of {len(g)} point(s): "
            f"{error_list(dict(errors))}" + (f"; {violations:,} timestamp violations" if violations else "")
        )
        if not clean.empty:
            text += f". It looked clean at {places}: with so few callers the race did not happen, which proves nothing"
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
    safe = known[known["safe"] & ~known["baseline"]]  # what a reader chooses between
    worst = (safe if len(safe) else known).sort_values("jain").iloc[0]
    text = (
        f"Fairness (Jain's index of completions per caller, 1 = equal): lowest of the safe strategies "
        f"{worst['jain']:.2f} at {_point(worst)}"
        f" (per caller {worst['min_per_caller']:,.0f}-{worst['max_per_caller']:,.0f})"
    )
    starved = known[(known["starved_callers"].fillna(0) > 0) & ~known["baseline"]]  # the baseline: its own note
    if starved.empty:
        return text + "; no caller of a design starved."
    listed = ", ".join(
        f"{_point(r)} ({int(r['starved_callers'])} of {_count(r['callers'])}"
        + ("" if r["safe"] else ", negative control")
        + ")"
        for _, r in starved.iterrows()
    )
    return text + f"; callers that completed nothing: {listed}."


def _count(value: float) -> str:
    return "?" if pd.isna(value) else f"{int(value)}"


def _harness_fairness(runs: pd.DataFrame) -> list[str]:
    """How evenly the harness itself serves callers: its own ceiling (null) has no design to blame."""
    null = runs[runs["baseline"] & runs["jain"].notna()]
    notes = []
    for api, g in null.groupby("api", sort=True):
        unfair = g[(g["jain"] < FAIR_JAIN) | (g["starved_callers"].fillna(0) > 0)]
        if unfair.empty:
            continue
        worst = unfair.sort_values("jain").iloc[0]
        starved = int(worst["starved_callers"]) if pd.notna(worst["starved_callers"]) else 0
        text = (
            f"The harness's own ceiling ({worst['strategy']}: an in-process counter, no RPC) serves {api} callers "
            f"unevenly: Jain {worst['jain']:.2f} at {where(worst)}"
            + (f", {starved} of {_count(worst['callers'])} callers completed nothing" if starved else "")
            + ". That is a property of the harness, not a design, and it never makes a point dirty"
        )
        if api == "thread":
            text += (
                ": under the GIL a thread that never waits on I/O can keep running while other callers never get "
                "scheduled. For thread-API figures it means one client process schedules its callers unevenly by "
                "itself, so a thread-API design's unfairness at that many callers is partly the harness's; the "
                "asyncio API and more client processes (`--processes`) are not subject to it"
            )
        notes.append(text + ".")
    return notes


def _harness(runs: pd.DataFrame) -> str:
    bound = runs[runs["harness_bound"].map(flag)]
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


def _bounds(runs: pd.DataFrame) -> list[str]:
    """Per round trip: the best safe strategy, and how close each design came to its bound."""
    measured = runs[[round_trip_ms(r) is not None for _, r in runs.iterrows()]] if len(runs) else runs
    if measured.empty:
        return []
    # closed loop: an open-loop point runs at the rate it was offered, which says nothing of its bound
    candidates = measured[measured["clean"] & measured["safe"] & ~measured["baseline"] & ~measured["open_loop"]]
    notes = []
    groups = candidates.groupby([distance_key(r) for _, r in candidates.iterrows()], sort=False)
    for _, g in sorted(groups, key=lambda kv: distance_rank(kv[1].iloc[0])):
        at = g.iloc[0].copy()
        at["rtt_ms"] = g["rtt_ms"].median()  # the distance of the group: its points' median round trip
        text = f"At {distance_text(at)}"
        chosen = designs(g)
        if len(chosen):
            top, runner, how = _leader(_by_median(chosen))
            text += f", the best safe strategy is {top['design']} {where(top)} with {_tps(top)} ts/s"
            if runner is not None and how == TIED:
                text += f" ({TIED} from {runner['design']} {where(runner)}, {_tps(runner)})"
        bounds = [b for b in map(bound_of, (r for _, r in g.iterrows())) if b is not None]
        closest = {}
        for b in sorted(bounds, key=lambda b: (b.series, b.share)):
            closest[b.series] = b  # each design where it came closest to its bound
        if closest:
            text += "; against each design's bound: " + "; ".join(b.sentence() for b in closest.values())
        elif g["bound_in_flight"].isna().all():
            text += "; no strategy here states its bound (strategy.bound), so none is placed against it"
        notes.append(text + ".")
    return notes


def _references(runs: pd.DataFrame) -> list[str]:
    """Production clients are shown beside the designs, never ranked among them."""
    ref = runs[runs["reference"] & runs["clean"] & (runs["tps"] > 0) & ~runs["open_loop"]]
    peers = designs(runs[~runs["open_loop"]])
    points = [_alike(p) for _, p in peers.iterrows()]
    notes = []
    for series, g in ref.groupby("series", sort=True):
        r = g.sort_values("tps", ascending=False).iloc[0]
        text = (
            f"Reference {series} (a production client, shown for comparison, not ranked): {_tps(r)} ts/s at {where(r)}"
        )
        at = _alike(r)
        same = peers[[p == at for p in points]]
        if len(same):
            best = _by_median(same).sort_values("tps_est_median", ascending=False).iloc[0]
            text += f"; the best design at that point, {best['series']}, is {factor(best, r)} of it"
        notes.append(text + ".")
    return notes


def _alike(r: pd.Series) -> tuple[object, ...]:
    """The point without its strategy, missing values as None (so two missing values match)."""
    return tuple(None if isinstance(r[k], float) and math.isnan(r[k]) else r[k] for k in BASELINE_MATCH)


def _littles(df: pd.DataFrame) -> str:
    check = littles_law(df)
    if check.empty:
        return "Little's law: no clean closed-loop run to check."
    bad = check[~check["ok"]]
    if bad.empty:
        return f"Little's law holds within ±{LITTLES_LAW_TOLERANCE:.0%} on all {len(check)} clean closed-loop runs."
    listed = ", ".join(
        f"{r['strategy']}/{r['api']} {int(r['total_callers'])} callers (ratio {r['ratio']:.2f})"
        for _, r in bad.iterrows()
    )
    return (
        f"Little's law off by more than ±{LITTLES_LAW_TOLERANCE:.0%} (callers waiting outside the measured request, "
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
    out += _distance(runs)
    measured = tso["measured_s"].dropna()
    if len(measured) and measured.min() < SHORT_RUN_S:
        span = f"{measured.min():.1f}" + (f"-{measured.max():.1f}" if measured.max() - measured.min() >= 0.05 else "")
        out.append(f"Runs measured {span} s each: short runs are noisy; use `--duration 10` or more before deciding.")
    out.append(_spread(runs))
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


def _distance(runs: pd.DataFrame) -> list[str]:
    """The distance every figure was measured at, when it was one (loopback) or not recorded."""
    if runs.empty:
        return []
    keys = {distance_key(r) for _, r in runs.iterrows()}
    if keys == {"unknown distance"}:
        return [
            "The round trip to the server is not recorded in these results (files written before `network`): "
            "every figure was measured at a distance the report cannot state."
        ]
    if keys == {"loopback"}:
        rtt = runs["rtt_ms"].median()
        return [
            f"Every figure was measured over loopback (median round trip {rtt:.2f} ms). Real TSO clients sit "
            "0.2-2 ms from the PD leader, where a design bounded by round trips (one request in flight per "
            "round trip for a lock held across a request) falls far below these figures; `--server-rtt-ms` "
            "emulates distance."
        ]
    return []


def _spread(runs: pd.DataFrame) -> str:
    """The measured spread: how wide the points' intervals are, what they were taken from, how sure they are."""
    widths = []
    for _, r in runs.iterrows():
        for name, est in (("ts/s", r["tps_est"]), ("p99", r["p99_est"])):
            if est.known and est.median:
                widths.append((name, (est.high - est.low) / 2 / est.median, r))
    if not widths:
        return (
            "One run per point and fewer than two measured intervals a run to sample: the spread is unknown and no "
            "difference between points is established (`--repeat 3`, or a shorter `--interval`, measures it)."
        )
    parts = []
    for name in ("ts/s", "p99"):
        mine = sorted((w for w in widths if w[0] == name), key=lambda w: w[1])
        if mine:
            middle, widest = mine[len(mine) // 2], mine[-1]
            parts.append(
                f"{name} ±{middle[1]:.0%} at the median point, ±{widest[1]:.0%} at the widest ({_point(widest[2])})"
            )
    sources = sorted(set(runs["samples_from"]))
    repeated = runs["runs"].max() > 1
    fewest = min(len(r["samples"].tps) for _, r in runs.iterrows() if r["tps_est"].known)
    text = "Measured spread (half the interval, as a share of the median): " + "; ".join(parts)
    sure = sorted({(len(e.samples), e.confidence) for e in runs["tps_est"] if e.known and e.confidence is not None})
    if sure:
        text += ". The medians' intervals are order statistics, as sure as their samples allow: " + ", ".join(
            f"{c * 100:.3g} % from {n}" for n, c in sure
        )
    text += f". Samples per point: {', '.join(sources)}"
    if fewest < FEW_SAMPLES:
        text += (
            f"; from as few as {fewest} samples an interval is little more than their range, so a difference "
            "it supports is a large one (`--repeat 3`, or a shorter `--interval`, gives more)"
        )
    if repeated:
        text += f"; {int((runs['runs'] > 1).sum())} of {len(runs)} points were repeated"
    else:
        text += (
            "; with one run per point these are its own intervals (as batch means where neighbours do not "
            "correlate, else steadiness only, which decides nothing), not how much a rerun would differ "
            "(`--repeat 3` measures that)"
        )
    return text + "."
