"""``tsobench compare``: did a change make any point faster or slower, beyond doubt?

Two results folders (BASE, NEW), or two designs within one folder (``--strategies a,b``: a is BASE,
b is NEW). Points are matched by what they measured (``options.comparable_keys``: strategy, API and
every option that makes a point; with ``--strategies``, everything but the strategy), never by where
they ran (address, certificates), their seed, length or time: a sweep against a new server build at
a new address compares with the old one.

Per point, the change in throughput and in p99 is judged by the one rule (``stats.compare_samples``):
NEW / BASE with its interval, "higher"/"lower" only when all of the interval lies beyond the minimum
effect. A drop in throughput, a rise in p99, or a point that was clean in BASE and is not in NEW
(the harness's own ``null`` baseline aside) is a regression ("slower"). A point whose samples cannot
decide (one run a side, its intervals steadiness only) is "cannot tell": the gate exits 4 on it
unless ``--allow-unknown``, so it never passes on nothing. The environment each side ran in (CPU,
cores, OS, Python, grpcio, tsobench and its commit, the server) is compared too, and ``--strict``
refuses to judge across a difference.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from tsobench.bench.analysis.aggregate import worst
from tsobench.bench.analysis.loader import PathLike, Skipped, load_results, named, skipped
from tsobench.bench.analysis.report import Block, Heading, Table, Text, to_markdown
from tsobench.bench.analysis.stats import (
    CANNOT_TELL,
    HIGHER,
    LOWER,
    MIN_EFFECT,
    NO_VALUE,
    Change,
    Estimate,
    PointEstimates,
    PointSamples,
    RunFigures,
    compare_samples,
    estimate,
    point_samples,
)
from tsobench.bench.model.config import RunConfig
from tsobench.options import comparable_keys, flatten, specs

SIGNIFICANCE = 0.05  # 95 % confidence intervals
FASTER, SLOWER, SAME, UNKNOWN = "faster", "slower", "no significant change", "cannot tell"
NAMED_ALWAYS = ("strategy", "api")  # a point's label: these, then whatever differs between the points
# What each side ran on, as the loader's columns name it, and how a person reads it.
ENVIRONMENT = (
    ("cpu_model", "CPU model"),
    ("cpu_count", "cores"),
    ("platform", "OS"),
    ("python", "Python"),
    ("grpcio", "grpcio"),
    ("tsobench", "tsobench version"),
    ("git_commit", "tsobench commit"),
    ("server", "server build"),
)


@dataclass(frozen=True)
class Side:
    """One point's runs on one side of the comparison."""

    runs: int
    samples: PointSamples
    figures: PointEstimates  # medians and intervals of the samples
    verdict: str  # the worst of its runs'
    dirty: bool  # some run was not clean where clean was expected
    baseline: bool  # the harness's own ceiling (null)


@dataclass(frozen=True)
class PointChange:
    label: str
    base: Side
    new: Side
    tps: Change  # NEW / BASE
    p99: Change  # NEW / BASE
    verdict: str  # FASTER | SLOWER | SAME | UNKNOWN
    why: str  # what decided the verdict, for a person

    @property
    def regression(self) -> bool:
        return self.verdict == SLOWER

    @property
    def unknown(self) -> bool:
        return self.verdict == UNKNOWN


@dataclass(frozen=True)
class Difference:
    """An environment fact that is not the same on both sides (each side's values, sorted)."""

    name: str
    base: tuple[str, ...]
    new: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name}: {', '.join(self.base) or NO_VALUE} (BASE) vs {', '.join(self.new) or NO_VALUE} (NEW)"


@dataclass(frozen=True)
class Comparison:
    base: str
    new: str
    significance: float
    min_effect: float
    changes: tuple[PointChange, ...]
    only_base: tuple[str, ...]
    only_new: tuple[str, ...]
    skipped: tuple[Skipped, ...]
    environment: tuple[Difference, ...] = ()

    @property
    def regressions(self) -> tuple[PointChange, ...]:
        return tuple(c for c in self.changes if c.regression)

    @property
    def unknowns(self) -> tuple[PointChange, ...]:
        return tuple(c for c in self.changes if c.unknown)

    def summary(self) -> str:
        counts = {v: sum(c.verdict == v for c in self.changes) for v in (SLOWER, FASTER, SAME, UNKNOWN)}
        text = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        return (
            f"{len(self.changes)} common point(s): {text} (significance {self.significance:g}, "
            f"minimum effect {self.min_effect:.0%})"
        )


def compare(
    base: PathLike | Iterable[PathLike],
    new: PathLike | Iterable[PathLike] | None = None,
    min_effect: float = MIN_EFFECT,
    significance: float = SIGNIFICANCE,
    strategies: tuple[str, str] | None = None,
) -> Comparison:
    """Match BASE's and NEW's points and judge each change; ValueError on bad input or no common point.

    ``strategies`` (a, b): one set of results (``base``; ``new`` must be None), a's points against b's."""
    if not 0 <= min_effect < 1:
        raise ValueError(f"--min-effect must be in [0, 1) (got {min_effect:g})")
    if not 0 < significance < 1:
        raise ValueError(f"--significance must be in (0, 1) (got {significance:g})")
    if strategies is None:
        if new is None:
            raise ValueError("compare needs BASE and NEW, or one RESULTS with --strategies a,b")
        base_df, new_df = load_results(base), load_results(new)
        base_name, new_name = _name(base), _name(new)
        ignore: tuple[str, ...] = ()
        left_out = (*skipped(base_df), *skipped(new_df))
    else:
        if new is not None:
            raise ValueError("--strategies compares two designs within one RESULTS: give one path, not two")
        df = load_results(base)
        base_df, new_df = _strategy(df, strategies[0]), _strategy(df, strategies[1])
        base_name, new_name = (f"{s} in {_name(base)}" for s in strategies)
        ignore = ("strategy",)  # a's point matches b's at the same everything else
        left_out = tuple(skipped(df))
    base_points, new_points = _points(base_df, ignore), _points(new_df, ignore)
    labels = _labels([*base_points, *new_points])
    common = [k for k in base_points if k in new_points]
    if not common:
        raise ValueError(
            f"no common points: BASE has {len(base_points)} ({_listing(base_points, labels)}), NEW has "
            f"{len(new_points)} ({_listing(new_points, labels)}); points match by strategy, API and every "
            "option that defines a point"
        )
    changes = tuple(
        _change(labels[k], base_points[k], new_points[k], min_effect, 1 - significance)
        for k in sorted(common, key=lambda k: labels[k])
    )
    return Comparison(
        base=base_name,
        new=new_name,
        significance=significance,
        min_effect=min_effect,
        changes=changes,
        only_base=tuple(sorted(labels[k] for k in base_points if k not in new_points)),
        only_new=tuple(sorted(labels[k] for k in new_points if k not in base_points)),
        skipped=left_out,
        environment=differences(base_df, new_df),
    )


def _strategy(df: pd.DataFrame, name: str) -> pd.DataFrame:
    mine = df[df["strategy"] == name]
    if mine.empty:
        have = ", ".join(sorted(set(df["strategy"]))) or "none"
        raise ValueError(f"--strategies: no runs of {name!r} in these results (they have: {have})")
    return mine


def _name(paths: PathLike | Iterable[PathLike]) -> str:
    return str(paths) if isinstance(paths, str) or not isinstance(paths, Iterable) else ", ".join(map(str, paths))


Key = tuple[tuple[str, str], ...]


def point_key(config: Mapping[str, Any], ignore: Sequence[str] = ()) -> Key:
    """What a run measured, as a hashable key: every comparable option's recorded value (defaults
    for options the file predates), but those in ``ignore``."""
    flat, by_key = flatten(RunConfig, config), {spec.key: spec for spec in specs(RunConfig)}
    # parsed as the option declares it, so a rate written 500 by one tsobench and 500.0 by another match
    return tuple(
        (k, json.dumps(by_key[k].parse(flat[k]), sort_keys=True, default=str))
        for k in comparable_keys(RunConfig)
        if k not in ignore
    )


def _points(df: pd.DataFrame, ignore: Sequence[str] = ()) -> dict[Key, pd.DataFrame]:
    keys = [point_key(c, ignore) for c in df["config"]]
    return {k: df[[key == k for key in keys]] for k in dict.fromkeys(keys)}


def _labels(keys: Sequence[Key]) -> dict[Key, str]:
    """strategy/api, then every option that differs between the points, as a sweep names it (c16, r500)."""
    varying = [k for k, _ in keys[0] if k not in NAMED_ALWAYS and len({dict(key)[k] for key in keys}) > 1]
    out = {}
    for key in keys:
        values = {k: json.loads(v) for k, v in key}
        parts = ["/".join(str(values[k]) for k in NAMED_ALWAYS if k in values)]
        parts += [named(k, values[k]) for k in varying]
        out[key] = " ".join(parts)
    return out


def _listing(points: Mapping[Key, Any], labels: Mapping[Key, str], most: int = 3) -> str:
    names = sorted(labels[k] for k in points)
    return "; ".join(names[:most]) + (f"; {len(names) - most} more" if len(names) > most else "") or "none"


def _environment(df: pd.DataFrame, name: str) -> tuple[str, ...]:
    """One side's values of an environment fact, sorted; the server: embedded, or the target it ran against."""
    if name == "server":
        values = {"embedded (this tsobench)" if pd.isna(t) else f"external at {t}" for t in df.get("target", ())}
    else:
        values = {str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in df[name].dropna()}
    return tuple(sorted(values))


def differences(base: pd.DataFrame, new: pd.DataFrame) -> tuple[Difference, ...]:
    """The environment facts whose values are not the same on both sides."""
    out = []
    for name, label in ENVIRONMENT:
        if name != "server" and name not in base.columns:
            continue
        b, n = _environment(base, name), _environment(new, name)
        if b != n:
            out.append(Difference(label, b, n))
    return tuple(out)


def _side(runs: pd.DataFrame, confidence: float) -> Side:
    samples = point_samples([RunFigures.of(r) for _, r in runs.iterrows()])
    return Side(
        runs=len(runs),
        samples=samples,
        figures=estimate(samples, confidence),
        verdict=worst(runs)["verdict"],
        dirty=bool(runs["dirty"].any()),
        baseline=bool(runs["baseline"].any()),
    )


def _change(label: str, base: pd.DataFrame, new: pd.DataFrame, min_effect: float, confidence: float) -> PointChange:
    b, n = _side(base, confidence), _side(new, confidence)
    rule = {"min_effect": min_effect, "confidence": confidence}
    tps = compare_samples(b.samples.tps, n.samples.tps, **rule)
    p99 = compare_samples(b.samples.p99_us, n.samples.p99_us, **rule)
    verdict, why = _judge(b, n, tps, p99)
    return PointChange(label, b, n, tps, p99, verdict, why)


def _judge(base: Side, new: Side, tps: Change, p99: Change) -> tuple[str, str]:
    """Slower when anything got worse; cannot tell when a figure cannot be judged; faster when
    something got better; no significant change otherwise."""
    worse: list[str] = []
    better: list[str] = []
    if new.dirty and not base.dirty and not new.baseline:
        worse.append(f"verdict {new.verdict} (was {base.verdict})")
    for name, change, good in (("ts/s", tps, HIGHER), ("p99", p99, LOWER)):
        if change.distinguishable:
            (better if change.direction == good else worse).append(f"{name} {change.change()}")
    if worse:
        return SLOWER, "; ".join(worse)
    unknown = [f"{name}: {c.why}" for name, c in (("ts/s", tps), ("p99", p99)) if c.direction == CANNOT_TELL]
    if unknown:
        return UNKNOWN, "; ".join(dict.fromkeys(unknown))
    if better:
        return FASTER, "; ".join(better)
    return SAME, "every change within its interval or below the minimum effect"


# --- output -------------------------------------------------------------------------------------

HEADER = ("point", "runs", "ts/s BASE", "ts/s NEW", "ts/s change", "p99 ms BASE", "p99 ms NEW", "p99 change", "verdict")


def rows(c: Comparison) -> list[tuple[str, ...]]:
    return [
        (
            p.label,
            f"{p.base.runs}/{p.new.runs}",
            p.base.figures.tps.format(),
            p.new.figures.tps.format(),
            p.tps.change(),
            p.base.figures.p99_us.format(".2f", 1e-3),
            p.new.figures.p99_us.format(".2f", 1e-3),
            p.p99.change(),
            f"{p.verdict}: {p.why}" if p.verdict != SAME else p.verdict,
        )
        for p in c.changes
    ]


def _confidences(c: Comparison) -> str:
    """The real confidence of the medians' intervals, per sample count."""
    seen: dict[int, float] = {}
    for p in c.changes:
        for e in (p.base.figures.tps, p.new.figures.tps):
            if e.confidence is not None:
                seen[len(e.samples)] = e.confidence
    return ", ".join(f"{_pct(v)} from {n}" for n, v in sorted(seen.items())) or NO_VALUE


def _pct(share: float) -> str:
    return f"{share * 100:.3g} %"


def notes(c: Comparison) -> list[str]:
    """The lines under the table: the rule, where the samples came from, the environment, what one side has."""
    sources = sorted({f"{s.describe()}" for p in c.changes for s in (p.base.samples.tps, p.new.samples.tps)})
    out = [
        c.summary(),
        f"Change: NEW / BASE, the ratio of geometric means with its {1 - c.significance:.0%} Welch interval on "
        "logs; a point is slower or faster only when all of the interval lies beyond the minimum effect. "
        f"Medians with order-statistic intervals (their real confidence: {_confidences(c)} samples). "
        "Samples per point and side: " + (", ".join(sources) or NO_VALUE),
    ]
    if c.unknowns:
        out.append(
            f"{len(c.unknowns)} point(s) cannot be told: one run a side whose intervals are steadiness only, "
            "or a single figure. Use `--repeat 3` on both sides (or `--allow-unknown` to pass them)."
        )
    if c.environment:
        out.append("The two sides ran in different environments: " + "; ".join(map(str, c.environment)))
    if c.only_base:
        out.append("only in BASE: " + "; ".join(c.only_base))
    if c.only_new:
        out.append("only in NEW: " + "; ".join(c.only_new))
    out += [str(s) for s in c.skipped]
    return out


def to_markdown_text(c: Comparison) -> str:
    blocks: list[Block] = [
        Heading(f"Comparison: {c.new} against {c.base}", 1),
        Table(HEADER, tuple(rows(c))),
        *(Text(line) for line in notes(c)),
    ]
    return to_markdown(blocks)


def print_comparison(c: Comparison, console: Console) -> None:
    table = RichTable(title=f"{c.new} against {c.base}", title_justify="left")
    for col in HEADER:
        table.add_column(col, justify="left" if col in ("point", "verdict") else "right")
    colour = {SLOWER: "red", FASTER: "green", UNKNOWN: "yellow"}
    for row, change in zip(rows(c), c.changes, strict=True):
        table.add_row(*map(escape, row), style=colour.get(change.verdict))
    console.print(table)
    for line in notes(c):
        console.print(escape(line), highlight=False, soft_wrap=True)


# --- machine-readable: one record per point ------------------------------------------------------


def _estimate(e: Estimate) -> dict[str, Any]:
    return {"median": e.median, "low": e.low, "high": e.high, "confidence": e.confidence}


def _change_record(c: Change) -> dict[str, Any]:
    return {"ratio": c.ratio, "low": c.low, "high": c.high, "confidence": c.confidence, "direction": c.direction}


def _side_record(s: Side) -> dict[str, Any]:
    return {
        "runs": s.runs,
        "samples": s.samples.tps.describe(),
        "tps": _estimate(s.figures.tps),
        "p99_us": _estimate(s.figures.p99_us),
        "verdict": s.verdict,
    }


def to_document(c: Comparison) -> dict[str, Any]:
    """The whole comparison as one JSON-ready document (``compare --json``)."""
    return {
        "base": c.base,
        "new": c.new,
        "significance": c.significance,
        "min_effect": c.min_effect,
        "summary": c.summary(),
        "points": [
            {
                "point": p.label,
                "verdict": p.verdict,
                "why": p.why,
                "base": _side_record(p.base),
                "new": _side_record(p.new),
                "tps_change": _change_record(p.tps),
                "p99_change": _change_record(p.p99),
            }
            for p in c.changes
        ],
        "environment": [{"name": d.name, "base": list(d.base), "new": list(d.new)} for d in c.environment],
        "only_base": list(c.only_base),
        "only_new": list(c.only_new),
        "skipped": [str(s) for s in c.skipped],
    }


CSV_HEADER = (
    "point", "runs_base", "runs_new",
    "tps_base", "tps_base_low", "tps_base_high", "tps_new", "tps_new_low", "tps_new_high",
    "tps_ratio", "tps_ratio_low", "tps_ratio_high",
    "p99_us_base", "p99_us_base_low", "p99_us_base_high", "p99_us_new", "p99_us_new_low", "p99_us_new_high",
    "p99_ratio", "p99_ratio_low", "p99_ratio_high", "verdict", "why",
)  # fmt: skip


def to_csv(c: Comparison) -> str:
    """The table as CSV, numbers unformatted (``compare --csv FILE``); empty cells where none is known."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for p in c.changes:
        cells: list[object] = [p.label, p.base.runs, p.new.runs]
        for e in (p.base.figures.tps, p.new.figures.tps):
            cells += [e.median, e.low, e.high]
        cells += [p.tps.ratio, p.tps.low, p.tps.high]
        for e in (p.base.figures.p99_us, p.new.figures.p99_us):
            cells += [e.median, e.low, e.high]
        cells += [p.p99.ratio, p.p99.low, p.p99.high, p.verdict, p.why]
        writer.writerow(["" if v is None else v for v in cells])
    return out.getvalue()
