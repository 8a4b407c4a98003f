"""Latency recording: integer microseconds into HDR histograms.

Callers append to a plain ``array`` in the hot path (cheap and free of
cross-thread races); the shard folds them into one histogram at the end.
Histograms cross process boundaries ``encode()``d and are merged, never
averaged.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 24 * 3_600 * 1_000_000  # a day: no request of a bounded run waits longer
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def histogram_of(values: Iterable[int]) -> HdrHistogram:
    """Record values as they are (no clamping); one the histogram cannot hold is an error."""
    h = new_histogram()
    record = h.record_value
    for v in values:
        if not record(v):
            raise ValueError(f"latency {v} us is outside the histogram's range [0, {HIGHEST_US}]")
    return h


def encode(h: HdrHistogram) -> str:
    return h.encode().decode("ascii")


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii"))


def merge(encoded: Iterable[str]) -> HdrHistogram:
    total = new_histogram()
    for text in encoded:
        total.add(decode(text))
    return total


def summarize(h: HdrHistogram) -> dict[str, float]:
    """The percentiles every result carries, in microseconds."""
    if h.get_total_count() == 0:
        return {**dict.fromkeys(PERCENTILES, 0), "max": 0, "mean": 0.0}
    out: dict[str, float] = {k: h.get_value_at_percentile(p) for k, p in PERCENTILES.items()}
    out["max"] = h.get_max_value()
    out["mean"] = round(h.get_mean_value(), 1)
    return out


class CallerLatencies:
    """One caller's latencies: from the intended start (corrected) and from the
    actual send (uncorrected; differs only in open loop)."""

    __slots__ = ("corrected", "uncorrected")

    def __init__(self) -> None:
        self.corrected = array("q")
        self.uncorrected = array("q")

    def record(self, intended_us: int, sent_us: int, done_us: int) -> None:
        self.corrected.append(done_us - intended_us)
        self.uncorrected.append(done_us - sent_us)
