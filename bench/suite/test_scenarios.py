"""Scenario benchmarks: strategy x API x concurrency, a fixed amount of work per round.

Each round is a real shard run (``run_shard``) of exactly ``Scale.requests``
requests against the session's server, so the round time pytest-benchmark
reports is the time the strategy needs for that work, and ``pytest-benchmark
compare`` / ``--benchmark-compare-fail=mean:10%`` can see a regression. The
warm-up is a separate shard run in the round's ``setup``, outside the timing.
``extra_info`` carries the harness's own figures (throughput, tail latency,
violations by ``checker``'s one definition, errors) of the last round.
"""

from __future__ import annotations

import pytest

from tsobench.bench import latency
from tsobench.bench.checker import Correctness
from tsobench.bench.config import RunConfig, ShardConfig
from tsobench.bench.shard import ShardResult, run_shard

from .conftest import scale

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
@pytest.mark.parametrize("api", SCALE.apis)
@pytest.mark.parametrize("strategy", SCALE.strategies)
def test_scenario(benchmark, tso_server, strategy: str, api: str, concurrency: int) -> None:
    benchmark.group = "scenario"
    work = ShardConfig(
        RunConfig(strategy=strategy, api=api, concurrency=concurrency, requests=SCALE.requests, warmup_s=0),
        0,
        tso_server.address,
    )
    warm = ShardConfig(
        RunConfig(strategy=strategy, api=api, concurrency=concurrency, requests=SCALE.warmup_requests, warmup_s=0),
        0,
        tso_server.address,
    )

    def setup() -> tuple[tuple[ShardConfig], dict]:
        run_shard(warm)  # server and interpreter warm, outside the timed part
        return (work,), {}

    result = benchmark.pedantic(run_shard, setup=setup, rounds=SCALE.rounds, iterations=1)
    benchmark.extra_info.update(extra_info(result))
    assert result.requests_ok + result.requests_failed == SCALE.requests  # the fixed amount of work
    assert result.requests_ok > 0
    assert benchmark.extra_info["violations"] == 0
