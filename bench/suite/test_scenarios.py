"""Scenario benchmarks: strategy x API x concurrency, a fixed amount of work per round.

Each round is a real shard run (``run_shard``) of exactly ``Scale.requests``
requests against the session's server, so the round time pytest-benchmark
reports is the time the strategy needs for that work, and ``pytest-benchmark
compare`` shows a regression. The client stays off the server's CPU, as in the
micro-benchmarks; a round still keeps every core busy, so its time moves with
whatever else runs on the machine (why the README's gate leaves these out). One
untimed run warms the server and the interpreter first; before each round the
garbage left by the previous one is collected, so every round starts alike
(the round itself runs with the collector on, as the harness does).
``extra_info`` carries the harness's own figures (throughput, tail latency,
violations by ``checker``'s one definition, errors) of the last round.
"""

from __future__ import annotations

import gc

import pytest

from tsobench.bench.measure import latency
from tsobench.bench.measure.checker import Correctness
from tsobench.bench.measure.shard import ShardResult, run_shard
from tsobench.bench.model.config import RunConfig, ShardConfig
from tsobench.bench.suite.conftest import benchmarked, scale
from tsobench.server import ChildServer

SCALE = scale()


def violations(result: ShardResult) -> int:
    """The checker's own count (one process: the shard's ranges are all there is)."""
    return Correctness(
        duplicates=result.ranges.duplicates, non_monotonic=result.non_monotonic, mismatched=result.mismatched
    ).violations


def extra_info(result: ShardResult) -> dict[str, object]:
    measured = result.measured_s or float("nan")
    return {
        "throughput_rps": result.requests_ok / measured,
        "throughput_tps": result.timestamps / measured,
        "latency_us": latency.summarize(latency.decode(result.latency)),
        "violations": violations(result),
        "errors": result.requests_failed,
        "error_kinds": result.errors,
        "client_cpu_s": result.cpu_s,
        "requests": result.requests_ok + result.requests_failed,
    }


@pytest.mark.parametrize("concurrency", SCALE.concurrency)
@pytest.mark.parametrize(("strategy", "api"), benchmarked(SCALE))
def test_scenario(benchmark, pinned_server: ChildServer, strategy: str, api: str, concurrency: int) -> None:
    benchmark.group = "scenario"

    def shard(requests: int) -> ShardConfig:
        run = RunConfig(strategy=strategy, api=api, concurrency=concurrency, requests=requests, warmup_s=0)
        return ShardConfig(run, 0, pinned_server.address)

    def setup() -> tuple[tuple[ShardConfig], dict[str, object]]:
        gc.collect()  # the previous round's garbage is not this round's work
        return (shard(SCALE.requests),), {}

    run_shard(shard(SCALE.warmup_requests))  # server and interpreter warm, outside the timing
    result = benchmark.pedantic(run_shard, setup=setup, rounds=SCALE.rounds)
    benchmark.extra_info.update(extra_info(result))
    assert result.requests_ok + result.requests_failed == SCALE.requests  # the fixed amount of work
    assert result.requests_ok > 0
    assert benchmark.extra_info["violations"] == 0
