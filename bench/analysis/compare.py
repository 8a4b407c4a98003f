"""``tsobench compare BASE NEW``: did a change make any point faster or slower, beyond doubt?

Points are matched by what they measured (``options.comparable_keys``: strategy,
API and every option that makes a point), never by where they ran (address,
certificates), their seed, length or time: a sweep against a new server build
at a new address compares with the old one.

Per point, the change in throughput and in p99 (NEW / BASE medians) comes with
its bootstrap confidence interval (``stats``). As criterion.rs and pyperf do, a
change counts only when it is significant (its interval excludes 1 at the
significance level) and larger than the minimum effect (all of the interval
beyond it), so run-to-run noise on a busy machine is "no significant change".
A significant drop in throughput or rise in p99 is a regression; so is a point
that was clean in BASE and is not in NEW (the harness's own ``null`` baseline
aside: its verdict describes the harness). The command exits 3 on any regression.
"""

from __future__ import annotations

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
    NO_VALUE,
    PointEstimates,
    PointSamples,
    Ratio,
    RunFigures,
    estimate,
    point_samples,
    ratio_ci,
)
from tsobench.bench.model.config import RunConfig
from tsobench.options import comparable_keys, flatten, specs

MIN_EFFECT = 0.05  # a change smaller than 5 % is noise, however significant (pyperf's and criterion's default scale)
SIGNIFICANCE = 0.05  # 95 % confidence intervals
FASTER, SLOWER, SAME, UNKNOWN = "faster", "slower", "no significant change", "cannot tell"
NAMED_ALWAYS = ("strategy", "api")  # a point's label: these, then whatever differs between the points


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
    tps: Ratio  # NEW / BASE
    p99: Ratio  # NEW / BASE
    verdict: str  # FASTER | SLOWER | SAME | UNKNOWN
    why: str  # what decided the verdict, for a person

    @property
    def regression(self) -> bool:
        return self.verdict == SLOWER


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

    @property
    def regressions(self) -> tuple[PointChange, ...]:
        return tuple(c for c in self.changes if c.regression)

    def summary(self) -> str:
        counts = {v: sum(c.verdict == v for c in self.changes) for v in (SLOWER, FASTER, SAME, UNKNOWN)}
        text = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        return (
            f"{len(self.changes)} common point(s): {text} (significance {self.significance:g}, "
            f"minimum effect {self.min_effect:.0%})"
        )


def compare(
    base: PathLike | Iterable[PathLike],
    new: PathLike | Iterable[PathLike],
    min_effect: float = MIN_EFFECT,
    significance: float = SIGNIFICANCE,
) -> Comparison:
    """Match BASE's and NEW's points and judge each change; ValueError on bad input or no common point."""
    if not 0 <= min_effect < 1:
        raise ValueError(f"--min-effect must be in [0, 1) (got {min_effect:g})")
    if not 0 < significance < 1:
        raise ValueError(f"--significance must be in (0, 1) (got {significance:g})")
    base_df, new_df = load_results(base), load_results(new)
    base_points, new_points = _points(base_df), _points(new_df)
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
        base=_name(base),
        new=_name(new),
        significance=significance,
        min_effect=min_effect,
        changes=changes,
        only_base=tuple(sorted(labels[k] for k in base_points if k not in new_points)),
        only_new=tuple(sorted(labels[k] for k in new_points if k not in base_points)),
        skipped=(*skipped(base_df), *skipped(new_df)),
    )


def _name(paths: PathLike | Iterable[PathLike]) -> str:
    return str(paths) if isinstance(paths, str) or not isinstance(paths, Iterable) else ", ".join(map(str, paths))


Key = tuple[tuple[str, str], ...]


def point_key(config: Mapping[str, Any]) -> Key:
    """What a run measured, as a hashable key: every comparable option's recorded value (defaults
    for options the file predates)."""
    flat, by_key = flatten(RunConfig, config), {spec.key: spec for spec in specs(RunConfig)}
    # parsed as the option declares it, so a rate written 500 by one tsobench and 500.0 by another match
    return tuple(
        (k, json.dumps(by_key[k].parse(flat[k]), sort_keys=True, default=str)) for k in comparable_keys(RunConfig)
    )


def _points(df: pd.DataFrame) -> dict[Key, pd.DataFrame]:
    keys = [point_key(c) for c in df["config"]]
    return {k: df[[key == k for key in keys]] for k in dict.fromkeys(keys)}


def _labels(keys: Sequence[Key]) -> dict[Key, str]:
    """strategy/api, then every option that differs between the points, as a sweep names it (c16, r500)."""
    varying = [k for k, _ in keys[0] if k not in NAMED_ALWAYS and len({dict(key)[k] for key in keys}) > 1]
    out = {}
    for key in keys:
        values = {k: json.loads(v) for k, v in key}
        parts = ["/".join(str(values[k]) for k in NAMED_ALWAYS)]
        parts += [named(k, values[k]) for k in varying]
        out[key] = " ".join(parts)
    return out


def _listing(points: Mapping[Key, Any], labels: Mapping[Key, str], most: int = 3) -> str:
    names = sorted(labels[k] for k in points)
    return "; ".join(names[:most]) + (f"; {len(names) - most} more" if len(names) > most else "") or "none"


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
    tps = ratio_ci(n.samples.tps, b.samples.tps, confidence)
    p99 = ratio_ci(n.samples.p99_us, b.samples.p99_us, confidence)
    verdict, why = _judge(b, n, tps, p99, min_effect)
    return PointChange(label, b, n, tps, p99, verdict, why)


def _judge(base: Side, new: Side, tps: Ratio, p99: Ratio, min_effect: float) -> tuple[str, str]:
    """Slower when anything got significantly worse; faster when something got better and nothing worse."""
    worse: list[str] = []
    better: list[str] = []
    if new.dirty and not base.dirty and not new.baseline:
        worse.append(f"verdict {new.verdict} (was {base.verdict})")
    for name, ratio, sign in (("ts/s", tps, 1), ("p99", p99, -1)):
        direction = ratio.beyond(min_effect) * sign  # +1: better (more ts/s, lower p99)
        if direction:
            (better if direction > 0 else worse).append(f"{name} {ratio.change()}")
    if worse:
        return SLOWER, "; ".join(worse)
    if better:
        return FASTER, "; ".join(better)
    if not (tps.known or p99.known):
        return UNKNOWN, "no interval: one run a side and no timeline to sample (use --repeat or --interval)"
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
            f"{p.verdict}: {p.why}" if p.verdict in (FASTER, SLOWER) else p.verdict,
        )
        for p in c.changes
    ]


def notes(c: Comparison) -> list[str]:
    """The lines under the table: where the samples came from, the points only one side has, files left out."""
    sources = sorted({f"{s.describe()}" for p in c.changes for s in (p.base.samples.tps, p.new.samples.tps)})
    out = [
        c.summary(),
        f"Medians with {1 - c.significance:.0%} bootstrap confidence intervals; samples per point and side: "
        + (", ".join(sources) or NO_VALUE)
        + " (a single run's intervals show how steady it was, not how much a rerun would differ)",
    ]
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
    colour = {SLOWER: "red", FASTER: "green"}
    for row, change in zip(rows(c), c.changes, strict=True):
        table.add_row(*map(escape, row), style=colour.get(change.verdict))
    console.print(table)
    for line in notes(c):
        console.print(escape(line), highlight=False, soft_wrap=True)
