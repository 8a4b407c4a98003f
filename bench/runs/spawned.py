"""Shards as spawned processes on this machine (a ``ShardBackend``; ``dask_shards`` is the other).

Each shard is ``run_shard`` in a process started with the ``spawn`` method, so
its gRPC channels are created after it starts, never inherited. The parent talks
to it through a pipe (ready, go, the result) and shared memory (progress, the
last interval, the stop flag): setting a flag never blocks, so stopping shards
can never wait on one that already died.

Signals are the parent's business: a shard ignores SIGINT, SIGTERM and SIGHUP,
which `timeout`, CI runners and terminals send to the whole process group, and
stops when the parent raises its stop flag; it exits at once if the parent
dies, whatever killed it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from typing import Any

from tsobench.bench.measure.clock import Clock
from tsobench.bench.measure.errors import one_line
from tsobench.bench.measure.intervals import LiveFigures
from tsobench.bench.measure.measures import ShardResult
from tsobench.bench.measure.observed import SIZE as OBSERVED_SIZE
from tsobench.bench.measure.shard import Hooks, run_shard
from tsobench.bench.model.config import RunConfig, ShardConfig
from tsobench.bench.runs.backend import READY_TIMEOUT_S, RunError
from tsobench.bench.runs.environment import host_facts, hosts_section

NO_INTERVAL = -(1 << 62)
STOP_POLL_S = 0.05
IGNORED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SpawnedShards:
    """The spawned shard processes and their pipes."""

    def __init__(self, config: RunConfig, target: str) -> None:
        ctx = mp.get_context("spawn")
        self._stop = ctx.Value("b", 0, lock=False)
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        self.progress: list[Any] = []
        self.intervals: list[Any] = []  # per shard: LiveFigures of its last whole interval
        self.observed: list[Any] = []  # per shard, with --metrics-port: [sequence, *vector] (observed.SIZE)
        self._last_observed: list[list[int]] = []
        for i in range(config.processes):
            parent, child = ctx.Pipe()
            counter = ctx.Value("q", 0, lock=False)
            interval = ctx.Array("q", [NO_INTERVAL, 0, 0, 0, 0], lock=False)
            observed = ctx.Array("q", OBSERVED_SIZE + 1, lock=False) if config.client_metrics else None
            self.observed.append(observed)
            self._last_observed.append([0] * OBSERVED_SIZE)
            proc = ctx.Process(
                target=shard_main,
                args=(ShardConfig(config, i, target), child, counter, self._stop, interval, observed),
                name=f"tsobench-shard-{i}",
                daemon=True,
            )
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
            self.progress.append(counter)
            self.intervals.append(interval)
        self.results: dict[int, ShardResult] = {}
        self.failures: dict[int, str] = {}
        self.placement: dict[int, dict[str, str | None]] = {
            i: {"host": socket.gethostname(), "worker": None} for i in range(config.processes)
        }

    def done(self) -> int:
        return sum(c.value for c in self.progress)

    def last_interval(self) -> LiveFigures | None:
        """(index, answered, failed, p50 µs, p99 µs) of the latest interval every shard has reported
        (the percentiles: the shards' largest)."""
        reported = [tuple(a[:]) for a in self.intervals]
        index = min(r[0] for r in reported)
        if index == NO_INTERVAL:
            return None
        latest = [r for r in reported if r[0] == index]
        return (
            index,
            sum(r[1] for r in latest),
            sum(r[2] for r in latest),
            max(r[3] for r in latest),
            max(r[4] for r in latest),
        )

    def client_metrics(self) -> list[int]:
        """Every shard's published vector, summed (each as last read whole: a counter never goes back)."""
        for i, shared in enumerate(self.observed):
            if shared is not None and (read := read_published(shared)) is not None:
                self._last_observed[i] = read
        return [sum(column) for column in zip(*self._last_observed, strict=True)] if self._last_observed else []

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        for i, conn in enumerate(self.conns):
            while not conn.poll(0.05):
                if not self.procs[i].is_alive() or time.monotonic() > deadline:
                    raise RunError(f"client process {i} did not start")
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                kind, payload = "error", f"exited with {self.procs[i].exitcode}"
            if kind != "ready":
                raise RunError(f"client process {i} could not start: {payload}")

    def go(self, start_at: float) -> None:
        for i, conn in enumerate(self.conns):
            try:
                conn.send(("go", start_at))
            except OSError:  # it died since it said ready: poll() records why
                self.failures.setdefault(i, "client process died before the start")

    def stop(self) -> None:
        self._stop.value = 1

    def poll(self) -> bool:
        """Collect whatever has arrived; True when every shard has answered."""
        for i, conn in enumerate(self.conns):
            if i in self.results or i in self.failures:
                continue
            try:
                if conn.poll():
                    kind, payload = conn.recv()
                    if kind == "result":
                        self.results[i] = payload
                    else:
                        self.failures[i] = payload
                elif not self.procs[i].is_alive():
                    self.failures[i] = f"client process exited with {self.procs[i].exitcode} and no result"
            except (EOFError, OSError):
                self.failures[i] = "client process closed its pipe without a result"
        return len(self.results) + len(self.failures) == len(self.conns)

    def kill_stragglers(self) -> None:
        for i, proc in enumerate(self.procs):
            if i not in self.results and i not in self.failures:
                self.failures[i] = "killed at the hard time limit (hung)"
            if proc.is_alive():
                proc.kill()
            proc.join(5)

    def close(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
        for conn in self.conns:
            conn.close()

    def environment(self) -> dict[str, Any]:
        return hosts_section(None, {socket.gethostname(): host_facts()})


def _exit_with_parent() -> None:
    """Whatever ends the parent (kill -9 too), a shard has no one left to report to: go too."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def publish(shared: SynchronizedArray, vector: list[int]) -> None:
    """A sequence lock: odd while writing, so the parent never reads half a vector."""
    sequence = shared[0]
    shared[0] = sequence + 1
    shared[1:] = vector
    shared[0] = sequence + 2


def read_published(shared: SynchronizedArray, tries: int = 100) -> list[int] | None:
    for _ in range(tries):
        before = shared[0]
        if before % 2 == 0:
            vector = shared[1:]
            if shared[0] == before:
                return list(vector)
        time.sleep(0.0001)
    return None


def shard_main(
    shard: ShardConfig,
    conn: Connection,
    progress: Synchronized,
    stop: Synchronized,
    interval: SynchronizedArray,
    observed: SynchronizedArray | None = None,
) -> None:
    """The body of one shard process."""
    for sig in IGNORED:  # the parent decides what a signal means
        signal.signal(sig, signal.SIG_IGN)
    _exit_with_parent()

    def ready() -> float:
        conn.send(("ready", None))
        kind, start_at = conn.recv()
        if kind != "go":
            os._exit(0)
        time.sleep(max(0.0, start_at - time.time()))
        return float(start_at)

    def watch_stop(clock: Clock) -> None:
        def poll() -> None:
            while not stop.value:
                time.sleep(STOP_POLL_S)
            clock.interrupt()

        threading.Thread(target=poll, daemon=True, name="stop-watch").start()

    def set_progress(done: int) -> None:
        progress.value = done

    def set_interval(index: int, answered: int, failed: int, p50_us: int, p99_us: int) -> None:
        interval[:] = [index, answered, failed, p50_us, p99_us]

    try:
        observe = (lambda vector: publish(observed, vector)) if observed is not None else None
        result = run_shard(shard, Hooks(ready, watch_stop, set_progress, set_interval, observe))
        conn.send(("result", result))
    except BaseException as exc:  # report, never hang the parent
        conn.send(("error", one_line(exc)))
    finally:
        conn.close()
        # Hung gRPC threads (the unsafe control can leave some) must not keep
        # this process alive once its result is out.
        os._exit(0)
