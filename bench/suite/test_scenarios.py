"""Scenario benchmarks: strategy x API x concurrency, one bounded run per round.

Each round is a real shard run (``run_shard``) against the session's server;
``extra_info`` carries the harness's own figures, so that
``--benchmark-group-by=param:strategy`` (or ``param:concurrency``) tables and
``pytest-benchmark compare`` show throughput and tail latency, not only wall time.
"""

from __future__ import annotations

import pytest

from tsobench.bench import latency
from tsobench.bench.config import RunConfig, ShardConfig
from tsobench.bench.shard import ShardResult, run_shard

from .conftest import scale

SCALE = scale()


def extra_info(result: ShardResult) -> dict[str, object]:
    measured = result.measured_s or float("nan")
    return {
        "throughput_rps": result.requests_ok / measured,
        "throughput_tps": result.timestamps / measured,
        "latency_us": latency.summarize(latency.decode(result.latency)),
        "violations": result.ranges.duplicates + result.non_monotonic + result.mismatched,
        "errors": result.requests_failed,
        "error_kinds": result.errors,
        "client_cpu_s": result.cpu_s,
    }


@pytest.mark.parametrize("concurrency", SCALE.concurrency)
@pytest.mark.parametrize("api", SCALE.apis)
@pytest.mark.parametrize("strategy", SCALE.strategies)
def test_scenario(benchmark, tso_server, strategy: str, api: str, concurrency: int) -> None:
    benchmark.group = "scenario"
    config = RunConfig(
        strategy=strategy, api=api, concurrency=concurrency, duration_s=SCALE.duration_s, warmup_s=SCALE.warmup_s
    )
    result = benchmark.pedantic(
        run_shard, args=(ShardConfig(config, 0, tso_server.address),), rounds=SCALE.rounds, iterations=1
    )
    benchmark.extra_info.update(extra_info(result))
    assert result.requests_ok > 0
    assert benchmark.extra_info["violations"] == 0
