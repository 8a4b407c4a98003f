"""pool: ``pool_size`` streams; a caller checks one out exclusively for its
write and read and hands it to the longest waiter. ``locked`` times ``pool_size``."""

from __future__ import annotations

from .base import Strategy
from .exclusive import AsyncClient, ThreadClient

STRATEGY = Strategy("pool", "N streams, each checked out exclusively, FIFO hand-off", ThreadClient, AsyncClient)
