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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ConfigError, RunConfig, ServerKnobs, ShardConfig
    from .results import RunResult
    from .results import read as read_results
    from .results import write as write_results
    from .runner import RunError, run
    from .shard import ShardResult, run_shard
    from .verdict import Judgement, judge

_WHERE = {
    "ConfigError": ("config", "ConfigError"),
    "RunConfig": ("config", "RunConfig"),
    "ServerKnobs": ("config", "ServerKnobs"),
    "ShardConfig": ("config", "ShardConfig"),
    "RunResult": ("results", "RunResult"),
    "read_results": ("results", "read"),
    "write_results": ("results", "write"),
    "RunError": ("runner", "RunError"),
    "run": ("runner", "run"),
    "ShardResult": ("shard", "ShardResult"),
    "run_shard": ("shard", "run_shard"),
    "Judgement": ("verdict", "Judgement"),
    "judge": ("verdict", "judge"),
}

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


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _WHERE[name]
    return getattr(importlib.import_module(f".{module}", __name__), attr)
