"""null: the harness's own ceiling. Answers from an in-process counter, with no
RPC and no server, and the same ``Timestamp`` semantics (so the checker passes).
A strategy whose throughput comes near this one's is measuring the harness.

The asyncio client yields to the loop once per request (what ``sleep(0)`` does,
without its coroutine), the least any real awaitable costs; without it one caller
would never let the others run.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Generator

from .base import LOGICAL_BITS, ClientOptions, Strategy, Timestamp

_LOGICAL_MASK = (1 << LOGICAL_BITS) - 1


class _Counter:
    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        self._last = (time.time_ns() // 1_000_000) << LOGICAL_BITS  # physical now, logical 0

    def _take(self, count: int) -> Timestamp:
        self._last = last = self._last + count
        return Timestamp(last >> LOGICAL_BITS, last & _LOGICAL_MASK, count)


class ThreadClient(_Counter):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self._lock = threading.Lock()

    def open(self) -> None:
        pass

    def get_ts(self, count: int = 1) -> Timestamp:
        with self._lock:
            return self._take(count)

    def close(self) -> None:
        pass


@types.coroutine
def _yield() -> Generator[None, None, None]:
    """One turn of the loop: the task is scheduled again at once (``asyncio.sleep(0)``'s own step)."""
    yield


class AsyncClient(_Counter):
    async def open(self) -> None:
        pass

    async def get_ts(self, count: int = 1) -> Timestamp:
        await _yield()
        return self._take(count)

    async def close(self) -> None:
        pass


STRATEGY = Strategy(
    "null",
    "HARNESS CEILING: an in-process counter, no RPC",
    ThreadClient,
    AsyncClient,
    baseline=True,
    benchmark=False,  # no RPC, no round trip: no bound either
)
