"""locked: one shared stream; callers take turns in FIFO order, holding it
across the write and its matching read, so one request is in flight at a time."""

from __future__ import annotations

from .base import Bound, ClientOptions, Strategy
from .exclusive import AsyncClient as _AsyncExclusive
from .exclusive import ThreadClient as _ThreadExclusive


def _thread(options: ClientOptions) -> _ThreadExclusive:
    return _ThreadExclusive(options, streams=1)


def _asyncio(options: ClientOptions) -> _AsyncExclusive:
    return _AsyncExclusive(options, streams=1)


def _bound(options: ClientOptions, callers: int) -> Bound:
    return Bound(1, "requests", "one stream, held across each request's write and read")


STRATEGY = Strategy(
    "locked",
    "one shared stream, held across send+receive, FIFO turns",
    _thread,
    _asyncio,
    bound=_bound,
    recovery={
        "abort": "its one stream breaks once and one reconnect serves every caller",
        "kill": "one reconnect of its one stream serves every waiting caller",
        "leader": "one reconnect of its one stream to the new leader serves every waiting caller",
    },
    fewest_failures="as only the caller holding its one stream fails while the others wait their turn",
)
