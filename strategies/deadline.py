"""One watchdog per client instead of a timer per request.

A request notes the watchdog's current ``tick`` (an attribute read, no clock
call, no timer handle); a few times a second the watchdog advances the tick and
asks the client to expire whatever started ``ticks`` ago or earlier. Deadlines
fire between ``timeout`` and ``timeout + period`` after the start: cheap and
coarse, like PD's client, which checks batch deadlines in one goroutine.

Ticks stop while the process is frozen (SIGSTOP, a paused VM): a reply that waited in the socket
meanwhile would arrive with its tick still young. So a client also checks each reply against the
clock when it completes (``late``: one clock read per reply or batch, which it takes anyway), and
fails a reply that came after its deadline as ``DeadlineExceeded`` (counted as ``timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Callable

IDLE = -1  # the tick of something that is not waiting
LATE = "no reply within the request deadline"  # what a request whose stream the watchdog cancelled fails with


class DeadlineExceeded(TimeoutError):
    """No answer within the request deadline (counted as ``timeout``)."""


def late(sent: float, at: float, timeout_s: float) -> bool:
    """A reply at ``at`` (time.monotonic) to what was sent at ``sent`` came after its deadline."""
    return at - sent > timeout_s


def period_for(timeout_s: float) -> float:
    """Scan a few times a second, and at least four times per deadline."""
    return min(0.2, timeout_s / 4)


class _Watchdog:
    def __init__(self, timeout_s: float, expire: Callable[[int], None]) -> None:
        self.period = period_for(timeout_s)
        self.ticks = max(1, math.ceil(timeout_s / self.period))
        self.tick = 0
        self._expire = expire

    def _advance(self) -> None:
        self.tick += 1
        self._expire(self.tick - self.ticks)  # everything started at or before this tick is late


class ThreadWatchdog(_Watchdog):
    """A daemon thread; ``expire(cutoff)`` runs on it."""

    def __init__(self, timeout_s: float, expire: Callable[[int], None]) -> None:
        super().__init__(timeout_s, expire)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tso-deadlines", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._advance()

    def stop(self) -> None:
        self._stop.set()


class AsyncWatchdog(_Watchdog):
    """A task on the client's loop; ``expire(cutoff)`` runs on the loop."""

    def __init__(self, timeout_s: float, expire: Callable[[int], None]) -> None:
        super().__init__(timeout_s, expire)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            self._advance()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
