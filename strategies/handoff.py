"""A FIFO hand-off of exclusive items (streams): the longest waiter gets the
next free one, and nobody can barge past the queue.

``threading.Lock`` and a ``LifoQueue`` let a caller that just released a
stream take it straight back before a woken waiter runs, so some callers
starve while others run hot. Here ``release`` gives the item to the oldest
waiter directly. Waiters note the watchdog tick they started waiting at, and
``expire(cutoff)`` fails those that waited too long (their deadline), oldest
first, without a timer per waiter.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Generic, TypeVar

from .base import ClientClosed
from .deadline import DeadlineExceeded
from .waiter import ThreadWaiter

T = TypeVar("T")


class ThreadHandOff(Generic[T]):
    def __init__(self, items: list[T]) -> None:
        self._free = list(items)
        self._waiters: collections.deque[ThreadWaiter[T]] = collections.deque()
        self._mutex = threading.Lock()
        self._closed = False

    def acquire(self, tick: int) -> T:
        with self._mutex:
            if self._closed:
                raise ClientClosed()
            if self._free and not self._waiters:
                return self._free.pop()
            waiter: ThreadWaiter[T] = ThreadWaiter(tick)
            self._waiters.append(waiter)
        return waiter.wait()

    def release(self, item: T) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set_result(item)
            else:
                self._free.append(item)

    def expire(self, cutoff: int) -> None:
        with self._mutex:
            while self._waiters and self._waiters[0].since <= cutoff:
                self._waiters.popleft().set_exception(DeadlineExceeded("waited too long for a free stream"))

    def close(self) -> None:
        """Fail every waiter: a closed client answers nobody, and says so."""
        with self._mutex:
            self._closed = True
            while self._waiters:
                self._waiters.popleft().set_exception(ClientClosed())


class AsyncHandOff(Generic[T]):
    def __init__(self, items: list[T]) -> None:
        self._free = list(items)
        self._waiters: collections.deque[tuple[int, asyncio.Future[T]]] = collections.deque()
        self._closed = False

    async def acquire(self, tick: int) -> T:
        if self._closed:
            raise ClientClosed()
        if self._free and not self._waiters:
            return self._free.pop()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append((tick, future))
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # handed an item as we were cancelled: pass it on
                self.release(future.result())
            raise

    def release(self, item: T) -> None:
        while self._waiters:
            _, future = self._waiters.popleft()
            if not future.done():  # skip waiters that were cancelled or expired
                future.set_result(item)
                return
        self._free.append(item)

    def expire(self, cutoff: int) -> None:
        while self._waiters and self._waiters[0][0] <= cutoff:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_exception(DeadlineExceeded("waited too long for a free stream"))

    def close(self) -> None:
        self._closed = True
        while self._waiters:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_exception(ClientClosed())
