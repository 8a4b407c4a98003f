"""A caller thread's wait for one answer, without a condition variable or a timer.

The waiter is a lock taken at creation; whoever has the answer stores it and
releases the lock, and the caller's ``wait`` acquires it (so it is taken again,
ready for the next answer: a thread may keep one waiter for all its requests).
Used by the dispatcher (a reader answers a batch's callers) and the hand-off
(a released stream goes to the oldest waiter).
"""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar

from .deadline import IDLE

T = TypeVar("T")


class ThreadWaiter(Generic[T]):
    __slots__ = ("error", "lock", "since", "value", "woke")

    def __init__(self, since: int = IDLE) -> None:
        self.since = since  # the watchdog tick it started waiting at, where a deadline covers the wait
        self.value: T | None = None
        self.error: BaseException | None = None
        self.woke: Any = None  # the dispatcher's mark on the last caller of a batch: (lane, reply's arrival)
        self.lock = threading.Lock()
        self.lock.acquire()

    def set_result(self, value: T) -> None:
        self.value, self.error = value, None
        self.lock.release()

    def set_exception(self, error: BaseException) -> None:
        self.value, self.error = None, error
        self.lock.release()

    def wait(self) -> T:
        """Block until answered; raise what it was failed with."""
        self.lock.acquire()
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # set_result stored a T
