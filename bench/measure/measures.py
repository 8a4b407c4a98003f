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


def measure(merge: Merge, help: str) -> dict[str, Any]:
    """``field(metadata=measure(Merge.SUM, "..."))``: a shard field and its merge rule."""
    return {MERGE_KEY: (merge, help)}


@dataclass(frozen=True)
class ShardResult:
    index: int = field(metadata=measure(Merge.OWN, "which shard (-1: several merged)"))
    requests_ok: int = field(metadata=measure(Merge.SUM, "answered in the measured window"))
    requests_failed: int = field(metadata=measure(Merge.SUM, "failed in the window, hung callers included"))
    timestamps: int = field(metadata=measure(Merge.SUM, "timestamps answered in the window"))
    measured_s: float = field(metadata=measure(Merge.MAX, "the measured window, s"))
    cpu_s: float = field(metadata=measure(Merge.SUM, "client CPU (user+sys) over the load, s"))
    errors: dict[str, int] = field(metadata=measure(Merge.COUNTS, "failed requests and incidents by kind"))
    error_samples: dict[str, dict[str, str]] = field(
        metadata=measure(Merge.FIRST, "the first message and place of each error kind")
    )
    crashes: int = field(metadata=measure(Merge.SUM, "callers or background threads that died"))
    hung: int = field(metadata=measure(Merge.SUM, "callers still waiting well past their deadline"))
    censored: int = field(metadata=measure(Merge.SUM, "requests in flight when the window closed"))
    streams_opened: int = field(metadata=measure(Merge.SUM, "Tso streams opened"))
    counters: dict[str, int] = field(metadata=measure(Merge.COUNTS, "the strategy's own counters in the window"))
    latency: str = field(metadata=measure(Merge.HISTOGRAM, "µs from each intended start; censored waits included"))
    latency_uncorrected: str = field(metadata=measure(Merge.HISTOGRAM, "µs from each actual send"))
    answered_us: int = field(metadata=measure(Merge.SUM, "summed latency of the answered requests (Little's law)"))
    checked: int = field(metadata=measure(Merge.SUM, "timestamps checked"))
    non_monotonic: int = field(metadata=measure(Merge.SUM, "replies out of real-time order in their process"))
    non_monotonic_per_caller: int = field(metadata=measure(Merge.SUM, "... of which below the caller's own"))
    mismatched: int = field(metadata=measure(Merge.SUM, "replies whose count is not the request's"))
    ranges: Ranges = field(repr=False, metadata=measure(Merge.RANGES, "every timestamp answered, coalesced"))
    completions: list[int] = field(
        metadata=measure(Merge.CONCAT, "per caller with a request due in the window: its completions there")
    )
    interrupted: bool = field(metadata=measure(Merge.ANY, "stopped before the window's end"))
    intervals: list[intervals.IntervalPart] = field(
        # each shard's parts, kept as they are: the runner merges them by interval index
        repr=False,
        metadata=measure(Merge.CONCAT, "completions per --interval, warm-up included"),
    )
    trace: Trace | None = field(repr=False, metadata=measure(Merge.TRACE, "requests around each fault"))

    @classmethod
    def merge(cls, parts: Sequence[ShardResult]) -> ShardResult:
        """Several shards as one, each field by its declared rule."""
        values = {}
        for f in dataclasses.fields(cls):
            rule, _ = f.metadata[MERGE_KEY]
            values[f.name] = rule.combine([getattr(p, f.name) for p in parts])
        return cls(**values)


def declared() -> dict[str, tuple[Merge, str]]:
    """Every field's merge rule and meaning, by name (for docs and tests)."""
    return {f.name: f.metadata[MERGE_KEY] for f in dataclasses.fields(ShardResult)}
