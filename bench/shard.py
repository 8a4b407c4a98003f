"""One client process's run: ``run_shard(ShardConfig) -> ShardResult``.

A plain function from a config to a result: the runner runs one per process,
tests and the pytest-benchmark suite call it directly. Callers are threads
(sync grpcio) or asyncio tasks (grpc.aio) sharing one strategy client.

Timing: closed loop, a caller sends as soon as its previous reply is back;
open loop, each caller follows its own seeded Poisson schedule, so the sum over
callers is Poisson at the total rate, and latency counts from each request's
intended start (coordinated-omission safe) as well as from its actual send.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from tsobench import strategies
from tsobench.strategies.stream import streams_opened

from . import latency
from .checker import CallerCheck, Ranges, merge_ranges, out_of_real_time_order
from .config import ShardConfig
from .errors import error_kind

GRACE_S = 2.0  # after the deadline, how long a shard waits for stuck callers


def now_us() -> int:
    return time.perf_counter_ns() // 1000


@dataclass(frozen=True)
class ShardResult:
    index: int
    requests_ok: int
    requests_failed: int
    timestamps: int
    measured_s: float
    cpu_s: float
    errors: dict[str, int]
    hung: int
    streams_opened: int
    latency: str
    latency_uncorrected: str
    checked: int
    non_monotonic: int  # out of real-time order within this process
    non_monotonic_per_caller: int
    mismatched: int
    ranges: Ranges = field(repr=False)
    interrupted: bool = False


class Caller:
    """One caller's loop state; everything it touches in the hot path is its own."""

    def __init__(self, shard: ShardConfig, index: int, clock: Clock) -> None:
        self.count = shard.run.count
        self.quota = shard.caller_quota(index)
        self.clock = clock
        rate = shard.caller_rate()
        self.mean_gap_us = 1e6 / rate if rate else 0.0
        self.random = random.Random(f"{shard.seed}-{index}")
        self.next_us = clock.start_us + self._gap()
        self.latencies = latency.CallerLatencies()
        self.check = CallerCheck()
        self.ok = 0
        self.failed = 0
        self.timestamps = 0
        self.errors: Counter[str] = Counter()
        self.in_request = False
        self.abandoned = False  # given up on as hung; a late reply is ignored
        self.last_done_us = 0

    def _gap(self) -> float:
        return self.random.expovariate(1.0) * self.mean_gap_us if self.mean_gap_us else 0.0

    def next_start(self) -> int | None:
        """Intended start of the next request, or None when this caller is done."""
        clock = self.clock
        if self.quota is not None and self.ok + self.failed >= self.quota:
            return None
        if self.mean_gap_us:
            intended = int(self.next_us)
            self.next_us += self._gap()
        else:
            intended = now_us()
        return intended if intended < clock.end_us else None

    def done(self, intended: int, sent: int, ts: strategies.Timestamp | None, exc: BaseException | None) -> None:
        finished = now_us()
        if self.abandoned:
            return
        self.in_request = False
        if ts is not None:
            self.check.observe(ts, self.count, sent, finished)
        if intended < self.clock.measure_from_us:
            return  # warm-up: checked for correctness, excluded from the figures
        self.last_done_us = finished
        if exc is None:  # latency is that of answers: a fast failure is not a fast reply
            self.latencies.record(intended, sent, finished)
            self.ok += 1
            self.timestamps += self.count
        else:
            self.failed += 1
            self.errors[error_kind(exc)] += 1


@dataclass
class Clock:
    """Microsecond instants on this process's perf_counter."""

    start_us: int
    measure_from_us: int
    end_us: int
    stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def starting_now(cls, shard: ShardConfig) -> Clock:
        start = now_us()
        measure_from = start + int(shard.run.warmup_s * 1e6)
        forever = 1 << 62  # --requests: the quota, not the clock, ends each caller
        end = forever if shard.run.duration_s is None else measure_from + int(shard.run.duration_s * 1e6)
        return cls(start, measure_from, end)

    def interrupt(self) -> None:
        self.end_us = min(self.end_us, now_us())
        self.stop.set()


def _thread_caller(client: strategies.TsoClient, caller: Caller) -> None:
    count = caller.count
    while (intended := caller.next_start()) is not None:
        delay = intended - now_us()
        if delay > 0:
            time.sleep(delay / 1e6)
        sent = now_us()
        caller.in_request = True
        try:
            ts = client.get_ts(count)
        except Exception as exc:
            caller.done(intended, sent, None, exc)
        else:
            caller.done(intended, sent, ts, None)


async def _async_caller(client: strategies.AsyncTsoClient, caller: Caller, timeout_s: float) -> None:
    count = caller.count
    while (intended := caller.next_start()) is not None:
        delay = intended - now_us()
        if delay > 0:
            await asyncio.sleep(delay / 1e6)
        sent = now_us()
        caller.in_request = True
        try:
            async with asyncio.timeout(timeout_s):
                ts = await client.get_ts(count)
        except Exception as exc:
            caller.done(intended, sent, None, exc)
        else:
            caller.done(intended, sent, ts, None)


def _deadline_s(shard: ShardConfig, clock: Clock) -> float:
    """Seconds from now until the shard stops waiting for its callers."""
    if shard.run.duration_s is None:
        return shard.run.expected_seconds() + GRACE_S
    return (clock.end_us - now_us()) / 1e6 + shard.run.timeout_s + GRACE_S


def _abandon_busy(callers: list[Caller]) -> int:
    """Give up on callers still inside a request; they count as hung."""
    hung = [c for c in callers if c.in_request]
    for c in hung:
        c.abandoned = True
    return len(hung)


def _run_threads(shard: ShardConfig, clock: Clock, callers: list[Caller], client: strategies.TsoClient) -> int:
    threads = [
        threading.Thread(target=_thread_caller, args=(client, c), name=f"caller-{i}", daemon=True)
        for i, c in enumerate(callers)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + _deadline_s(shard, clock)
    for t in threads:
        while t.is_alive() and time.monotonic() < deadline:
            if clock.stop.wait(0.05):
                deadline = min(deadline, time.monotonic() + shard.run.timeout_s + GRACE_S)
            t.join(0.05)
    hung = _abandon_busy(callers)
    # Closing cancels the streams, which frees callers stuck in a read; a
    # close that itself hangs (a dead channel) must not hang the shard.
    closer = threading.Thread(target=client.close, daemon=True)
    closer.start()
    closer.join(GRACE_S)
    return hung


async def _run_tasks(shard: ShardConfig, clock: Clock, callers: list[Caller], client: strategies.AsyncTsoClient) -> int:
    timeout = shard.run.timeout_s
    tasks = [asyncio.create_task(_async_caller(client, c, timeout)) for c in callers]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _deadline_s(shard, clock)
    pending = set(tasks)
    while pending and loop.time() < deadline:
        _, pending = await asyncio.wait(pending, timeout=0.1)
        if clock.stop.is_set():
            deadline = min(deadline, loop.time() + timeout + GRACE_S)
    hung = _abandon_busy(callers)
    for task in pending:
        task.cancel()
    try:
        async with asyncio.timeout(GRACE_S):
            await asyncio.gather(*pending, return_exceptions=True)
            await client.close()
    except TimeoutError:
        pass
    return hung


def run_shard(
    shard: ShardConfig,
    on_ready: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
    clock_hook: Callable[[Clock], None] | None = None,
) -> ShardResult:
    """Run one shard. The client is opened first (a target that cannot be
    reached fails here, before any load); ``on_ready`` then blocks until every
    shard may start; ``clock_hook`` receives the clock (to interrupt it from outside)."""
    streams_before = streams_opened()
    strategy = strategies.get(shard.run.strategy)
    options = shard.run.client_options(shard.target)
    runner = None  # asyncio: one loop from open() to close(), torn down like asyncio.run does
    if shard.run.api == "thread":
        client = strategy.thread(options)
        client.open()
    else:
        runner = asyncio.Runner()
        client = strategy.asyncio(options)
        try:
            runner.run(client.open())
        except BaseException:
            runner.close()
            raise
    if on_ready:
        on_ready()
    cpu_start = time.process_time()
    clock = Clock.starting_now(shard)
    callers = [Caller(shard, i, clock) for i in range(shard.run.concurrency)]
    if clock_hook:
        clock_hook(clock)
    reporter = _ProgressReporter(callers, progress) if progress else None
    with _ThreadCrashes() as crashes:
        try:
            if runner is None:
                hung = _run_threads(shard, clock, callers, client)
            else:
                with runner:
                    hung = runner.run(_run_tasks(shard, clock, callers, client))
        finally:
            if reporter:
                reporter.finish()
    cpu_s = time.process_time() - cpu_start
    result = _collect(shard, clock, callers, cpu_s, streams_opened() - streams_before, hung)
    return replace(result, errors={**result.errors, **crashes.counts}) if crashes.counts else result


class _ThreadCrashes:
    """Counts exceptions that kill background threads (grpcio's channel delivery
    thread dies this way when a stream is read concurrently)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def _hook(self, args: threading.ExceptHookArgs) -> None:
        self.counts[f"thread_crash:{args.exc_type.__name__}"] += 1

    def __enter__(self) -> _ThreadCrashes:
        self._previous = threading.excepthook
        threading.excepthook = self._hook
        return self

    def __exit__(self, *exc: object) -> None:
        threading.excepthook = self._previous


def _collect(
    shard: ShardConfig, clock: Clock, callers: list[Caller], cpu_s: float, streams: int, hung: int
) -> ShardResult:
    errors: Counter[str] = Counter()
    for c in callers:
        errors.update(c.errors)
    if hung:
        errors["hung"] += hung
    corrected = latency.histogram_of(v for c in callers for v in c.latencies.corrected)
    uncorrected = latency.histogram_of(v for c in callers for v in c.latencies.uncorrected)
    last_done = max((c.last_done_us for c in callers), default=0)
    measured_s = max(0.0, (last_done - clock.measure_from_us) / 1e6)
    return ShardResult(
        index=shard.index,
        requests_ok=sum(c.ok for c in callers),
        requests_failed=sum(c.failed for c in callers) + hung,
        timestamps=sum(c.timestamps for c in callers),
        measured_s=measured_s,
        cpu_s=cpu_s,
        errors=dict(errors),
        hung=hung,
        streams_opened=streams,
        latency=latency.encode(corrected),
        latency_uncorrected=latency.encode(uncorrected),
        checked=sum(c.check.checked for c in callers),
        non_monotonic=out_of_real_time_order(c.check for c in callers),
        non_monotonic_per_caller=sum(c.check.non_monotonic for c in callers),
        mismatched=sum(c.check.mismatched for c in callers),
        ranges=merge_ranges(c.check.ranges() for c in callers),
        interrupted=clock.stop.is_set(),
    )


class _ProgressReporter:
    """Publishes the shard's completed-request count a few times a second."""

    def __init__(self, callers: list[Caller], publish: Callable[[int], None]) -> None:
        self._callers, self._publish = callers, publish
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="progress")
        self._thread.start()

    def _loop(self) -> None:
        while not self._done.wait(0.25):
            self._publish(sum(c.ok + c.failed for c in self._callers))

    def finish(self) -> None:
        self._done.set()
        self._thread.join()
        self._publish(sum(c.ok + c.failed for c in self._callers))
