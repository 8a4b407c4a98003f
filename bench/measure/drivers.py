"""One driver per API: the strategy's client, its callers and how they end.

A driver opens the strategy's client, runs the callers until the window closes
(or their quotas are done), gives the stragglers a bounded drain, abandons the
rest and closes the client: ``ThreadDriver`` (sync grpcio, callers are
threads) and ``AsyncDriver`` (grpc.aio, callers are tasks on one event loop).

The two caller loops are the same steps, one with ``await``; what they share
lives on ``Caller``. Closed loop, a request is meant to start when the previous
one ends (one clock read per request); open loop, when the caller's Poisson
schedule says, and latency counts from that intended start. The hot path reads
the clock and appends to the caller's ``Record``: no timer, task or lock per
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from time import perf_counter_ns  # now_us's clock, read inline in the callers' loops (a call less per request)
from typing import Any

from tsobench import strategies
from tsobench.bench.measure.clock import FOREVER_US, Clock, now_us
from tsobench.bench.measure.errors import error_kind, one_line
from tsobench.bench.measure.fold import IDLE, FoldTicker, Record
from tsobench.bench.model.config import GRACE_S, ShardConfig
from tsobench.loops import select_event_loop

DRAIN_S = 2.0  # at most this long after the window for in-flight requests to finish
PLUGIN_ERROR = "plugin_error"
CALLER_DIED = "caller_died"
THREAD_CRASH = "thread_crash"


def where(exc: BaseException | None = None, code: Any = None) -> str:
    """``file:line in function`` of an exception's innermost frame, or of a function."""
    if exc is not None and exc.__traceback__ is not None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return f"{frame.filename}:{frame.lineno} in {frame.name}"
    code = getattr(getattr(code, "__func__", code), "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno} in {code.co_name}" if code else "?"


class Caller:
    """One caller's schedule, quota and record."""

    def __init__(self, shard: ShardConfig, index: int, plugin: bool) -> None:
        self.count = shard.run.count
        self.quota = shard.caller_quota(index)
        rate = shard.caller_rate()
        self.mean_gap_us = 1e6 / rate if rate else 0.0
        self.random = random.Random(f"{shard.seed}-{index}")
        self.record = Record(open_loop=bool(self.mean_gap_us))
        self.plugin = plugin  # a third-party strategy: what it raises beyond gRPC's own errors is its error

    def arrivals(self, start_us: int) -> Callable[[], int] | None:
        """Open loop: the intended starts of a Poisson schedule, one per call (None: closed loop)."""
        if not self.mean_gap_us:
            return None
        mean, expovariate = self.mean_gap_us, self.random.expovariate
        at = float(start_us)

        def next_start() -> int:
            nonlocal at
            at += expovariate(1.0) * mean
            return int(at)

        return next_start

    def limit(self, clock: Clock, sent: int, intended: int) -> int:
        """With --requests, how many requests this caller may send: its quota counts from the end of the warm-up."""
        if self.quota is None or intended < clock.measure_from_us:
            return FOREVER_US
        return sent + self.quota

    def failed(self, intended: int, exc: BaseException) -> int:
        """Record a failed request; returns when."""
        kind = error_kind(exc)
        if self.plugin and kind == type(exc).__name__:  # not a gRPC error, a timeout or a known breakage
            kind = f"{PLUGIN_ERROR}:{type(exc).__name__}"
        return self._failure(intended, kind, one_line(exc), where(exc))

    def bad_reply(self, intended: int, reply: object, get_ts: object) -> int:
        """``get_ts`` returned something that is not a Timestamp: a failed request, the plugin's error."""
        kind = f"{PLUGIN_ERROR}:{type(reply).__name__}"
        return self._failure(intended, kind, f"get_ts returned {reply!r:.100}, not a Timestamp", where(code=get_ts))

    def _failure(self, intended: int, kind: str, message: str, place: str) -> int:
        r, t = self.record, now_us()
        if kind not in r.samples:
            r.samples[kind] = {"message": message, "where": place}
        r.failed_kind.append(kind)
        r.failed_at.append(intended)
        r.failed_done.append(t)  # last: the fold takes the entries all three arrays have
        return t


def _give_up_s(shard: ShardConfig, clock: Clock) -> float:
    """Seconds from now until the driver stops waiting for its callers (--requests runs)."""
    return shard.run.expected_seconds() + shard.run.timeout_s + GRACE_S - (now_us() - clock.start_us) / 1e6


def _drain_s(shard: ShardConfig) -> float:
    return min(DRAIN_S, shard.late_s)


class Crashes:
    """Callers and background threads that died, by kind, with the first message and place of each.

    A caller thread's death is ``caller_died:<Type>``; any other thread's (grpcio's
    channel delivery thread dies this way when a stream is read concurrently) is
    ``thread_crash:<Type>``. Either makes the run not clean.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.samples: dict[str, dict[str, str]] = {}

    def add(self, kind: str, exc: BaseException | None, message: str) -> None:
        self.counts[kind] += 1
        self.samples.setdefault(kind, {"message": message, "where": where(exc)})

    def _hook(self, args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else ""
        prefix = CALLER_DIED if name.startswith("caller-") else THREAD_CRASH
        value = args.exc_value
        self.add(f"{prefix}:{args.exc_type.__name__}", value, f"{name}: {one_line(value) if value else ''}")

    def __enter__(self) -> Crashes:
        self._previous = threading.excepthook
        threading.excepthook = self._hook
        return self

    def __exit__(self, *exc: object) -> None:
        threading.excepthook = self._previous


class ThreadDriver:
    """The thread API: callers are threads sharing one client."""

    def __init__(self, shard: ShardConfig, strategy: strategies.Strategy, options: strategies.ClientOptions) -> None:
        self.shard = shard
        self.client = strategy.thread(options)
        self._open = False

    def open(self) -> None:
        self.client.open()
        self._open = True

    def counters(self) -> dict[str, int]:
        return _counters(self.client)

    def run(self, callers: list[Caller], clock: Clock, crashes: Crashes, folder: FoldTicker) -> int:
        """Run the callers, and the fold beside them in a thread; returns the µs instant the window closed."""
        folding = threading.Event()
        fold_thread = threading.Thread(target=_fold_every, args=(folder, folding), name="fold", daemon=True)
        fold_thread.start()
        # Every caller starts at the gate, as asyncio's tasks do: starting threads one by one
        # under load (or across a pause of this process) would let the first ones run alone.
        gate = threading.Event()
        threads = [
            threading.Thread(
                target=_thread_caller, args=(self.client.get_ts, c, clock, gate), name=f"caller-{i}", daemon=True
            )
            for i, c in enumerate(callers)
        ]
        for t in threads:
            t.start()
        gate.set()
        give_up = time.monotonic() + _give_up_s(self.shard, clock)
        while any(t.is_alive() for t in threads) and now_us() < clock.end_us and time.monotonic() < give_up:
            clock.stop.wait(0.05)
        closed_at = min(now_us(), clock.end_us)
        drain_until = time.monotonic() + _drain_s(self.shard)
        for t in threads:
            t.join(max(0.0, drain_until - time.monotonic()))
        for c in callers:
            c.record.abandoned = True
        folding.set()
        fold_thread.join()
        self.close()  # cancels the streams, which frees callers stuck in a read
        return closed_at

    def close(self) -> None:
        """Close the client once; a close that itself hangs (a dead channel) must not hang the shard."""
        if self._open:
            self._open = False
            closer = threading.Thread(target=self.client.close, daemon=True, name="close")
            closer.start()
            closer.join(GRACE_S)


def _fold_every(folder: FoldTicker, stop: threading.Event) -> None:
    wait = folder.next_wait_s()
    while not stop.wait(wait) and (next_wait := folder.tick()) is not None:
        wait = next_wait


def _thread_caller(
    get_ts: Callable[[int], strategies.Timestamp], c: Caller, clock: Clock, gate: threading.Event
) -> None:
    gate.wait()
    r, count = c.record, c.count
    last_log, sent_log, done_log = r.lasts.append, r.sent.append, r.done.append
    schedule = c.arrivals(clock.start_us)
    intended_log = r.intended.append if schedule else None
    quota = c.quota
    n, limit, t = 0, FOREVER_US, now_us()
    while (intended := schedule() if schedule else t) < clock.end_us:
        if limit == FOREVER_US and quota is not None:
            limit = c.limit(clock, n, intended)
        if n >= limit:
            break
        n += 1
        r.pending = intended
        if schedule and (delay := intended - perf_counter_ns() // 1000) > 0:
            time.sleep(delay / 1e6)
        sent = perf_counter_ns() // 1000 if schedule else intended
        try:
            ts = get_ts(count)
        except Exception as exc:
            if r.abandoned:  # given up on: its wait is already counted as censored (or hung)
                return
            t = c.failed(intended, exc)
            continue
        t = perf_counter_ns() // 1000
        if r.abandoned:
            return
        try:
            last, got = ts.last, ts.count
        except Exception:
            t = c.bad_reply(intended, ts, get_ts)
            continue
        if got != count:
            r.odd.append((last, got))
        if intended_log:
            intended_log(intended)
        last_log(last)
        sent_log(sent)
        done_log(t)
    r.pending = IDLE


class AsyncDriver:
    """The asyncio API: callers are tasks on one event loop (uvloop with --loop uvloop), from open to close."""

    def __init__(self, shard: ShardConfig, strategy: strategies.Strategy, options: strategies.ClientOptions) -> None:
        self.shard = shard
        self.client = strategy.asyncio(options)
        self._runner = asyncio.Runner(loop_factory=_loop_factory(shard.run.loop))
        self._open = False

    def open(self) -> None:
        self._runner.run(self.client.open())
        self._open = True

    def counters(self) -> dict[str, int]:
        return _counters(self.client)

    def run(self, callers: list[Caller], clock: Clock, crashes: Crashes, folder: FoldTicker) -> int:
        return self._runner.run(self._run(callers, clock, crashes, folder))

    async def _run(self, callers: list[Caller], clock: Clock, crashes: Crashes, folder: FoldTicker) -> int:
        tasks = [asyncio.create_task(_async_caller(self.client.get_ts, c, clock)) for c in callers]
        loop = asyncio.get_running_loop()
        folding = _LoopFolding(folder, loop)
        give_up = loop.time() + _give_up_s(self.shard, clock)
        pending: set[asyncio.Task[None]] = set(tasks)
        while pending and now_us() < clock.end_us and loop.time() < give_up:
            _, pending = await asyncio.wait(pending, timeout=min(0.1, max(0.001, (clock.end_us - now_us()) / 1e6)))
        closed_at = min(now_us(), clock.end_us)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=_drain_s(self.shard))
        for c in callers:
            c.record.abandoned = True
        folding.stop()
        for task in pending:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(GRACE_S):  # once per run, not per request
                await asyncio.gather(*pending, return_exceptions=True)
        await self._close_client()
        for i, task in enumerate(tasks):  # a caller that died is never silent
            if task.done() and not task.cancelled() and (exc := task.exception()) is not None:
                crashes.add(f"{CALLER_DIED}:{type(exc).__name__}", exc, f"caller-{i}: {one_line(exc)}")
        return closed_at

    async def _close_client(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GRACE_S):
                    await self.client.close()

    def close(self) -> None:
        """Close the client if ``run`` did not, then the loop (its tasks cancelled, as asyncio.run does)."""
        try:
            if self._open:
                self._runner.run(self._close_client())
        finally:
            self._runner.close()


class _LoopFolding:
    """The fold's ticks as callbacks of the callers' own event loop."""

    def __init__(self, folder: FoldTicker, loop: asyncio.AbstractEventLoop) -> None:
        self._folder, self._loop = folder, loop
        self._handle: asyncio.TimerHandle | None = loop.call_later(folder.next_wait_s(), self._tick)

    def _tick(self) -> None:
        wait = self._folder.tick()
        self._handle = None if wait is None else self._loop.call_later(wait, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


async def _async_caller(get_ts: Callable[[int], Awaitable[strategies.Timestamp]], c: Caller, clock: Clock) -> None:
    r, count = c.record, c.count
    last_log, sent_log, done_log = r.lasts.append, r.sent.append, r.done.append
    schedule = c.arrivals(clock.start_us)
    intended_log = r.intended.append if schedule else None
    quota = c.quota
    n, limit, t = 0, FOREVER_US, now_us()
    while (intended := schedule() if schedule else t) < clock.end_us:
        if limit == FOREVER_US and quota is not None:
            limit = c.limit(clock, n, intended)
        if n >= limit:
            break
        n += 1
        r.pending = intended
        if schedule and (delay := intended - perf_counter_ns() // 1000) > 0:
            await asyncio.sleep(delay / 1e6)
        sent = perf_counter_ns() // 1000 if schedule else intended
        try:
            ts = await get_ts(count)
        except Exception as exc:
            if r.abandoned:  # given up on: its wait is already counted as censored (or hung)
                return
            t = c.failed(intended, exc)
            continue
        t = perf_counter_ns() // 1000
        if r.abandoned:
            return
        try:
            last, got = ts.last, ts.count
        except Exception:
            t = c.bad_reply(intended, ts, get_ts)
            continue
        if got != count:
            r.odd.append((last, got))
        if intended_log:
            intended_log(intended)
        last_log(last)
        sent_log(sent)
        done_log(t)
    r.pending = IDLE


def _counters(client: object) -> dict[str, int]:
    """The strategy's own counters (``counters()``), or its ``reconnects`` alone, or none."""
    counters = getattr(client, "counters", None)
    if callable(counters):
        try:
            return {str(k): int(v) for k, v in counters().items()}
        except Exception:  # a plugin's broken counters cost its counters, not the run
            return {}
    reconnects = getattr(client, "reconnects", None)
    return {"reconnects": int(reconnects)} if reconnects is not None else {}


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The loop on select() (why: ``tsobench.loops``): on epoll an open-loop
    caller started its requests up to 1 ms after their intended start and the null strategy showed a
    0.6 ms median latency of nothing but timer (0.13 ms on select). uvloop's timers are libuv's, in
    milliseconds: the open loop's latencies carry that granularity."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return select_event_loop


Driver = ThreadDriver | AsyncDriver


def driver_for(shard: ShardConfig, strategy: strategies.Strategy, options: strategies.ClientOptions) -> Driver:
    return (
        ThreadDriver(shard, strategy, options) if shard.run.api == "thread" else AsyncDriver(shard, strategy, options)
    )
