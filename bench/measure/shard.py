"""One client process's run: ``run_shard(ShardConfig) -> ShardResult``.

A plain function from a config to a result: the spawned shard processes and the
Dask tasks run one each, tests and the benchmark suite call it directly. Its
steps: open the strategy's client for the API (a target that cannot be reached
fails here, before any load), wait at the start barrier, run the callers while a
background fold turns what they record into figures, then fold the rest and
close. ``Hooks`` connect it to whoever runs it: the barrier, a stop signal, progress.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from tsobench import strategies
from tsobench.bench.measure.clock import Clock, now_us
from tsobench.bench.measure.drivers import Caller, Crashes, driver_for
from tsobench.bench.measure.fold import Fold, FoldTicker
from tsobench.bench.measure.measures import ShardResult
from tsobench.bench.measure.observed import Observer
from tsobench.bench.model.config import ShardConfig
from tsobench.strategies.registry import is_builtin
from tsobench.strategies.stream import streams_opened


def _nothing(*args: object) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """How a shard talks to whoever runs it; each may be left out."""

    ready: Callable[[], float | None] = (
        _nothing  # blocks at the barrier; returns the shared start instant (time.time())
    )
    started: Callable[[Clock], None] = _nothing  # the load's clock, e.g. for a stop signal to interrupt
    progress: Callable[[int], None] | None = None  # requests finished so far, a few times a second
    # (index, answered, failed, p50 µs, p99 µs) of each interval once over
    interval: Callable[[int, int, int, int, int], None] | None = None
    observed: Callable[[list[int]], None] | None = None  # run --metrics-port: the cumulative vector after each fold


MMAP_AT_BYTES = 1 << 20  # glibc: arrays this large are mapped, and unmapped when freed
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _steady_memory() -> None:
    """A fold's large temporary arrays go back to the kernel when freed. glibc otherwise raises its
    mmap threshold after the first such free and serves the next ones from a heap that fragments:
    a shard's RSS crept up by about a quarter over 10 minutes of the null strategy."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_AT_BYTES)


def run_shard(shard: ShardConfig, hooks: Hooks = Hooks()) -> ShardResult:
    _steady_memory()
    streams_before = streams_opened()
    strategy = strategies.get(shard.run.strategy)
    options = shard.run.client_options(shard.target)
    shard = dataclasses.replace(shard, overrun_s=strategy.overrun_s(options))  # its timing, as it states it
    driver = driver_for(shard, strategy, options)
    try:
        driver.open()
        clock = Clock.anchored(shard.run, hooks.ready())
        hooks.started(clock)
        plugin = not is_builtin(strategy)
        callers = [Caller(shard, i, plugin) for i in range(shard.run.concurrency)]
        fold = Fold(shard, clock, [c.record for c in callers], driver.counters)
        if hooks.observed is not None:
            fold.observer = Observer(
                shard.run.count, fold.records, driver.counters, hooks.observed, rpcs=not strategy.baseline
            )
        cpu_start = time.process_time()
        folder = FoldTicker(fold, now_us, hooks.progress, hooks.interval)
        with Crashes() as crashes:
            closed_at = driver.run(callers, clock, crashes, folder)
        folder.check()
        return fold.finish(
            closed_at,
            now_us(),
            cpu_s=time.process_time() - cpu_start,
            streams_opened=streams_opened() - streams_before,
            crashes=crashes.counts,
            samples=crashes.samples,
        )
    finally:
        driver.close()
