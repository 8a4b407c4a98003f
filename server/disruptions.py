"""Disruptions the server can be told to inject (through the admin service), and
the cheap checks the Tso handler makes for them on every request. (The harness's
``--fault`` schedule, ``bench/runs/injector.py``, drives them from outside.)

Everything runs on the server's one event loop, so plain attributes suffice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Disruptions:
    def __init__(self) -> None:
        self.abort_epoch = 0  # a stream opened in an older epoch is aborted at its next request
        self._answering = asyncio.Event()
        self._answering.set()
        self._stall_end: asyncio.TimerHandle | None = None
        self._delay_until = 0.0
        self._delay_s = 0.0
        self.on_stall: Callable[[bool], None] = lambda stalled: None  # health says NOT_SERVING while stalled

    def abort_streams(self) -> None:
        self.abort_epoch += 1

    def stall(self, duration_s: float) -> None:
        """Answer nothing for duration_s (overlapping stalls end at the later end)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + duration_s
        if self._stall_end is not None:
            if self._stall_end.when() >= end:
                return
            self._stall_end.cancel()
        self._answering.clear()
        self._stall_end = loop.call_at(end, self._end_stall)
        self.on_stall(True)

    def end_stall(self) -> None:
        """End a stall under way now (the admin's ``Stall(0)``)."""
        if self._stall_end is not None:
            self._stall_end.cancel()
            self._end_stall()

    def _end_stall(self) -> None:
        self._stall_end = None
        self._answering.set()  # waiters wake in the order they came: queued requests are answered in order
        self.on_stall(False)

    @property
    def stalled(self) -> bool:
        return not self._answering.is_set()

    async def pass_stall(self) -> None:
        await self._answering.wait()

    def delay(self, duration_s: float, delay_ms: float) -> None:
        self._delay_until = asyncio.get_running_loop().time() + duration_s
        self._delay_s = delay_ms / 1000.0

    def extra_delay_s(self) -> float:
        if self._delay_until and asyncio.get_running_loop().time() < self._delay_until:
            return self._delay_s
        return 0.0
