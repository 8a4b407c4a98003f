"""The asyncio event loop for work timed to the microsecond: the server's emulated round trips and
the bench's open-loop callers."""

from __future__ import annotations

import asyncio
import selectors


def select_event_loop() -> asyncio.AbstractEventLoop:
    """asyncio's own loop on select(), which wakes when a timer is due to the microsecond, where epoll
    (asyncio's default) rounds every wait up to the next millisecond. select's limit on descriptors does
    not bite: the loop watches two (grpc.aio polls its connections on a thread of its own)."""
    return asyncio.SelectorEventLoop(selectors.SelectSelector())
