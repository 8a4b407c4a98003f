"""dispatcher: PD's own client design. Callers enqueue; per stream, a sender
takes everything pending (up to ``max_batch`` timestamps, optionally waiting
``batch_wait_us`` for more) into ONE TsoRequest with count = sum, and a reader
splits each reply back to its callers in order. Only the sender writes and only
the reader reads, so the stream is never shared unsafely.

The reply carries the largest timestamp of the batch; caller i of the batch
gets the i-th slice of the range, counted up from ``logical - total + 1``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import queue
import threading
import time
from dataclasses import dataclass, field

from tsobench.protos import pdpb_pb2

from .base import ClientOptions, ReplyMismatch, Strategy, Timestamp
from .stream import AsyncClientBase, AsyncStream, SyncStream, ThreadClientBase

_STOP = None


@dataclass(slots=True)
class Waiter:
    count: int
    future: concurrent.futures.Future[Timestamp] | asyncio.Future[Timestamp]


@dataclass(slots=True)
class Batch:
    waiters: list[Waiter] = field(default_factory=list)
    total: int = 0

    def fits(self, count: int, max_batch: int) -> bool:
        return not self.waiters or self.total + count <= max_batch

    def add(self, waiter: Waiter) -> None:
        self.waiters.append(waiter)
        self.total += waiter.count


def split(batch: Batch, reply: pdpb_pb2.TsoResponse) -> list[Timestamp]:
    """Slice one reply into the callers' timestamps, in request order."""
    if reply.count != batch.total:
        raise ReplyMismatch(f"batch asked for {batch.total} timestamps, reply carries {reply.count}")
    physical, logical = reply.timestamp.physical, reply.timestamp.logical - batch.total
    out = []
    for waiter in batch.waiters:
        logical += waiter.count
        out.append(Timestamp(physical, logical, waiter.count))
    return out


class _Collector:
    """Holds the request that did not fit the previous batch."""

    def __init__(self, options: ClientOptions) -> None:
        self.max_batch = options.max_batch
        self.wait_s = options.batch_wait_us / 1e6
        self.carry: Waiter | None = None


# ---------------------------------------------------------------- threads


class _ThreadLane:
    """One stream with its sender thread (the caller of ``run``) and reader thread."""

    def __init__(self, client: ThreadClient) -> None:
        self.client = client
        self.slots = threading.Semaphore(client.options.max_inflight)
        self.collector = _Collector(client.options)
        self._stream: SyncStream | None = None
        self._inflight: collections.deque[Batch] = collections.deque()
        self._lock = threading.Lock()

    def _collect(self) -> Batch | None:
        c, pending = self.collector, self.client.pending
        batch = Batch()
        first = c.carry or pending.get()
        c.carry = None
        if first is _STOP:
            pending.put(_STOP)  # let the other lanes see it too
            return None
        batch.add(first)
        deadline = time.monotonic() + c.wait_s
        while True:
            try:
                timeout = deadline - time.monotonic()
                waiter = pending.get(timeout=timeout) if timeout > 0 else pending.get_nowait()
            except queue.Empty:
                return batch
            if waiter is _STOP:
                pending.put(_STOP)  # let the other lanes see it too
                return batch
            if not batch.fits(waiter.count, c.max_batch):
                c.carry = waiter
                return batch
            batch.add(waiter)

    def run(self) -> None:
        while True:
            self.slots.acquire()
            batch = self._collect()
            if batch is None:
                return
            with self._lock:
                if self._stream is None:
                    self._stream = SyncStream(self.client.channels.stub())
                    threading.Thread(target=self._read, args=(self._stream,), daemon=True).start()
                self._inflight.append(batch)
                self._stream.send(self.client.channels.request(batch.total))

    def _read(self, stream: SyncStream) -> None:
        try:
            while True:
                reply = stream.recv()
                with self._lock:
                    batch = self._inflight.popleft()
                self.slots.release()
                try:
                    for waiter, ts in zip(batch.waiters, split(batch, reply), strict=True):
                        waiter.future.set_result(ts)
                except ReplyMismatch as exc:
                    _fail(batch, exc)
        except BaseException as exc:
            with self._lock:  # fail what this stream owes; the sender reconnects
                if self._stream is stream:
                    self._stream = None
                failed, self._inflight = self._inflight, collections.deque()
            stream.close()
            for batch in failed:
                _fail(batch, exc)
                self.slots.release()

    def close(self) -> None:
        with self._lock:
            if self._stream:
                self._stream.close()


def _fail(batch: Batch, exc: BaseException) -> None:
    for waiter in batch.waiters:
        if not waiter.future.done():
            waiter.future.set_exception(exc)


class ThreadClient(ThreadClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self.pending: queue.SimpleQueue[Waiter | None] = queue.SimpleQueue()
        self._lanes: list[_ThreadLane] = []

    def open(self) -> None:
        super().open()
        for i in range(self.options.streams):
            lane = _ThreadLane(self)
            self._lanes.append(lane)
            threading.Thread(target=lane.run, name=f"tso-dispatcher-{i}", daemon=True).start()

    def get_ts(self, count: int = 1) -> Timestamp:
        future: concurrent.futures.Future[Timestamp] = concurrent.futures.Future()
        self.pending.put(Waiter(count, future))
        try:
            return future.result(self.options.timeout_s)
        except concurrent.futures.TimeoutError:
            raise TimeoutError("no reply within the request deadline") from None

    def close(self) -> None:
        self.pending.put(_STOP)
        for lane in self._lanes:
            lane.close()
        super().close()


# ---------------------------------------------------------------- asyncio


class _AsyncLane:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.slots = asyncio.Semaphore(client.options.max_inflight)
        self.collector = _Collector(client.options)
        self._stream: AsyncStream | None = None
        self._inflight: collections.deque[Batch] = collections.deque()
        self._reader: asyncio.Task[None] | None = None

    async def _collect(self) -> Batch:
        c, pending = self.collector, self.client.pending
        batch = Batch()
        first = c.carry or await pending.get()
        c.carry = None
        batch.add(first)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + c.wait_s
        while True:
            if pending.empty():
                timeout = deadline - loop.time()
                if timeout <= 0:
                    return batch
                try:
                    waiter = await asyncio.wait_for(pending.get(), timeout)
                except TimeoutError:
                    return batch
            else:
                waiter = pending.get_nowait()
            if not batch.fits(waiter.count, c.max_batch):
                c.carry = waiter
                return batch
            batch.add(waiter)

    async def run(self) -> None:
        while True:
            await self.slots.acquire()
            batch = await self._collect()
            if self._stream is None:
                self._stream = AsyncStream(self.client.channels.stub())
                self._reader = asyncio.create_task(self._read(self._stream))
            self._inflight.append(batch)
            # On a broken stream the reader sees the same error and fails the batch.
            with contextlib.suppress(Exception):
                await self._stream.send(self.client.channels.request(batch.total))

    async def _read(self, stream: AsyncStream) -> None:
        try:
            while True:
                reply = await stream.recv()
                batch = self._inflight.popleft()
                self.slots.release()
                try:
                    for waiter, ts in zip(batch.waiters, split(batch, reply), strict=True):
                        if not waiter.future.done():
                            waiter.future.set_result(ts)
                except ReplyMismatch as exc:
                    _fail(batch, exc)
        except BaseException as exc:
            if self._stream is stream:
                self._stream = None
            failed, self._inflight = self._inflight, collections.deque()
            stream.close()
            for batch in failed:
                _fail(batch, exc if isinstance(exc, Exception) else ConnectionError("stream closed"))
                self.slots.release()
            if not isinstance(exc, Exception):
                raise

    def close(self) -> None:
        if self._stream:
            self._stream.close()
        if self._reader:
            self._reader.cancel()


class AsyncClient(AsyncClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self._lanes: list[_AsyncLane] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        await super().open()
        self.pending: asyncio.Queue[Waiter] = asyncio.Queue()
        for _ in range(self.options.streams):
            lane = _AsyncLane(self)
            self._lanes.append(lane)
            self._tasks.append(asyncio.create_task(lane.run()))

    async def get_ts(self, count: int = 1) -> Timestamp:
        future: asyncio.Future[Timestamp] = asyncio.get_running_loop().create_future()
        self.pending.put_nowait(Waiter(count, future))
        async with asyncio.timeout(self.options.timeout_s):
            return await future

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for lane in self._lanes:
            lane.close()
        await super().close()


STRATEGY = Strategy(
    "dispatcher",
    "callers enqueue; one sender batches them into count=k requests (PD's design)",
    ThreadClient,
    AsyncClient,
)
