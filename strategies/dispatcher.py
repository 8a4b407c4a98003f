"""dispatcher: PD's own client design. Callers enqueue; per stream (lane), a
sender takes everything pending (up to ``max_batch`` timestamps, optionally
after waiting ``batch_wait_us`` for more) into ONE TsoRequest with count = sum,
and a reader splits each reply back to its callers in order. Only the sender
writes and only the reader reads, so the stream is never shared unsafely.

Deadlines are per batch, as in PD's client: one watchdog per client looks at
the oldest batch in flight on each lane; a late one cancels its stream, which
fails every batch in flight on it with a timeout, and the lane reconnects
(after a backoff, asking who leads first). No caller arms a timer of its own.

The reply carries the largest timestamp of the batch; caller i of the batch
gets the i-th slice of the range, counted up from ``logical - total + 1``.

Parallel RPCs (``rpc_concurrency`` N, PD's ``TSOClientRPCConcurrency``): with
N = 1 a lane sends its next batch as soon as a slot is free (``max_inflight``
batches in flight), taking whatever queued meanwhile. With N > 1 it has N times
the slots, and collects each batch for the estimated RPC time divided by N
(counted from when it began collecting, as PD does), so about N batches are in
flight, each waiting less to leave: TiDB states the mean cost as about 1.5x,
1.25x and 1.125x the RPC time for N = 1, 2, 4, for N times the RPCs. The
estimate is PD's: a low-pass filter over the log of recent RPC times, at least
100 µs. ``batch_wait_us`` is the opposite trade (wait longer, batch more) and is
refused with N > 1 (``ClientOptions``), where PD ignores one of the two.

Counters (``counters()``): answered RPCs, the requests they carried, and the
sum over batches of requests x RPC µs, so a request's mean latency splits into
the RPC and the wait for its batch to leave. Two clock reads per batch (sent,
answered), none per request.

The client's own turn-around, per batch, as PD's client times its batches
(``turnaround_counters``): the *send gap*, from the moment a batch could leave
(the reply that freed its slot arrived, its first caller queued, or its
collection time ended, whichever came last) to its send; and the *wake-up*,
from a reply's arrival to the last of its callers running again (asyncio: a
callback queued after the callers' wake-ups; threads: the caller answered last
reads the clock once it runs). At most two more clock reads per batch, none per
request. Neither is the design's: both are what Python adds to it.
"""

from __future__ import annotations

import asyncio
import collections
import math
import queue
import threading
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from tsobench.pd_metrics import CLIENT_BATCH, E05, E1
from tsobench.protos import pdpb_pb2

from .backoff import Backoff
from .base import Bound, ClientClosed, ClientOptions, ReplyMismatch, Strategy, Timestamp
from .deadline import LATE, AsyncWatchdog, DeadlineExceeded, ThreadWatchdog, late
from .stream import AsyncChannels, AsyncClientBase, AsyncStream, SyncChannels, SyncStream, ThreadClientBase
from .waiter import ThreadWaiter


@dataclass(slots=True)
class Batch:
    """Waiters are ``(count, answer)`` pairs; ``answer`` is a future or a thread waiter."""

    waiters: list[tuple[int, Any]] = field(default_factory=list)
    total: int = 0
    since: int = 0  # watchdog tick when sent
    sent: float = 0.0  # monotonic seconds when sent
    ready: float = 0.0  # monotonic seconds when it could have left (0: not timed: the stream was reopened)

    def add(self, count: int, answer: Any) -> None:
        self.waiters.append((count, answer))
        self.total += count


def split(batch: Batch, reply: pdpb_pb2.TsoResponse) -> list[Timestamp]:
    """Slice one reply into the callers' timestamps, in request order."""
    if reply.count != batch.total:
        raise ReplyMismatch(f"batch asked for {batch.total} timestamps, reply carries {reply.count}")
    physical, logical = reply.timestamp.physical, reply.timestamp.logical - batch.total
    out = []
    for count, _ in batch.waiters:
        logical += count
        out.append(Timestamp(physical, logical, count))
    return out


class RpcTimeEstimate:
    """PD's estimate of one Tso RPC's duration (``tsoStream.EstimatedRPCLatency``): a
    low-pass filter (1 Hz cutoff, a new sample weighing at most 0.2) over the log of
    each RPC's time, so one slow reply does not double the batches' wait; 100 µs at least."""

    RC_S = 1 / (2 * math.pi * 1.0)
    MAX_WEIGHT = 0.2
    FLOOR_S = 100e-6

    def __init__(self) -> None:
        self._log: float | None = None
        self._at = 0.0

    def add(self, at: float, seconds: float) -> None:
        """An RPC sent at ``at`` (monotonic s) took ``seconds``."""
        sample = math.log(max(seconds, 1e-6))
        if self._log is None:
            self._log = sample
        else:
            dt = max(0.0, at - self._at)
            self._log += min(dt / (self.RC_S + dt), self.MAX_WEIGHT) * (sample - self._log)
        self._at = at

    @property
    def seconds(self) -> float:
        return self.FLOOR_S if self._log is None else max(self.FLOOR_S, math.exp(self._log))


class _Lane:
    """What both APIs' lanes share: the batches in flight, their deadline, the batch timing and counters."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        self.max_batch = options.max_batch
        self.wait_s = options.batch_wait_us / 1e6
        self.rpc_concurrency = options.rpc_concurrency
        self.slot_count = options.max_inflight * options.rpc_concurrency
        self.estimate = RpcTimeEstimate()
        self.backoff = Backoff()
        self.inflight: collections.deque[Batch] = collections.deque()
        self.stream: Any = None
        self.expired = False  # the watchdog cancelled the stream
        self.rpcs = 0
        self.batched_requests = 0
        self.rpc_us_total = 0
        self.freed_at = 0.0  # when the last reply that freed a slot arrived
        self.last_sent = 0.0  # when the last batch left
        self.send_gap_us_total = 0
        self.sends_timed = 0
        self.wake_us_total = 0
        self.wakes_timed = 0
        # Per RPC, in the Go client's buckets (run --metrics-port): its time, and the requests it carried.
        self.rpc_us_sum = 0
        self.rpc_seconds = [0] * (len(E05) + 1)
        self.rpc_batches = [0] * (len(CLIENT_BATCH) + 1)
        self.rpc_best = [0] * (len(E1) + 1)

    def started(self) -> float:
        """When collecting a batch began (parallel RPCs time batches from it; otherwise no clock read)."""
        return time.monotonic() if self.rpc_concurrency > 1 else 0.0

    def collect_wait_s(self, started: float) -> float:
        """How long to keep collecting once a batch has its first request."""
        if self.rpc_concurrency == 1:
            return self.wait_s
        return self.estimate.seconds / self.rpc_concurrency - (time.monotonic() - started)

    def sending(self, batch: Batch) -> None:
        """Stamp a batch as it leaves, and count its send gap (from when it could have left)."""
        batch.sent = sent = time.monotonic()
        if batch.ready:
            self.send_gap_us_total += int((sent - batch.ready) * 1e6)
            self.sends_timed += 1
        self.last_sent = sent

    def woke(self, at: float) -> None:
        """The last caller of a batch answered at ``at`` runs again now."""
        self.wake_us_total += int((time.monotonic() - at) * 1e6)
        self.wakes_timed += 1

    def answered(self, batch: Batch, at: float) -> None:
        """Count a reply that arrived at ``at``; feed the estimate where batches are timed by it."""
        rpc_s = at - batch.sent
        requests = len(batch.waiters)
        self.rpcs += 1
        self.batched_requests += requests
        self.rpc_us_total += requests * int(rpc_s * 1e6)
        self.rpc_us_sum += int(rpc_s * 1e6)
        self.rpc_seconds[bisect_left(E05, rpc_s)] += 1
        self.rpc_batches[bisect_left(CLIENT_BATCH, requests)] += 1
        self.rpc_best[bisect_left(E1, requests)] += 1
        if self.rpc_concurrency > 1:
            self.estimate.add(batch.sent, rpc_s)
        self.freed_at = at

    def deliver(self, batch: Batch, reply: pdpb_pb2.TsoResponse, at: float) -> None:
        """The reply to its waiters, unless it came after the batch's deadline by the clock (the watchdog's
        ticks stop while the process is frozen): then they fail as late, as the watchdog would have failed them."""
        if late(batch.sent, at, self.options.timeout_s):
            _fail(batch, DeadlineExceeded(LATE))
        else:
            _answer(batch, reply)

    def expire(self, cutoff: int) -> None:
        stream, inflight = self.stream, self.inflight
        if stream is not None and inflight and inflight[0].since <= cutoff:
            self.expired = True
            stream.close()  # the reader fails what is in flight

    def failure(self, exc: BaseException, channels: SyncChannels | AsyncChannels) -> Exception:
        """The error for the waiters of a stream that just broke."""
        expired, self.expired = self.expired, False
        self.backoff.failed()
        if expired:
            error: Exception = DeadlineExceeded(LATE)
        else:
            error = exc if isinstance(exc, Exception) else ConnectionError("stream closed")
        channels.stream_failed(error)  # the leader may have moved (or frozen): the reconnect asks who leads
        return error


# ---------------------------------------------------------------- threads


class _ThreadLane(_Lane):
    """One stream with its sender thread (``run``) and a reader thread per stream."""

    def __init__(self, client: ThreadClient) -> None:
        super().__init__(client.options)
        self.client = client
        self.slots = threading.Semaphore(self.slot_count)
        self.carry: tuple[int, ThreadWaiter[Timestamp]] | None = None
        self.lock = threading.Lock()

    def _collect(self, started: float, ready: float) -> Batch | None:
        pending = self.client.pending
        first = self.carry
        if first is None:
            try:
                first = pending.get_nowait()
            except queue.Empty:
                first = pending.get()
                ready = time.monotonic()  # no caller was waiting: the batch could leave once this one came
        self.carry = None
        if first is None:  # closing
            pending.put(None)  # let the other lanes see it too
            return None
        batch = Batch()
        batch.add(*first)
        if (wait_s := self.collect_wait_s(started)) > 0:
            ready = time.monotonic() + wait_s
            self.client.stopping.wait(wait_s)
        batch.ready = ready
        while True:
            try:
                item = pending.get_nowait()
            except queue.Empty:
                return batch
            if item is None:
                pending.put(None)
                return batch
            if batch.total + item[0] > self.max_batch:
                self.carry = item
                return batch
            batch.add(*item)

    def run(self) -> None:
        client = self.client
        while True:
            started = self.started()
            ready = self.last_sent  # a sender that never waits could leave as soon as it looped
            if not self.slots.acquire(blocking=False):
                self.slots.acquire()
                ready = self.freed_at
            batch = self._collect(started, ready)
            if batch is None:
                return
            try:
                stub = None
                if self.stream is None:
                    batch.ready = 0.0  # a reconnect's wait is the backoff's, not a turn-around
                    self.backoff.wait(client.stopping)
                    stub = client.channels.stub()  # may ask for the leader: not under the watchdog's lock
                with self.lock:
                    if self.stream is None:
                        self.stream = SyncStream(stub or client.channels.stub())
                        threading.Thread(target=self._read, args=(self.stream,), daemon=True).start()
                    batch.since = client.watchdog.tick
                    self.sending(batch)
                    self.inflight.append(batch)
                    self.stream.send(client.channels.request(batch.total))
            except Exception as exc:  # a closed channel while closing: fail the batch, never the thread
                _fail(batch, ClientClosed() if client.stopping.is_set() else exc)
                self.slots.release()
                if client.stopping.is_set():
                    return

    def _read(self, stream: SyncStream) -> None:
        try:
            while True:
                reply = stream.recv()
                at = time.monotonic()
                with self.lock:
                    batch = self.inflight.popleft()
                    self.answered(batch, at)
                self.slots.release()
                self.backoff.succeeded()
                if batch.waiters:
                    batch.waiters[-1][1].woke = (self, at)  # its caller times the wake-up once it runs
                self.deliver(batch, reply, at)
        except BaseException as exc:
            with self.lock:  # fail what this stream owes; the sender reconnects
                if self.stream is stream:
                    self.stream = None
                failed, self.inflight = self.inflight, collections.deque()
                error = ClientClosed() if self.client.stopping.is_set() else self.failure(exc, self.client.channels)
            stream.close()
            for batch in failed:
                _fail(batch, error)
                self.slots.release()

    def close(self) -> None:
        with self.lock:
            if self.stream is not None:
                self.stream.close()


def _answer(batch: Batch, reply: pdpb_pb2.TsoResponse) -> None:
    """Hand each waiter its slice (``split``'s, without its list: this runs on the reply path, once a request)."""
    if reply.count != batch.total:
        _fail(batch, ReplyMismatch(f"batch asked for {batch.total} timestamps, reply carries {reply.count}"))
        return
    physical, logical = reply.timestamp.physical, reply.timestamp.logical - batch.total
    for count, answer in batch.waiters:
        logical += count
        try:  # noqa: SIM105  (free unless it raises, 3.11+; suppress() would build an object per waiter)
            answer.set_result(Timestamp(physical, logical, count))
        except asyncio.InvalidStateError:  # a cancelled caller's future
            pass


def _fail(batch: Batch, exc: BaseException) -> None:
    for _, answer in batch.waiters:
        if not (isinstance(answer, asyncio.Future) and answer.done()):
            answer.set_exception(exc)


class ThreadClient(ThreadClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self.pending: queue.SimpleQueue[tuple[int, ThreadWaiter[Timestamp]] | None] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self._lanes: list[_ThreadLane] = []
        self._local = threading.local()

    def open(self) -> None:
        super().open()
        self.watchdog = ThreadWatchdog(self.options.timeout_s, self._expire)
        for i in range(self.options.streams):
            lane = _ThreadLane(self)
            self._lanes.append(lane)
            threading.Thread(target=lane.run, name=f"tso-dispatcher-{i}", daemon=True).start()

    def counters(self) -> dict[str, int]:
        return _counters(self._lanes)

    def _expire(self, cutoff: int) -> None:
        for lane in self._lanes:
            with lane.lock:
                lane.expire(cutoff)

    def get_ts(self, count: int = 1) -> Timestamp:
        try:
            waiter = self._local.waiter
        except AttributeError:
            waiter = self._local.waiter = ThreadWaiter()
        if self.stopping.is_set():
            raise ClientClosed()
        self.pending.put((count, waiter))
        try:
            return waiter.wait()
        finally:
            if waiter.woke is not None:  # the last caller of its batch: one clock read per batch
                lane, at = waiter.woke
                waiter.woke = None
                with lane.lock:
                    lane.woke(at)

    def close(self) -> None:
        self.stopping.set()
        self.watchdog.stop()
        for lane in self._lanes:
            lane.close()
        while True:  # callers still queued get an answer: the client is closed
            try:
                item = self.pending.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].set_exception(ClientClosed())
        self.pending.put(None)
        super().close()


# ---------------------------------------------------------------- asyncio


class _AsyncLane(_Lane):
    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client.options)
        self.client = client
        self.slots = asyncio.Semaphore(self.slot_count)
        self.reader: asyncio.Task[None] | None = None
        self.sender: asyncio.Task[None] | None = None
        self.loop = client.loop
        self.ready = 0.0
        self.writing = False  # the sender awaits a write
        self.unstick = False  # the watchdog cancelled that write

    def expire(self, cutoff: int) -> None:
        stream, inflight = self.stream, self.inflight
        if stream is not None and inflight and inflight[0].since <= cutoff and not self.expired:
            super().expire(cutoff)
            if self.writing and self.sender is not None:
                # grpc.aio may leave a write pending forever on a cancelled call
                # (a server that never answered the handshake): wake the sender.
                self.unstick = True
                self.sender.cancel()

    async def _collect(self, started: float) -> Batch:
        client = self.client
        pending = client.pending
        ready = self.ready
        while not pending:
            client.wake.clear()
            await client.wake.wait()
            ready = max(ready, client.queued_at)
        if (wait_s := self.collect_wait_s(started)) > 0:
            ready = time.monotonic() + wait_s
            await asyncio.sleep(wait_s)
        batch = Batch()
        batch.ready = ready
        if client.pending_total <= self.max_batch:  # the common case: take everything at once
            batch.waiters, batch.total = list(pending), client.pending_total
            pending.clear()
            client.pending_total = 0
            return batch
        while pending and (not batch.waiters or batch.total + pending[0][0] <= self.max_batch):
            count, answer = pending.popleft()
            client.pending_total -= count
            batch.add(count, answer)
        return batch

    async def run(self) -> None:
        client = self.client
        while True:
            started = self.started()
            self.ready = self.last_sent  # a sender that never waits could leave as soon as it looped
            if self.slots.locked():
                await self.slots.acquire()
                self.ready = self.freed_at
            else:
                await self.slots.acquire()
            batch = await self._collect(started)
            if self.stream is None:
                batch.ready = 0.0  # a reconnect's wait is the backoff's, not a turn-around
                await self.backoff.wait_async()
                try:
                    stub = await client.channels.stub()
                except Exception as exc:  # no leader reachable within the deadline: fail the batch, never the task
                    _fail(batch, exc)
                    self.slots.release()
                    continue
                self.stream = AsyncStream(stub)
                self.reader = asyncio.create_task(self._read(self.stream))
            batch.since = client.watchdog.tick
            self.sending(batch)
            self.inflight.append(batch)
            self.writing = True
            try:
                await self.stream.send(client.channels.request(batch.total))
            except asyncio.CancelledError:
                if not self.unstick:
                    raise
                self.unstick = False
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                if _task_cancelling():
                    raise
            except Exception:
                pass  # on a broken stream the reader sees the same error and fails the batch
            finally:
                self.writing = False

    async def _read(self, stream: AsyncStream) -> None:
        try:
            while True:
                reply = await stream.recv()
                at = time.monotonic()
                batch = self.inflight.popleft()
                self.answered(batch, at)
                self.slots.release()
                self.backoff.succeeded()
                self.deliver(batch, reply, at)
                self.loop.call_soon(self.woke, at)  # runs after the wake-ups _answer queued
        except (Exception, asyncio.CancelledError) as exc:
            if self.stream is stream:
                self.stream = None
            failed, self.inflight = self.inflight, collections.deque()
            error = ClientClosed() if self.client.closed else self.failure(exc, self.client.channels)
            stream.close()
            for batch in failed:
                _fail(batch, error)
                self.slots.release()
            if isinstance(exc, asyncio.CancelledError) and _task_cancelling():
                raise

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


def _task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class AsyncClient(AsyncClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self._lanes: list[_AsyncLane] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.pending: collections.deque[tuple[int, asyncio.Future[Timestamp]]] = collections.deque()
        self.pending_total = 0
        self.closed = False

    async def open(self) -> None:
        await super().open()
        self.loop = asyncio.get_running_loop()
        self.queued_at = 0.0
        self.wake = asyncio.Event()
        self.watchdog = AsyncWatchdog(self.options.timeout_s, self._expire)
        for _ in range(self.options.streams):
            lane = _AsyncLane(self)
            self._lanes.append(lane)
            lane.sender = asyncio.create_task(lane.run())
            self._tasks.append(lane.sender)

    def counters(self) -> dict[str, int]:
        return _counters(self._lanes)

    def _expire(self, cutoff: int) -> None:
        for lane in self._lanes:
            lane.expire(cutoff)

    async def get_ts(self, count: int = 1) -> Timestamp:
        if self.closed:
            raise ClientClosed()
        future: asyncio.Future[Timestamp] = self.loop.create_future()
        if not self.pending:
            self.queued_at = time.monotonic()  # one clock read per batch: its first caller's
            self.wake.set()
        self.pending.append((count, future))
        self.pending_total += count
        return await future

    async def close(self) -> None:
        self.closed = True
        await self.watchdog.stop()
        for task in self._tasks:
            task.cancel()
        for lane in self._lanes:
            lane.close()
        for _, future in self.pending:
            if not future.done():
                future.set_exception(ClientClosed())
        self.pending.clear()
        readers = [lane.reader for lane in self._lanes if lane.reader]
        await asyncio.gather(*self._tasks, *readers, return_exceptions=True)
        await super().close()


def _counters(lanes: list[_ThreadLane] | list[_AsyncLane]) -> dict[str, int]:
    return {
        "rpcs": sum(lane.rpcs for lane in lanes),
        "batched_requests": sum(lane.batched_requests for lane in lanes),
        "rpc_us_total": sum(lane.rpc_us_total for lane in lanes),
        "reconnects": sum(lane.backoff.attempts for lane in lanes),
        "send_gap_us_total": sum(lane.send_gap_us_total for lane in lanes),
        "sends_timed": sum(lane.sends_timed for lane in lanes),
        "wake_us_total": sum(lane.wake_us_total for lane in lanes),
        "wakes_timed": sum(lane.wakes_timed for lane in lanes),
        "rpc_us_sum": sum(lane.rpc_us_sum for lane in lanes),
        **_buckets("rpc_seconds_le_", [lane.rpc_seconds for lane in lanes]),
        **_buckets("rpc_batch_le_", [lane.rpc_batches for lane in lanes]),
        **_buckets("rpc_best_le_", [lane.rpc_best for lane in lanes]),
    }


def _buckets(prefix: str, per_lane: list[list[int]]) -> dict[str, int]:
    """Bucket counts summed over the lanes, as counters named ``prefix<i>``."""
    return {f"{prefix}{i}": sum(column) for i, column in enumerate(zip(*per_lane, strict=True))}


def _bound(options: ClientOptions, callers: int) -> Bound:
    per_stream = options.max_inflight * options.rpc_concurrency
    return Bound(
        options.streams * per_stream,
        "batches",
        f"{options.streams} stream(s) x {per_stream} batch(es) in flight each (max-inflight x rpc-concurrency); "
        "a batch carries every caller that queued",
    )


STRATEGY = Strategy(
    "dispatcher",
    "callers enqueue; one sender batches them into count=k requests (PD's design)",
    ThreadClient,
    AsyncClient,
    settings=("streams", "max_batch", "batch_wait_us", "max_inflight", "rpc_concurrency", "connections"),
    bound=_bound,
    recovery={
        "abort": "its one stream breaks once and one reconnect answers every queued caller",
        "kill": "one reconnect of its stream answers every queued caller in one batch",
        "leader": "one reconnect to the new leader answers every queued caller in one batch",
    },
)
