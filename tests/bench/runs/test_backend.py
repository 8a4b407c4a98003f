"""What the runner needs from its shards: both backends answer the same protocol."""

from __future__ import annotations

import inspect

import pytest

from tsobench.bench.runs.backend import RunError, ShardBackend
from tsobench.bench.runs.spawned import SpawnedShards


def protocol_methods() -> set[str]:
    return {name for name, value in vars(ShardBackend).items() if inspect.isfunction(value) and name[0] != "_"}


@pytest.mark.parametrize("backend", ["spawned", "dask"])
def test_each_backend_has_every_method_of_the_protocol(backend):
    if backend == "dask":
        pytest.importorskip("distributed")
        from tsobench.bench.runs.dask_shards import DaskShards as cls
    else:
        cls = SpawnedShards
    assert protocol_methods() == {
        "wait_ready",
        "go",
        "poll",
        "done",
        "last_interval",
        "stop",
        "kill_stragglers",
        "close",
        "environment",
    }
    for name in protocol_methods():
        ours, theirs = inspect.signature(getattr(ShardBackend, name)), inspect.signature(getattr(cls, name))
        assert list(ours.parameters) == list(theirs.parameters), (cls.__name__, name)


def test_a_run_error_is_a_runtime_error_that_says_why():
    error = RunError("client process 0 could not start: UNAVAILABLE")
    assert isinstance(error, RuntimeError) and str(error).endswith("UNAVAILABLE")
