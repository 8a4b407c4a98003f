"""One client process's run: ``run_shard(ShardConfig) -> ShardResult``.

A plain function from a config to a result: the runner runs one per process,
tests and the pytest-benchmark suite call it directly. Callers are threads
(sync grpcio) or asyncio tasks (grpc.aio) sharing one strategy client.

Timing: closed loop, a caller sends as soon as its previous reply is back;
open loop, each caller follows its own seeded Poisson schedule, so the sum over
callers is Poisson at the total rate, and latency counts from each request's
intended start (coordinated-omission safe) as well as from its actual send.

The hot path only reads the clock and appends to arrays: no timer, task or
lock per request (deadlines are the strategy's, by one watchdog per client).
Everything else happens once the run is over (``Tally``):

- a request counts in the window where it completes: one that started in the
  warm-up and completes in the measured window counts with its full latency;
- a request still in flight when the window closes is *censored*: its wait so
  far goes into the latency histogram, so a caller that waits forever shows as
  a tail as long as the run, never as nothing;
- completions per caller give the fairness figures; a caller with none in the
  window is *starved*;
- completions per interval give the timeline (``intervals``), warm-up included;
  with faults, the window's request times go to the runner (``recovery.Trace``).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tsobench import strategies
from tsobench.strategies.stream import streams_opened

from . import intervals, latency
from .checker import CallerCheck, Ranges, merge_ranges, out_of_real_time_order
from .config import GRACE_S, ShardConfig
from .errors import error_kind
from .recovery import NO_ANSWER, Trace

DRAIN_S = 2.0  # at most this long after the window for in-flight requests to finish
IDLE = -1  # a caller's ``pending`` when it waits for nothing
FOREVER_US = 1 << 62


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
    hung: int  # requests still waiting well past their deadline when the shard gave up
    streams_opened: int
    latency: str  # encoded HDR histogram, µs from the intended start; censored waits included
    latency_uncorrected: str
    checked: int
    non_monotonic: int  # out of real-time order within this process
    non_monotonic_per_caller: int
    mismatched: int
    ranges: Ranges = field(repr=False)
    completions: list[int] = field(default_factory=list)  # per caller, in the measured window
    in_flight_at_end: int = 0  # requests still waiting when the window closed
    answered_us: int = 0  # summed latency of the answered requests (Little's law)
    reconnects: int = 0  # streams reopened after a failure (the strategy's, if it counts them)
    interrupted: bool = False
    started_wall_s: float = 0.0  # time.time() when the load started here (the shards' common clock)
    intervals: list[intervals.IntervalPart] = field(default_factory=list, repr=False)
    trace: Trace | None = field(default=None, repr=False)  # with faults only

    @property
    def censored(self) -> int:
        """Waits recorded without an answer: the requests in flight at the close."""
        return self.in_flight_at_end

    @classmethod
    def merge(cls, parts: Sequence[ShardResult]) -> ShardResult:
        """Several shards as one, what a run reports: counts summed, the longest window,
        histograms merged (never averaged), ranges coalesced across shards (an overlap
        between two shards is a duplicate), completions per caller concatenated.
        Intervals and fault traces stay per shard: they line up on the run's clock."""
        errors: Counter[str] = Counter()
        for p in parts:
            errors.update(p.errors)
        return cls(
            index=-1,
            requests_ok=sum(p.requests_ok for p in parts),
            requests_failed=sum(p.requests_failed for p in parts),
            timestamps=sum(p.timestamps for p in parts),
            measured_s=max((p.measured_s for p in parts), default=0.0),
            cpu_s=sum(p.cpu_s for p in parts),
            errors=dict(errors),
            hung=sum(p.hung for p in parts),
            streams_opened=sum(p.streams_opened for p in parts),
            latency=latency.encode(latency.merge(p.latency for p in parts)),
            latency_uncorrected=latency.encode(latency.merge(p.latency_uncorrected for p in parts)),
            checked=sum(p.checked for p in parts),
            non_monotonic=sum(p.non_monotonic for p in parts),
            non_monotonic_per_caller=sum(p.non_monotonic_per_caller for p in parts),
            mismatched=sum(p.mismatched for p in parts),
            ranges=merge_ranges(p.ranges for p in parts),
            completions=[n for p in parts for n in p.completions],
            in_flight_at_end=sum(p.in_flight_at_end for p in parts),
            answered_us=sum(p.answered_us for p in parts),
            reconnects=sum(p.reconnects for p in parts),
            interrupted=any(p.interrupted for p in parts),
        )


class Caller:
    """One caller's loop state; everything it touches in the hot path is its own."""

    def __init__(self, shard: ShardConfig, index: int) -> None:
        self.count = shard.run.count
        self.quota = shard.caller_quota(index)
        rate = shard.caller_rate()
        self.mean_gap_us = 1e6 / rate if rate else 0.0
        self.random = random.Random(f"{shard.seed}-{index}")
        self.check = CallerCheck(self.count)
        # open loop only: when each request was meant to start (closed loop: when it was sent)
        self.intended = array("q") if self.mean_gap_us else self.check.sent
        self.failures: list[tuple[int, int, str]] = []  # (intended, done, error kind)
        self.pending = IDLE  # intended start of the request in flight
        self.abandoned = False  # given up on: a late reply is not recorded

    def gaps(self, start_us: int) -> Callable[[], int]:
        """Intended starts of an open-loop schedule, one per call."""
        mean, expovariate = self.mean_gap_us, self.random.expovariate
        at = float(start_us)

        def next_start() -> int:
            nonlocal at
            at += expovariate(1.0) * mean
            return int(at)

        return next_start

    def fail(self, intended: int, exc: BaseException) -> None:
        self.failures.append((intended, now_us(), error_kind(exc)))

    def finished(self) -> int:
        return len(self.check.done) + len(self.failures)


@dataclass
class Clock:
    """Microsecond instants on this process's perf_counter."""

    start_us: int
    measure_from_us: int
    end_us: int  # the window closes; FOREVER_US with --requests (the quotas end each caller)
    wall_start_s: float = 0.0  # time.time() at start_us
    stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def starting_now(cls, shard: ShardConfig) -> Clock:
        wall, start = time.time(), now_us()
        measure_from = start + int(shard.run.warmup_s * 1e6)
        end = FOREVER_US if shard.run.duration_s is None else measure_from + int(shard.run.duration_s * 1e6)
        return cls(start, measure_from, end, wall)

    def interrupt(self) -> None:
        self.end_us = min(self.end_us, now_us())
        self.stop.set()


# ---------------------------------------------------------------- the callers' loops
# One per API: the thread and asyncio loops are the same steps, one with ``await``.
# Closed loop, a request is meant to start when the previous one ends (one clock
# read per request); open loop, when the caller's Poisson schedule says.


def _quota_limit(caller: Caller, clock: Clock, n: int, t: int) -> int:
    """With --requests, a caller's quota counts from the end of the warm-up."""
    if caller.quota is None:
        return FOREVER_US
    return n + caller.quota if t >= clock.measure_from_us else FOREVER_US


def _thread_caller(get_ts: Callable[[int], strategies.Timestamp], c: Caller, clock: Clock) -> None:
    count, check = c.count, c.check
    sent_log, done_log, last_log = check.sent.append, check.done.append, check.lasts.append
    schedule = c.gaps(clock.start_us) if c.mean_gap_us else None
    intended_log = c.intended.append if schedule else None
    n, limit, t = 0, FOREVER_US, now_us()
    while (intended := schedule() if schedule else t) < clock.end_us:
        if limit == FOREVER_US and c.quota is not None:
            limit = _quota_limit(c, clock, n, intended)
        if n >= limit:
            break
        n += 1
        c.pending = intended
        if schedule and (delay := intended - now_us()) > 0:
            time.sleep(delay / 1e6)
        sent = now_us() if schedule else intended
        try:
            ts = get_ts(count)
        except Exception as exc:
            if c.abandoned:
                return
            c.fail(intended, exc)
            t = now_us()
            continue
        t = now_us()
        if c.abandoned:
            return
        if ts.count != count:
            check.odd_counts[len(check.lasts)] = ts.count
        if intended_log:
            intended_log(intended)
        sent_log(sent)
        done_log(t)
        last_log(ts.last)
    c.pending = IDLE


async def _async_caller(get_ts: Callable[[int], Awaitable[strategies.Timestamp]], c: Caller, clock: Clock) -> None:
    count, check = c.count, c.check
    sent_log, done_log, last_log = check.sent.append, check.done.append, check.lasts.append
    schedule = c.gaps(clock.start_us) if c.mean_gap_us else None
    intended_log = c.intended.append if schedule else None
    n, limit, t = 0, FOREVER_US, now_us()
    while (intended := schedule() if schedule else t) < clock.end_us:
        if limit == FOREVER_US and c.quota is not None:
            limit = _quota_limit(c, clock, n, intended)
        if n >= limit:
            break
        n += 1
        c.pending = intended
        if schedule and (delay := intended - now_us()) > 0:
            await asyncio.sleep(delay / 1e6)
        sent = now_us() if schedule else intended
        try:
            ts = await get_ts(count)
        except Exception as exc:
            c.fail(intended, exc)
            t = now_us()
            continue
        t = now_us()
        if ts.count != count:
            check.odd_counts[len(check.lasts)] = ts.count
        if intended_log:
            intended_log(intended)
        sent_log(sent)
        done_log(t)
        last_log(ts.last)
    c.pending = IDLE


# ---------------------------------------------------------------- running them


def _give_up_s(shard: ShardConfig, clock: Clock) -> float:
    """Seconds from now until the shard stops waiting for its callers (--requests runs)."""
    return shard.run.expected_seconds() + shard.run.timeout_s + GRACE_S - (now_us() - clock.start_us) / 1e6


def _drain_s(shard: ShardConfig) -> float:
    return min(DRAIN_S, shard.run.late_s)


def _run_threads(shard: ShardConfig, clock: Clock, callers: list[Caller], client: strategies.TsoClient) -> int:
    """Run the callers; returns the µs instant the window closed for them."""
    threads = [
        threading.Thread(target=_thread_caller, args=(client.get_ts, c, clock), name=f"caller-{i}", daemon=True)
        for i, c in enumerate(callers)
    ]
    for t in threads:
        t.start()
    give_up = time.monotonic() + _give_up_s(shard, clock)
    while any(t.is_alive() for t in threads) and now_us() < clock.end_us and time.monotonic() < give_up:
        clock.stop.wait(0.05)
    closed_at = min(now_us(), clock.end_us)
    drain_until = time.monotonic() + _drain_s(shard)
    for t in threads:
        t.join(max(0.0, drain_until - time.monotonic()))
    for c in callers:
        c.abandoned = True
    # Closing cancels the streams, which frees callers stuck in a read; a
    # close that itself hangs (a dead channel) must not hang the shard.
    closer = threading.Thread(target=client.close, daemon=True)
    closer.start()
    closer.join(GRACE_S)
    return closed_at


async def _run_tasks(shard: ShardConfig, clock: Clock, callers: list[Caller], client: strategies.AsyncTsoClient) -> int:
    tasks = [asyncio.create_task(_async_caller(client.get_ts, c, clock)) for c in callers]
    loop = asyncio.get_running_loop()
    give_up = loop.time() + _give_up_s(shard, clock)
    pending: set[asyncio.Task[None]] = set(tasks)
    while pending and now_us() < clock.end_us and loop.time() < give_up:
        _, pending = await asyncio.wait(pending, timeout=min(0.1, max(0.001, (clock.end_us - now_us()) / 1e6)))
    closed_at = min(now_us(), clock.end_us)
    if pending:
        _, pending = await asyncio.wait(pending, timeout=_drain_s(shard))
    for c in callers:
        c.abandoned = True
    for task in pending:
        task.cancel()
    try:
        async with asyncio.timeout(GRACE_S):  # once per run, not per request
            await asyncio.gather(*pending, return_exceptions=True)
            await client.close()
    except TimeoutError:
        pass
    return closed_at


def run_shard(
    shard: ShardConfig,
    on_ready: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
    clock_hook: Callable[[Clock], None] | None = None,
    on_interval: Callable[[int, int, int], None] | None = None,
) -> ShardResult:
    """Run one shard. The client is opened first (a target that cannot be
    reached fails here, before any load); ``on_ready`` then blocks until every
    shard may start; ``clock_hook`` receives the clock (to interrupt it from outside);
    ``on_interval(index, answered, p99_us)`` hears of each interval once it is over."""
    streams_before = streams_opened()
    strategy = strategies.get(shard.run.strategy)
    options = shard.run.client_options(shard.target)
    runner = None  # asyncio: one loop from open() to close(), torn down like asyncio.run does
    client: strategies.TsoClient | strategies.AsyncTsoClient
    if shard.run.api == "thread":
        client = strategy.thread(options)
        client.open()
    else:
        runner = asyncio.Runner(loop_factory=_loop_factory(shard.run.loop))
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
    callers = [Caller(shard, i) for i in range(shard.run.concurrency)]
    if clock_hook:
        clock_hook(clock)
    watch = _IntervalWatch(callers, clock, shard, on_interval) if on_interval else None
    reporter = _ProgressReporter(callers, progress, watch) if progress or watch else None
    with _ThreadCrashes() as crashes:
        try:
            if runner is None:
                closed_at = _run_threads(shard, clock, callers, client)  # type: ignore[arg-type]
            else:
                with runner:
                    closed_at = runner.run(_run_tasks(shard, clock, callers, client))  # type: ignore[arg-type]
        finally:
            if reporter:
                reporter.finish()
    cpu_s = time.process_time() - cpu_start
    tally = Tally(shard, clock, callers, closed_at)
    errors = tally.errors + crashes.counts
    return tally.result(
        cpu_s,
        streams=streams_opened() - streams_before,
        errors=dict(errors),
        reconnects=int(getattr(client, "reconnects", 0)),
    )


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


class Tally:
    """Everything the hot path did not do: windows, censoring, fairness, checks."""

    def __init__(self, shard: ShardConfig, clock: Clock, callers: list[Caller], closed_at: int) -> None:
        self.shard, self.clock, self.callers = shard, clock, callers
        # With --requests the window is open until the last caller finished (or was given up on).
        self.window = (clock.measure_from_us, closed_at)
        self.errors: Counter[str] = Counter()
        self.hung = 0
        self.censored_waits: list[int] = []
        self.completions: list[int] = []
        self.answered_latency: list[np.ndarray] = []
        self.answered_uncorrected: list[np.ndarray] = []
        # for the timeline, warm-up included: answered (completion, latency) and failed (completion)
        self.run_done: list[np.ndarray] = []
        self.run_latency: list[np.ndarray] = []
        self.run_failed: list[int] = []
        self.traces: list[Trace] = []
        late_us = int(shard.run.late_s * 1e6)
        for c in callers:
            self._caller(c, late_us)

    def _caller(self, c: Caller, late_us: int) -> None:
        start, end = self.window
        check = c.check
        n = min(len(check.done), len(check.sent), len(check.lasts), len(c.intended))  # a thread may be mid-append
        done, sent, intended = _int64(check.done)[:n], _int64(check.sent)[:n], _int64(c.intended)[:n]
        in_window = (done >= start) & (done < end)
        self.answered_latency.append(done[in_window] - intended[in_window])
        self.answered_uncorrected.append(done[in_window] - sent[in_window])
        in_run = done < end
        self.run_done.append(done[in_run])
        self.run_latency.append(done[in_run] - intended[in_run])
        late = (intended < end) & (done >= end)  # answered, but after the close
        self.censored_waits.extend((end - intended[late]).tolist())
        failed_in_window = []
        for began, finished, kind in c.failures:
            if start <= finished < end:
                failed_in_window.append(finished)
                self.errors[kind] += 1
            elif began < end <= finished:
                self.censored_waits.append(end - began)
        self.run_failed.extend(finished for _, finished, _ in c.failures if finished < start)
        self.run_failed.extend(failed_in_window)
        if self.shard.run.faults:
            answered = done[in_window]
            self.traces.append(
                Trace(
                    intended[in_window] - start,
                    answered - start,
                    np.array(failed_in_window, np.int64) - start,
                    np.array([answered[-1] - start if len(answered) else NO_ANSWER], np.int64),
                )
            )
        if c.pending != IDLE and c.pending < end and (len(done) == 0 or c.pending > int(intended[-1])):
            wait = end - c.pending  # never answered: still waiting when the shard stopped
            self.censored_waits.append(wait)
            if now_us() - c.pending > late_us:
                self.hung += 1  # well past its deadline: the strategy enforced none
        self.completions.append(int(np.count_nonzero(in_window)) + len(failed_in_window))

    def result(self, cpu_s: float, streams: int, errors: dict[str, int], reconnects: int) -> ShardResult:
        clock, callers = self.clock, self.callers
        corrected = np.concatenate([*self.answered_latency, np.array(self.censored_waits, np.int64)])
        uncorrected = np.concatenate([*self.answered_uncorrected, np.array(self.censored_waits, np.int64)])
        ok = sum(len(a) for a in self.answered_latency)
        if self.hung:
            errors = {**errors, "hung": errors.get("hung", 0) + self.hung}
        failed = sum(self.errors.values()) + self.hung
        start, end = self.window
        if self.shard.run.duration_s is None:  # --requests: measured until the last completion
            finished = [int(c.check.done[-1]) for c in callers if len(c.check.done)]
            finished += [c.failures[-1][1] for c in callers if c.failures]
            end = min(end, max([start, *finished]))
        checks = [c.check for c in callers]
        return ShardResult(
            index=self.shard.index,
            requests_ok=ok,
            requests_failed=failed,
            timestamps=ok * self.shard.run.count,
            measured_s=max(0.0, (end - start) / 1e6),
            cpu_s=cpu_s,
            errors=errors,
            hung=self.hung,
            streams_opened=streams,
            latency=latency.encode(latency.histogram_of(corrected)),
            latency_uncorrected=latency.encode(latency.histogram_of(uncorrected)),
            checked=sum(c.checked for c in checks),
            non_monotonic=out_of_real_time_order(checks),
            non_monotonic_per_caller=sum(c.non_monotonic for c in checks),
            mismatched=sum(c.mismatched for c in checks),
            ranges=merge_ranges(c.ranges() for c in checks),
            completions=self.completions,
            in_flight_at_end=len(self.censored_waits),
            answered_us=int(sum(int(a.sum()) for a in self.answered_latency)),
            reconnects=reconnects,
            interrupted=clock.stop.is_set(),
            started_wall_s=clock.wall_start_s,
            intervals=intervals.bucket(
                np.concatenate([np.empty(0, np.int64), *self.run_done]),
                np.concatenate([np.empty(0, np.int64), *self.run_latency]),
                np.array(self.run_failed, np.int64),
                clock.measure_from_us,
                round(self.shard.run.interval_s * 1e6),
            ),
            trace=Trace.join(self.traces) if self.shard.run.faults else None,
        )


def _int64(values: array) -> np.ndarray:
    return np.frombuffer(values, np.int64)


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


class _IntervalWatch:
    """The last whole interval's answers and p99 while the run goes, for the progress line.

    It copies what the callers appended since its last look (a slice of an
    ``array`` is a copy: a view would stop a caller's append) and keeps only
    the interval under way.
    """

    def __init__(
        self, callers: Sequence[Caller], clock: Clock, shard: ShardConfig, publish: Callable[[int, int, int], None]
    ) -> None:
        self._callers, self._publish = callers, publish
        self._origin, self._step = clock.measure_from_us, round(shard.run.interval_s * 1e6)
        self._seen = [0] * len(callers)
        self._done = np.empty(0, np.int64)
        self._latency = np.empty(0, np.int64)
        self._published: int | None = None

    def look(self) -> None:
        done, lat = [self._done], [self._latency]
        for i, c in enumerate(self._callers):
            n = len(c.check.done)
            if n > self._seen[i]:
                new_done = np.array(c.check.done[self._seen[i] : n], np.int64)
                done.append(new_done)
                lat.append(new_done - np.array(c.intended[self._seen[i] : n], np.int64))
                self._seen[i] = n
        self._done, self._latency = np.concatenate(done), np.concatenate(lat)
        last = (now_us() - self._origin) // self._step - 1  # the last interval that is over
        if last == self._published:
            return
        index = np.floor_divide(self._done - self._origin, self._step)
        answered = self._latency[index == last]
        p99 = latency.histogram_of(answered).get_value_at_percentile(99) if len(answered) else 0
        self._publish(int(last), len(answered), p99)
        self._published = last
        keep = index > last
        self._done, self._latency = self._done[keep], self._latency[keep]


class _ProgressReporter:
    """Publishes the shard's finished-request count a few times a second (and the intervals)."""

    def __init__(
        self, callers: Sequence[Caller], publish: Callable[[int], None] | None, watch: _IntervalWatch | None
    ) -> None:
        self._callers, self._publish, self._watch = callers, publish, watch
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="progress")
        self._thread.start()

    def _loop(self) -> None:
        while not self._done.wait(0.25):
            if self._publish:
                self._publish(sum(c.finished() for c in self._callers))
            if self._watch:
                self._watch.look()

    def finish(self) -> None:
        self._done.set()
        self._thread.join()
        if self._publish:
            self._publish(sum(c.finished() for c in self._callers))
