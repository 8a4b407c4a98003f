"""What a shard measured: ``ShardResult``, each field declared once with how shards merge.

A run's figures come from several shards (processes here, Dask tasks elsewhere);
``ShardResult.merge`` folds them into one by each field's rule, so adding a
field is adding one declaration: its merge comes with it. Counts are summed,
windows take the longest, histograms are merged (never averaged), timestamp
ranges are coalesced across shards (an overlap between two shards is a
duplicate), per-caller figures are concatenated and the timeline is merged by
interval. Every shard's clock is anchored to the run's shared start instant,
so intervals and fault traces line up without shifting.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from tsobench.bench.measure import intervals, latency
from tsobench.bench.measure.checker import Ranges, merge_ranges
from tsobench.bench.measure.recovery import Trace


def _sum(values: list[Any]) -> Any:
    return sum(values)


def _counter(values: list[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for v in values:
        total.update(v)
    return dict(total)


def _first_per_key(values: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v in values:
        for key, sample in v.items():
            out.setdefault(key, sample)
    return out


class Merge(Enum):
    """How the shards' values of one field become the run's."""

    SUM = (_sum,)
    MAX = (lambda values: max(values, default=0.0),)
    ANY = (any,)
    COUNTS = (_counter,)  # {kind: count}, summed per kind
    FIRST = (_first_per_key,)  # {kind: sample}, the first shard's sample of each kind
    CONCAT = (lambda values: [x for v in values for x in v],)
    HISTOGRAM = (lambda values: latency.encode(latency.merge(values)),)  # encoded HDR histograms
    RANGES = (merge_ranges,)
    TRACE = (lambda values: Trace.join(v for v in values if v is not None) if any(values) else None,)
    OWN = (lambda values: -1,)  # a shard's own: the merged result is no shard

    def __init__(self, combine: Callable[[list[Any]], Any]) -> None:
        self.combine = combine


MERGE_KEY = "tsobench.merge"
FIGURE_KEY = "tsobench.figure"


@dataclass(frozen=True)
class Closing:
    """What a shard knows as its window closes: each figure's ``produce`` reads its value from here.
    ``fold`` is the shard's ``fold.Fold`` (its running figures); the rest is what ``Fold.finish`` settles."""

    fold: Any
    hung: int  # callers well past their deadline
    waits: np.ndarray  # censored waits, µs
    errors: Counter[str]  # failures in the window, crashes and hung callers, by kind
    crashes: Counter[str]
    samples: dict[str, dict[str, str]]  # the first message and place of each crash kind
    window_s: float
    cpu_s: float
    streams_opened: int
    counters: dict[str, int]  # the strategy's own, over the window


@dataclass(frozen=True)
class Figure:
    """How a shard produces one field of its result, and the run's ``metrics`` key it becomes as merged
    (None: the run derives its figures from it)."""

    produce: Callable[[Closing], Any] | None
    metric: str | None


def measure(
    merge: Merge, help: str, produce: Callable[[Closing], Any] | None = None, metric: str | None = None
) -> dict[str, Any]:
    """``field(metadata=measure(Merge.SUM, "...", produce=lambda c: ..., metric="..."))``: a shard field, its
    merge rule, how a shard produces it as its window closes and the results' metrics key it becomes as is."""
    return {MERGE_KEY: (merge, help), FIGURE_KEY: Figure(produce, metric)}


@dataclass(frozen=True)
class ShardResult:
    index: int = field(metadata=measure(Merge.OWN, "which shard (-1: several merged)", lambda c: c.fold.shard.index))
    requests_ok: int = field(
        metadata=measure(Merge.SUM, "answered in the measured window", lambda c: c.fold.ok, "requests_ok")
    )
    requests_failed: int = field(
        metadata=measure(
            Merge.SUM, "failed in the window, hung callers included", lambda c: sum(c.fold.errors.values()) + c.hung
        )
    )
    timestamps: int = field(
        metadata=measure(
            Merge.SUM, "timestamps answered in the window", lambda c: c.fold.ok * c.fold.run.count, "timestamps"
        )
    )
    measured_s: float = field(metadata=measure(Merge.MAX, "the measured window, s", lambda c: c.window_s))
    cpu_s: float = field(metadata=measure(Merge.SUM, "client CPU (user+sys) over the load, s", lambda c: c.cpu_s))
    errors: dict[str, int] = field(
        metadata=measure(Merge.COUNTS, "failed requests and incidents by kind", lambda c: dict(c.errors))
    )
    error_samples: dict[str, dict[str, str]] = field(
        metadata=measure(
            Merge.FIRST,
            "the first message and place of each error kind",
            lambda c: {**{k: v for r in c.fold.records for k, v in r.samples.items()}, **c.samples},
            "error_samples",
        )
    )
    crashes: int = field(
        metadata=measure(
            Merge.SUM, "callers or background threads that died", lambda c: sum(c.crashes.values()), "crashes"
        )
    )
    hung: int = field(
        metadata=measure(Merge.SUM, "callers still waiting well past their deadline", lambda c: c.hung, "hung")
    )
    censored: int = field(
        metadata=measure(Merge.SUM, "requests in flight when the window closed", lambda c: len(c.waits), "censored")
    )
    streams_opened: int = field(
        metadata=measure(Merge.SUM, "Tso streams opened", lambda c: c.streams_opened, "streams_opened")
    )
    counters: dict[str, int] = field(
        metadata=measure(Merge.COUNTS, "the strategy's own counters in the window", lambda c: c.counters)
    )
    latency: str = field(
        metadata=measure(
            Merge.HISTOGRAM,
            "µs from each intended start; censored waits included",
            lambda c: latency.encode(c.fold.corrected),
        )
    )
    latency_uncorrected: str = field(
        metadata=measure(Merge.HISTOGRAM, "µs from each actual send", lambda c: latency.encode(c.fold.uncorrected))
    )
    answered_us: int = field(
        metadata=measure(
            Merge.SUM, "summed latency of the answered requests (Little's law)", lambda c: c.fold.answered_us
        )
    )
    checked: int = field(metadata=measure(Merge.SUM, "timestamps checked", lambda c: c.fold.checked))
    non_monotonic: int = field(
        metadata=measure(Merge.SUM, "replies out of real-time order in their process", lambda c: c.fold.out_of_order)
    )
    non_monotonic_per_caller: int = field(
        metadata=measure(Merge.SUM, "... of which below the caller's own", lambda c: c.fold.out_of_order_per_caller)
    )
    mismatched: int = field(
        metadata=measure(Merge.SUM, "replies whose count is not the request's", lambda c: c.fold.mismatched)
    )
    ranges: Ranges = field(
        repr=False,
        metadata=measure(Merge.RANGES, "every timestamp answered, coalesced", lambda c: c.fold.ranges.ranges()),
    )
    completions: list[int] = field(
        metadata=measure(
            Merge.CONCAT,
            "per caller with a request due in the window: its completions there",
            lambda c: c.fold.completions_per_caller(),
        )
    )
    interrupted: bool = field(
        metadata=measure(Merge.ANY, "stopped before the window's end", lambda c: c.fold.clock.stop.is_set())
    )
    intervals: list[intervals.IntervalPart] = field(
        # each shard's parts, kept as they are: the runner merges them by interval index
        repr=False,
        metadata=measure(
            Merge.CONCAT, "completions per --interval, warm-up included", lambda c: c.fold.buckets.parts()
        ),
    )
    trace: Trace | None = field(
        repr=False, metadata=measure(Merge.TRACE, "requests around each fault", lambda c: c.fold.joined_trace())
    )

    @classmethod
    def merge(cls, parts: Sequence[ShardResult]) -> ShardResult:
        """Several shards as one, each field by its declared rule."""
        values = {}
        for f in dataclasses.fields(cls):
            rule, _ = f.metadata[MERGE_KEY]
            values[f.name] = rule.combine([getattr(p, f.name) for p in parts])
        return cls(**values)

    @classmethod
    def produce(cls, closing: Closing) -> ShardResult:
        """A shard's result as its window closes: each field as its declaration produces it."""
        values = {}
        for f in dataclasses.fields(cls):
            figure: Figure = f.metadata[FIGURE_KEY]
            if figure.produce is None:
                raise TypeError(f"{cls.__name__}.{f.name} declares no way for a shard to produce it")
            values[f.name] = figure.produce(closing)
        return cls(**values)


def metric_keys(cls: type[ShardResult] = ShardResult) -> dict[str, str]:
    """Shard field -> the results' metrics key it becomes as merged (the run copies these as they are)."""
    return {f.name: m for f in dataclasses.fields(cls) if (m := f.metadata[FIGURE_KEY].metric) is not None}


def declared() -> dict[str, tuple[Merge, str]]:
    """Every field's merge rule and meaning, by name (for docs and tests)."""
    return {f.name: f.metadata[MERGE_KEY] for f in dataclasses.fields(ShardResult)}
