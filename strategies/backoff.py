"""Reconnect backoff: after a stream fails, wait before opening the next one.

Without it, callers retry a dead endpoint in a tight loop and the error count
measures the loop, not the outage. Exponential from 10 ms to 500 ms, reset by
the first reply on a new stream (PD's client also retries stream creation on an
interval). The wait doubles per failed attempt after a wait, not per failed
request: streams that one abort breaks together (a pool's, the callers of
per-request) count once, or a single blip would cost the 500 ms cap.
``attempts`` counts streams opened after a failure, reported apart from
failed requests.
"""

from __future__ import annotations

import asyncio
import threading
import time

FIRST_S = 0.010
LONGEST_S = 0.500


class Backoff:
    def __init__(self) -> None:
        self.delay_s = 0.0  # 0: healthy, connect at once
        self.attempts = 0  # reconnects after a failure
        self._not_before = 0.0

    def failed(self) -> None:
        now = time.monotonic()
        if now < self._not_before:
            return  # a failure while backing off comes from the same outage: it does not double the wait
        self.delay_s = min(LONGEST_S, max(FIRST_S, self.delay_s * 2))
        self._not_before = now + self.delay_s

    def succeeded(self) -> None:
        self.delay_s = 0.0

    def due(self) -> bool:
        """No wait pending: the next try may happen now."""
        return time.monotonic() >= self._not_before

    def _wait_s(self) -> float:
        if not self.delay_s:
            return 0.0
        self.attempts += 1
        return self._not_before - time.monotonic()

    def wait(self, stop: threading.Event | None = None) -> None:
        """Before opening a stream (thread API)."""
        if (wait := self._wait_s()) > 0:
            if stop is None:
                time.sleep(wait)
            else:
                stop.wait(wait)

    async def wait_async(self) -> None:
        """Before opening a stream (asyncio API)."""
        if (wait := self._wait_s()) > 0:
            await asyncio.sleep(wait)


class CountsReconnects:
    """For clients with one ``backoff``: their reconnects, as the harness reads them (``counters()``)."""

    backoff: Backoff

    def counters(self) -> dict[str, int]:
        return {"reconnects": self.backoff.attempts}
