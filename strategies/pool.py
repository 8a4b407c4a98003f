"""pool: ``pool_size`` streams; a caller checks one out exclusively for its
write and read and hands it to the longest waiter. ``locked`` times ``pool_size``."""

from __future__ import annotations

from .base import Bound, ClientOptions, Strategy
from .exclusive import AsyncClient, ThreadClient


def _bound(options: ClientOptions, callers: int) -> Bound:
    return Bound(options.pool_size, "requests", f"{options.pool_size} streams, each held across one request")


STRATEGY = Strategy(
    "pool",
    "N streams, each checked out exclusively, FIFO hand-off",
    ThreadClient,
    AsyncClient,
    settings=("pool_size",),
    bound=_bound,
    recovery={
        "abort": "its streams break and reconnect independently",
        "kill": "its streams reconnect independently: the first to get through serves its caller",
    },
    fewest_failures="as only the callers holding a stream fail while the others wait for one",
)
