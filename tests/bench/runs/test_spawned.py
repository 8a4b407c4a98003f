"""Shards as spawned processes: ready, go, results through a pipe; failures named; nothing left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import pytest

from tsobench.bench.model.config import RunConfig
from tsobench.bench.runs.backend import RunError
from tsobench.bench.runs.spawned import SpawnedShards


@contextlib.contextmanager
def loading(config: RunConfig, target: str) -> Iterator[SpawnedShards]:
    """Shards started, ready and released; closed (every process gone) at the end."""
    shards = SpawnedShards(config, target)
    try:
        shards.wait_ready()
        shards.go(time.time())
        yield shards
    finally:
        shards.close()


def collect(shards: SpawnedShards, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s  # a bound for a hang only: the load is a quota, not a duration
    while not shards.poll():
        assert time.monotonic() < deadline, "the shards never answered"
        time.sleep(0.05)


def test_each_process_runs_its_share_and_sends_its_result(child_server):
    config = RunConfig(strategy="locked", concurrency=2, processes=2, requests=60, warmup_s=0)
    shards = SpawnedShards(config, child_server.address)
    try:
        shards.wait_ready()
        assert shards.last_interval() is None  # nothing reported before the start
        shards.go(time.time())
        collect(shards)
        assert shards.failures == {}
        assert sorted(shards.results) == [0, 1]
        assert sum(r.requests_ok for r in shards.results.values()) == 60
        assert 0 <= shards.done() <= 60  # progress: what the shards last reported, never more than was sent
        assert {p["worker"] for p in shards.placement.values()} == {None}
        env = shards.environment()
        assert env["scheduler"] is None and env["warnings"] == [] and len(env["hosts"]) == 1
    finally:
        shards.close()
    assert not any(p.is_alive() for p in shards.procs)


def test_a_shard_that_cannot_reach_its_target_fails_before_the_load(unused_address):
    shards = SpawnedShards(RunConfig(strategy="locked", requests=10, timeout_s=1), unused_address)
    try:
        with pytest.raises(RunError, match="client process 0 could not start"):
            shards.wait_ready()
    finally:
        shards.close()


def test_a_shard_killed_during_the_load_is_a_named_failure_not_a_hang(child_server):
    with loading(
        RunConfig(strategy="locked", concurrency=1, duration_s=30, warmup_s=0), child_server.address
    ) as shards:
        os.kill(shards.procs[0].pid, signal.SIGKILL)
        collect(shards)
    assert shards.results == {}
    why = shards.failures[0]  # the pipe closed, or the process was seen dead first: either names it
    assert why in ("client process closed its pipe without a result", "client process exited with -9 and no result")


def test_a_stop_ends_the_load_and_the_shard_still_reports_what_it_measured(child_server):
    with loading(
        RunConfig(strategy="locked", concurrency=1, duration_s=30, warmup_s=0), child_server.address
    ) as shards:
        time.sleep(0.3)
        shards.stop()
        collect(shards)
    (result,) = shards.results.values()
    assert result.interrupted and result.requests_ok > 0


def test_shards_ignore_the_stop_signals_their_parent_handles(child_server):
    config = RunConfig(strategy="locked", concurrency=1, requests=5, warmup_s=0)
    shards = SpawnedShards(config, child_server.address)
    try:
        shards.wait_ready()
        os.kill(shards.procs[0].pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches the whole group
        os.kill(shards.procs[0].pid, signal.SIGTERM)
        shards.go(time.time())
        collect(shards)
        assert shards.failures == {} and shards.results[0].requests_ok == 5
    finally:
        shards.close()
