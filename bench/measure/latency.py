"""Latency recording: integer microseconds into HDR histograms.

Callers append their send and reply times to plain arrays in the hot path
(see ``shard``); the latencies are folded into histograms at the end, all
at once (``histogram_of``).
Histograms cross process boundaries ``encode()``d and are merged, never
averaged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

import numpy as np
from hdrh.histogram import HdrHistogram

if TYPE_CHECKING:
    from tsobench.bench.model.results import LatencySummary

LOWEST_US = 1
HIGHEST_US = 24 * 3_600 * 1_000_000  # a day: no request of a bounded run waits longer
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def histogram_of(values: np.ndarray | Iterable[int]) -> HdrHistogram:
    """A new histogram of ``values`` (see ``record``)."""
    h = new_histogram()
    record(h, np.asarray(values if isinstance(values, np.ndarray) else np.fromiter(values, np.int64), np.int64))
    return h


def record(h: HdrHistogram, values: np.ndarray) -> None:
    """Add values as they are (no clamping) to ``h``; one the histogram cannot hold is an error.

    Vectorised: the bucket index of every value is computed with numpy (the
    same arithmetic as ``HdrHistogram._counts_index_for``) and the counts are
    added in one pass, so folding a million latencies takes milliseconds.
    """
    v = np.asarray(values, np.int64)
    if len(v) == 0:
        return
    low, high = int(v.min()), int(v.max())
    if low < 0 or high > HIGHEST_US:
        bad = v[(v < 0) | (v > HIGHEST_US)][0]
        raise ValueError(f"latency {bad} us is outside the histogram's range [0, {HIGHEST_US}]")
    # bit length of (value | sub_bucket_mask): exact through float64 for values below 2**53
    _, bits = np.frexp((v | h.sub_bucket_mask).astype(np.float64))
    bucket = bits.astype(np.int64) - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
    sub_bucket = v >> (bucket + h.unit_magnitude)
    index = ((bucket + 1) << h.sub_bucket_half_count_magnitude) + sub_bucket - h.sub_bucket_half_count
    counts = np.ctypeslib.as_array(h.counts)
    counts += np.bincount(index, minlength=h.counts_len)[: h.counts_len].astype(counts.dtype)
    empty = h.total_count == 0
    h.total_count += len(v)
    h.min_value = low if empty else min(h.min_value, low)
    h.max_value = high if empty else max(h.max_value, high)


def encode(h: HdrHistogram) -> str:
    return h.encode().decode("ascii")


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii"))


def merge(encoded: Iterable[str]) -> HdrHistogram:
    total = new_histogram()
    for text in encoded:
        total.add(decode(text))
    return total


def summarize(h: HdrHistogram) -> LatencySummary:
    """The percentiles every result carries, in microseconds."""
    if h.get_total_count() == 0:
        return cast("LatencySummary", {**dict.fromkeys(PERCENTILES, 0), "max": 0, "mean": 0.0})
    out: dict[str, float] = {k: h.get_value_at_percentile(p) for k, p in PERCENTILES.items()}
    out["max"] = h.get_max_value()
    out["mean"] = round(h.get_mean_value(), 1)
    return cast("LatencySummary", out)
