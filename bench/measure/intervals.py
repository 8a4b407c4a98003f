"""The run as a timeline: completions per interval of ``--interval`` seconds.

Each shard buckets its completions by interval once the run is over (its hot
path only appended times), one HDR histogram per interval. Interval ``k`` spans
``[k*S, (k+1)*S)`` from the measured window's start; negative ``k`` are the
warm-up. The shards share the start instant, so interval ``k`` is the same
wall-clock span in every shard and the runner merges them by index.

The merged intervals become the results' ``timeline`` and an HdrHistogram
interval log (``.hlog``), the format HdrHistogram's log readers read
(``hdrh.log.HistogramLogReader`` in Python, ``HistogramLogProcessor`` in Java).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

from tsobench.bench.measure import latency
from tsobench.bench.model.results import IntervalEntry

# (index, answered, failed, p50 µs, p99 µs) of one interval as it ends: the live interval lines' figures
LiveFigures = tuple[int, int, int, int, int]
WARMUP_TAG = "warmup"  # the .hlog tag of warm-up intervals (untagged: the measured window)
HLOG_VERSION = "1.3"


@dataclass(frozen=True)
class IntervalPart:
    """One shard's completions in interval ``index``."""

    index: int
    ok: int
    failed: int
    histogram: str  # encoded: latency in µs of the answered requests


class Buckets:
    """One shard's completions by interval, filled as the run goes.

    The intervals still receiving completions keep a live histogram; older ones
    are sealed (encoded, a few hundred bytes each), so an hour of one-second
    intervals costs kilobytes per interval, not a histogram's whole array. A
    straggler that completes into a sealed interval reopens it.
    """

    def __init__(self, origin_us: int, interval_us: int) -> None:
        self.origin_us, self.interval_us = origin_us, interval_us
        self._open: dict[int, tuple[list[int], HdrHistogram]] = {}  # index -> ([ok, failed], histogram)
        self._sealed: dict[int, IntervalPart] = {}

    def index(self, at_us: np.ndarray) -> np.ndarray:
        return np.floor_divide(at_us - self.origin_us, self.interval_us)

    def add(self, done_us: np.ndarray, latency_us: np.ndarray, failed_done_us: np.ndarray) -> None:
        """Answered requests (completion, latency) and failed ones (completion)."""
        k, failed_k = self.index(done_us), self.index(failed_done_us)
        for index in np.union1d(k, failed_k).tolist():
            counts, histogram = self._reopen(index)
            chosen = latency_us[k == index]
            latency.record(histogram, chosen)
            counts[0] += len(chosen)
            counts[1] += int(np.count_nonzero(failed_k == index))

    def _reopen(self, index: int) -> tuple[list[int], HdrHistogram]:
        if index not in self._open:
            part = self._sealed.pop(index, None)
            histogram = latency.decode(part.histogram) if part else latency.new_histogram()
            self._open[index] = ([part.ok, part.failed] if part else [0, 0], histogram)
        return self._open[index]

    def seal(self, before: int) -> None:
        """Encode the intervals before index ``before``: no more completions are expected there."""
        for index in [i for i in self._open if i < before]:
            (ok, failed), histogram = self._open.pop(index)
            self._sealed[index] = IntervalPart(index, ok, failed, latency.encode(histogram))

    def last_whole(self, now_us: int) -> LiveFigures | None:
        """(index, answered, failed, p50 µs, p99 µs) of the last interval that is over, for the interval lines."""
        index = (now_us - self.origin_us) // self.interval_us - 1
        if index in self._open:
            (ok, failed), histogram = self._open[index]
        elif index in self._sealed:
            part = self._sealed[index]
            ok, failed, histogram = part.ok, part.failed, latency.decode(part.histogram)
        else:
            return None
        p50, p99 = (histogram.get_value_at_percentile(q) if ok else 0 for q in (50, 99))
        return index, ok, failed, p50, p99

    def parts(self) -> list[IntervalPart]:
        self.seal(1 << 62)
        return [self._sealed[k] for k in sorted(self._sealed)]


@dataclass
class Interval:
    """The shards' parts of one interval, merged."""

    index: int
    ok: int
    failed: int
    histogram: HdrHistogram


def merge(parts: Iterable[IntervalPart]) -> list[Interval]:
    merged: dict[int, Interval] = defaultdict(lambda: Interval(0, 0, 0, latency.new_histogram()))
    for part in parts:
        interval = merged[part.index]
        interval.index = part.index
        interval.ok += part.ok
        interval.failed += part.failed
        interval.histogram.add(latency.decode(part.histogram))
    return [merged[k] for k in sorted(merged)]


def span(index: int, interval_s: float, warmup_s: float, measured_s: float) -> tuple[float, float]:
    """Interval ``index``'s [start, end) in seconds from the window's start, cut to the warm-up and window."""
    start, end = index * interval_s, (index + 1) * interval_s
    if index < 0:
        return max(start, -warmup_s), min(end, 0.0)
    return start, min(end, max(measured_s, start))


def timeline(
    intervals: Iterable[Interval], interval_s: float, warmup_s: float, measured_s: float, count: int
) -> list[IntervalEntry]:
    """The results' ``timeline``: one entry per interval; the measured ones' ``ok`` sum to ``requests_ok``."""
    out: list[IntervalEntry] = []
    for i in intervals:
        start, end = span(i.index, interval_s, warmup_s, measured_s)
        answered = i.ok > 0
        out.append(
            {
                "t_s": round(start, 6),
                "ok": i.ok,
                "failed": i.failed,
                "tps": round(i.ok * count / (end - start), 1) if end > start else 0.0,
                "p50_us": i.histogram.get_value_at_percentile(50) if answered else None,
                "p99_us": i.histogram.get_value_at_percentile(99) if answered else None,
                "max_us": i.histogram.get_max_value() if answered else None,
                "warmup": i.index < 0,
            }
        )
    return out


def hlog(
    intervals: Iterable[Interval], interval_s: float, warmup_s: float, measured_s: float, load_start: float
) -> str:
    """An HdrHistogram interval log (format 1.3) of the intervals, values in µs.

    Time stamps count from ``load_start`` (the wall-clock start of the warm-up),
    which the ``StartTime`` and ``BaseTime`` lines give; warm-up intervals carry
    the tag ``warmup``, so a log processor reading untagged intervals sees the
    measured window only. The StartTime line is written here because hdrhistogram
    0.10.8's ``HistogramLogWriter.output_start_time`` passes milliseconds to
    ``datetime.fromtimestamp``.
    """
    when = time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(load_start))
    lines = [
        f"#[Histogram log format version {HLOG_VERSION}]",
        f"#[StartTime: {load_start:.3f} (seconds since epoch), {when}]",
        f"#[BaseTime: {load_start:.3f} (seconds since epoch)]",
        "#[latency in microseconds; Interval_Max in milliseconds]",
        '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"',
    ]
    for i in intervals:
        start, end = span(i.index, interval_s, warmup_s, measured_s)
        tag = f"Tag={WARMUP_TAG}," if i.index < 0 else ""
        max_ms = i.histogram.get_max_value() / 1000
        lines.append(f"{tag}{start + warmup_s:.3f},{end - start:.3f},{max_ms:.3f},{latency.encode(i.histogram)}")
    return "\n".join(lines) + "\n"
