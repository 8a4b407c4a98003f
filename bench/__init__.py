"""The harness: load, latency, correctness, results, sweeps, reports, planning.

The public Python API (the command line uses the same):

- ``RunConfig`` (with ``ServerKnobs``): what a run is asked to do; a bad value
  raises ``ConfigError`` with the message the command line would print.
- ``run(config) -> RunResult``: a whole run (embedded server unless
  ``config.target``, spawned client processes, merged and checked results).
- ``run_shard(ShardConfig(config, index, target)) -> ShardResult``: one client
  process's share, in this process (what a distributed engine would run).
- ``read_results(path) -> RunResult`` and ``write_results(result, path)``: the
  results file; ``judge(result_dict)`` says whether a run was clean.

Names load on first use, so ``import tsobench.bench`` stays cheap (no grpc, numpy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tsobench.lazy import lazy_names

if TYPE_CHECKING:
    from tsobench.bench.measure.measures import ShardResult
    from tsobench.bench.measure.shard import run_shard
    from tsobench.bench.model.config import ConfigError, RunConfig, ServerKnobs, ShardConfig
    from tsobench.bench.model.results import RunResult
    from tsobench.bench.model.results import read as read_results
    from tsobench.bench.model.results import write as write_results
    from tsobench.bench.model.verdict import Judgement, judge
    from tsobench.bench.runs.runner import RunError, run

__getattr__ = lazy_names(
    __name__,
    {
        "ConfigError": "model.config",
        "RunConfig": "model.config",
        "ServerKnobs": "model.config",
        "ShardConfig": "model.config",
        "RunResult": "model.results",
        "read_results": "model.results:read",
        "write_results": "model.results:write",
        "RunError": "runs.runner",
        "run": "runs.runner",
        "ShardResult": "measure.measures",
        "run_shard": "measure.shard",
        "Judgement": "model.verdict",
        "judge": "model.verdict",
    },
)
__all__ = [
    "ConfigError",
    "Judgement",
    "RunConfig",
    "RunError",
    "RunResult",
    "ServerKnobs",
    "ShardConfig",
    "ShardResult",
    "judge",
    "read_results",
    "run",
    "run_shard",
    "write_results",
]
