"""What a shard measured: each ShardResult field declared once with how shards merge."""

from __future__ import annotations

from tsobench.bench.measure import latency, measures
from tsobench.bench.measure.measures import Merge, ShardResult
from tsobench.bench.measure.shard import run_shard
from tsobench.bench.model.config import RunConfig, ShardConfig


def test_every_shard_field_declares_how_shards_merge():
    declared = measures.declared()
    assert set(declared) == {f.name for f in measures.dataclasses.fields(measures.ShardResult)}
    assert declared["requests_ok"][0] is measures.Merge.SUM and declared["latency"][0] is measures.Merge.HISTOGRAM


def test_each_rule_merges_the_way_it_says():
    assert Merge.SUM.combine([1, 2, 3]) == 6
    assert Merge.MAX.combine([0.5, 2.5, 1.0]) == 2.5 and Merge.MAX.combine([]) == 0.0
    assert Merge.ANY.combine([False, True]) is True
    assert Merge.COUNTS.combine([{"timeout": 1}, {"timeout": 2, "UNAVAILABLE": 1}]) == {"timeout": 3, "UNAVAILABLE": 1}
    first = Merge.FIRST.combine([{"timeout": {"message": "a"}}, {"timeout": {"message": "b"}, "x": {"message": "c"}}])
    assert first == {"timeout": {"message": "a"}, "x": {"message": "c"}}
    assert Merge.CONCAT.combine([[1, 2], [], [3]]) == [1, 2, 3]
    assert Merge.OWN.combine([0, 1]) == -1  # the merged result is no shard
    assert Merge.TRACE.combine([None, None]) is None
    one, two = latency.new_histogram(), latency.new_histogram()
    one.record_value(100)
    two.record_value(300)
    merged = latency.decode(Merge.HISTOGRAM.combine([latency.encode(one), latency.encode(two)]))
    assert merged.get_total_count() == 2 and merged.get_max_value() >= 300  # merged, never averaged


def test_merging_shards_sums_counts_and_finds_duplicates_between_them(child_server):
    """ShardResult.merge is what a run reports over its shards; overlaps across shards are duplicates."""
    config = RunConfig(strategy="locked", concurrency=2, requests=50, warmup_s=0)
    a = run_shard(ShardConfig(config, 0, child_server.address))
    b = run_shard(ShardConfig(config, 1, child_server.address))
    total = ShardResult.merge([a, b])
    assert (total.requests_ok, total.checked) == (a.requests_ok + b.requests_ok, a.checked + b.checked)
    assert total.completions == a.completions + b.completions
    assert latency.decode(total.latency).get_total_count() == (
        latency.decode(a.latency).get_total_count() + latency.decode(b.latency).get_total_count()
    )
    assert total.ranges.duplicates == 0  # one server: nothing handed out twice
    assert ShardResult.merge([a, a]).ranges.duplicates == a.checked  # the same ranges twice: every one a duplicate
