"""locked: one shared stream; callers take turns in FIFO order, holding it
across the write and its matching read, so one request is in flight at a time."""

from __future__ import annotations

from .base import ClientOptions, Strategy
from .exclusive import AsyncClient as _AsyncExclusive
from .exclusive import ThreadClient as _ThreadExclusive


def _thread(options: ClientOptions) -> _ThreadExclusive:
    return _ThreadExclusive(options, streams=1)


def _asyncio(options: ClientOptions) -> _AsyncExclusive:
    return _AsyncExclusive(options, streams=1)


STRATEGY = Strategy("locked", "one shared stream, held across send+receive, FIFO turns", _thread, _asyncio)
