"""Shards as Dask tasks (``--scheduler``): one per worker, on an existing
cluster or on a LocalCluster started for the run.

Each task is the plain shard function run in the worker's thread (its asyncio
loop too, never the worker's own loop). The start barrier, the progress counts
and the stop signal go through the scheduler's coordination primitives, named
per run: shards put "ready" into a Queue, wait on a "go" Event, then read the
shared start instant from a Variable; a "stop" Event interrupts their clocks.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask
import distributed

from tsobench.bench.measure.clock import Clock
from tsobench.bench.measure.errors import one_line
from tsobench.bench.measure.intervals import LiveFigures
from tsobench.bench.measure.measures import ShardResult
from tsobench.bench.measure.shard import Hooks, run_shard
from tsobench.bench.model.config import LOCAL_SCHEDULER, RunConfig, ShardConfig
from tsobench.bench.runs.backend import READY_TIMEOUT_S, RunError
from tsobench.bench.runs.environment import host_facts, hosts_section

SHARD_RESOURCE = "shard"  # workers started with --resources shard=1; each task asks for one
CONNECT_TIMEOUT_S = 10.0  # to reach the scheduler
LOCAL_START_TIMEOUT_S = 60.0  # for a LocalCluster's workers to register
CLOSE_TIMEOUT_S = 10.0
MEMBERSHIP_CHECK_S = 1.0  # how often the parent looks for lost workers


@dataclass(frozen=True)
class Names:
    """The run's coordination objects on the scheduler (unique per run)."""

    run: str

    @property
    def ready(self) -> str:
        return f"{self.run}-ready"

    @property
    def go(self) -> str:
        return f"{self.run}-go"

    @property
    def start(self) -> str:
        return f"{self.run}-start"

    @property
    def stop(self) -> str:
        return f"{self.run}-stop"

    @property
    def progress(self) -> str:
        return f"{self.run}-progress"


def shard_task(shard: ShardConfig, names: Names) -> ShardResult:
    """One shard on a Dask worker: ``run_shard`` plus the barrier, progress and stop."""
    client = distributed.get_client()
    go = distributed.Event(names.go, client=client)
    stop = distributed.Event(names.stop, client=client)
    if go.is_set():  # Dask reruns a task whose worker died: too late to join this run
        raise RuntimeError("its worker was lost after the start; a rerun cannot join the measurement")
    progress = distributed.Queue(names.progress, client=client)
    finished = threading.Event()

    def on_ready() -> float:
        where = {"host": socket.gethostname(), "worker": distributed.get_worker().address}
        distributed.Queue(names.ready, client=client).put({"index": shard.index, **where, **host_facts()})
        if not go.wait(2 * READY_TIMEOUT_S):
            raise RuntimeError("no start signal from the parent")
        if stop.is_set():
            raise RuntimeError("the run was called off before the start")
        start_at = float(distributed.Variable(names.start, client=client).get(timeout=READY_TIMEOUT_S))
        time.sleep(max(0.0, start_at - time.time()))
        return start_at

    def publish(done: int) -> None:
        with contextlib.suppress(OSError, TimeoutError):  # progress is best effort
            progress.put([shard.index, done])

    def watch_stop(clock: Clock) -> None:
        def wait() -> None:
            with contextlib.suppress(OSError, TimeoutError):
                while not finished.is_set():
                    if stop.wait(0.5):
                        clock.interrupt()
                        return

        threading.Thread(target=wait, daemon=True, name="stop-watch").start()

    try:
        return run_shard(shard, Hooks(ready=on_ready, started=watch_stop, progress=publish))
    finally:
        finished.set()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Processes started meanwhile ignore SIGINT (the disposition survives exec),
    so a Ctrl-C in this terminal stops the load instead of killing local workers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class DaskShards:
    """The run's shards as Dask futures (a ShardBackend)."""

    def __init__(self, config: RunConfig, target: str) -> None:
        self.processes = config.processes
        self.scheduler = config.scheduler
        self.names = Names(f"tsobench-{uuid.uuid4().hex}")
        self.results: dict[int, ShardResult] = {}
        self.failures: dict[int, str] = {}
        self.placement: dict[int, dict[str, str | None]] = {}
        self._facts: dict[str, dict[str, object]] = {}
        self._progress: dict[int, int] = {}
        self._cluster: distributed.LocalCluster | None = None
        self._client: distributed.Client | None = None
        self._futures: list[distributed.Future] = []
        self._next_membership_check = 0.0
        try:
            self._connect(config)
            self._check_capacity()
            self._futures = [
                self._connected.submit(
                    shard_task,
                    ShardConfig(config, i, target),
                    self.names,
                    key=f"tsobench-shard-{i}-{self.names.run}",
                    resources={SHARD_RESOURCE: 1},
                    pure=False,
                )
                for i in range(self.processes)
            ]
        except BaseException:
            self.close()
            raise

    def _connect(self, config: RunConfig) -> None:
        address: Any = config.scheduler
        if config.scheduler == LOCAL_SCHEDULER:
            try:
                # The workers' statistical profiler samples the shard's thread every 10 ms: off, it costs throughput.
                with _sigint_ignored(), dask.config.set({"distributed.worker.profile.enabled": False}):
                    self._cluster = distributed.LocalCluster(
                        n_workers=self.processes,
                        threads_per_worker=1,
                        processes=True,
                        resources={SHARD_RESOURCE: 1},
                        host="127.0.0.1",
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                    )
            except Exception as exc:
                raise RunError(f"could not start a local Dask cluster: {one_line(exc)}") from exc
            address = self._cluster
        try:
            self._client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise RunError(f"cannot reach the Dask scheduler at {config.scheduler}: {one_line(exc)}") from exc
        if self._cluster is not None:
            self._client.wait_for_workers(self.processes, timeout=LOCAL_START_TIMEOUT_S)
        self.scheduler = self._client.scheduler.address
        self._ready = distributed.Queue(self.names.ready, client=self._client)
        self._progress_queue = distributed.Queue(self.names.progress, client=self._client)
        self._go = distributed.Event(self.names.go, client=self._client)
        self._stop = distributed.Event(self.names.stop, client=self._client)
        self._start = distributed.Variable(self.names.start, client=self._client)

    @property
    def _connected(self) -> distributed.Client:
        assert self._client is not None, "used before _connect"
        return self._client

    def _workers(self) -> dict[str, dict[str, Any]]:
        return self._connected.scheduler_info(n_workers=-1)["workers"]

    def _check_capacity(self) -> None:
        """One shard per worker thread holding the resource; refuse before any load."""
        workers = self._workers()
        slots = sum(min(int(w.get("resources", {}).get(SHARD_RESOURCE, 0)), w["nthreads"]) for w in workers.values())
        if slots < self.processes:
            raise RunError(
                f"--processes {self.processes} needs {self.processes} Dask workers with the resource "
                f"{SHARD_RESOURCE}=1, but {self.scheduler} has {slots} (of {len(workers)} workers); start more with "
                f"`dask worker {self.scheduler} --nthreads 1 --resources {SHARD_RESOURCE}=1`"
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            # A non-blocking read: a get that times out is logged as an error by the scheduler.
            for ready in self._ready.get(batch=True):
                self.placement[ready["index"]] = {"host": ready["host"], "worker": ready["worker"]}
                self._facts[ready["host"]] = {k: ready[k] for k in ready if k not in ("index", "host", "worker")}
            if len(self.placement) == self.processes:
                return
            for i, future in enumerate(self._futures):
                if future.status in ("error", "cancelled", "lost"):
                    raise RunError(f"shard {i} could not start: {self._why(future)}")
            if time.monotonic() > deadline:
                missing = sorted(set(range(self.processes)) - set(self.placement))
                raise RunError(f"shards {missing} did not start within {READY_TIMEOUT_S:.0f}s (workers busy?)")
            time.sleep(0.05)

    def go(self, start_at: float) -> None:
        self._start.set(start_at)
        self._go.set()

    def stop(self) -> None:
        self._stop.set()

    def done(self) -> int:
        with contextlib.suppress(OSError, TimeoutError):
            for index, count in self._progress_queue.get(batch=True):
                self._progress[index] = max(count, self._progress.get(index, 0))
        return sum(self._progress.values())

    def last_interval(self) -> LiveFigures | None:
        """Not published through Dask: the progress line shows counts only."""
        return None

    def poll(self) -> bool:
        for i, future in enumerate(self._futures):
            if i in self.results or i in self.failures:
                continue
            if future.status == "finished":
                try:
                    self.results[i] = future.result()
                except Exception as exc:  # the result could not reach us
                    self.failures[i] = one_line(exc)
            elif future.status in ("error", "cancelled", "lost"):
                self.failures[i] = self._why(future)
        self._check_membership()
        return len(self.results) + len(self.failures) == self.processes

    def _check_membership(self) -> None:
        """A shard whose worker left the cluster has failed (Dask may rerun the
        task elsewhere, but a rerun refuses to join a started run)."""
        if time.monotonic() < self._next_membership_check:
            return
        self._next_membership_check = time.monotonic() + MEMBERSHIP_CHECK_S
        try:
            alive = self._workers()
        except (OSError, TimeoutError):
            return
        for i, where in self.placement.items():
            if i not in self.results and i not in self.failures and where["worker"] not in alive:
                self.failures[i] = f"its worker {where['worker']} on {where['host']} was lost mid-run"

    def _why(self, future: distributed.Future) -> str:
        if future.status != "error":
            return f"its task was {future.status}"
        try:
            return one_line(future.exception(timeout=CLOSE_TIMEOUT_S))
        except Exception as exc:
            return one_line(exc)

    def kill_stragglers(self) -> None:
        hung = [i for i in range(self.processes) if i not in self.results and i not in self.failures]
        for i in hung:
            self.failures[i] = "killed at the hard time limit (hung)"
        # A thread stuck in a dead channel cannot be cancelled: restart its worker process.
        workers = [w for i in hung if (w := self.placement.get(i, {}).get("worker"))]
        if workers and self._client is not None:
            with contextlib.suppress(Exception):
                self._client.restart_workers(workers, timeout=CLOSE_TIMEOUT_S, raise_for_error=False)

    def close(self) -> None:
        if self._client is not None:
            # Shards still at the barrier or running end now, even on a cluster that stays up.
            client, futures = self._client, self._futures
            for release in (self._stop.set, self._go.set, self._start.delete, lambda: client.cancel(futures)):
                with contextlib.suppress(Exception):
                    release()
            self._client.close(timeout=CLOSE_TIMEOUT_S)
            self._client = None
        if self._cluster is not None:
            self._cluster.close(timeout=CLOSE_TIMEOUT_S)
            self._cluster = None

    def environment(self) -> dict[str, Any]:
        return hosts_section(self.scheduler, self._facts)
