"""The interval timeline: sums equal the totals, shards merge by interval, the .hlog reads back."""

from __future__ import annotations

import math

import numpy as np
from hdrh.log import HistogramLogReader

from tsobench.bench.measure import intervals, latency
from tsobench.bench.model import results
from tsobench.bench.model.config import RunConfig
from tsobench.bench.runs.runner import run


def test_bucketing_puts_each_completion_in_its_interval():
    done = np.array([-900, -100, 0, 499, 500, 1_700], np.int64)
    lat = np.array([5, 6, 7, 8, 9, 10], np.int64)
    buckets = intervals.Buckets(origin_us=0, interval_us=500)
    buckets.add(done[:3], lat[:3], np.array([250], np.int64))
    buckets.seal(1)  # intervals before index 1 are encoded ...
    buckets.add(done[3:], lat[3:], np.array([2_000], np.int64))  # ... and a straggler (499) reopens interval 0
    got = {p.index: (p.ok, p.failed, latency.decode(p.histogram).get_max_value()) for p in buckets.parts()}
    assert got == {-2: (1, 0, 5), -1: (1, 0, 6), 0: (2, 1, 8), 1: (1, 0, 9), 3: (1, 0, 10), 4: (0, 1, 0)}


def test_the_timeline_sums_to_the_totals_and_shards_merge_by_interval(tmp_path):
    config = RunConfig(
        strategy="dispatcher", api="asyncio", concurrency=4, processes=2, duration_s=1.2, warmup_s=0.5, interval_s=0.25
    )
    result = run(config)
    measured = [t for t in result.timeline if not t["warmup"]]
    warmup = [t for t in result.timeline if t["warmup"]]
    # one entry per wall-clock interval, not one per shard and interval
    assert [t["t_s"] for t in measured] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [t["t_s"] for t in warmup] == [-0.5, -0.25]
    assert sum(t["ok"] for t in measured) == result.metrics["requests_ok"]
    assert sum(t["ok"] for t in measured) == sum(s["requests_ok"] for s in result.shards)
    assert sum(t["failed"] for t in measured) == result.metrics["requests_failed"] == 0
    assert all(t["ok"] > 0 for t in result.timeline)  # both shards load every interval
    whole = latency.decode(result.histograms["latency"])
    assert max(t["max_us"] for t in measured) <= whole.get_max_value()
    last = measured[-1]  # 0.2 s long: its rate counts its own length
    assert math.isclose(last["tps"], last["ok"] / (result.metrics["measured_s"] - 1.0), rel_tol=0.01)

    path = results.write(result, tmp_path / "run.json")
    reader = HistogramLogReader(str(results.hlog_path(path)), latency.new_histogram())
    read = []
    while (h := reader.get_next_interval_histogram()) is not None:
        read.append((h.get_tag(), h.get_total_count(), h.get_max_value()))
    reader.close()
    assert read == [("warmup" if t["warmup"] else None, t["ok"], t["max_us"] or 0) for t in [*warmup, *measured]]
    assert sum(n for tag, n, _ in read if tag is None) == result.metrics["requests_ok"]
