"""The one small interface every strategy implements, for threads and asyncio."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

LOGICAL_BITS = 18


class Timestamp(NamedTuple):
    """What a caller gets: the largest timestamp of its ``count``, like PD's reply.

    A named tuple, not a dataclass: one is made per request, and a frozen
    dataclass's ``__init__`` costs several times more in that hot path."""

    physical: int
    logical: int
    count: int = 1  # type: ignore[assignment]  # PD's name; it hides tuple.count, which nobody needs here

    @property
    def last(self) -> int:
        return self.physical << LOGICAL_BITS | self.logical

    @property
    def first(self) -> int:
        return self.last - self.count + 1


@dataclass(frozen=True)
class ClientOptions:
    target: str  # HOST:PORT, or several comma-separated: the client finds the leader (GetMembers)
    cluster_id: int | None = None  # None: learn it from GetMembers, as PD clients do
    pool_size: int = 8
    streams: int = 1  # dispatcher lanes
    max_batch: int = 10_000
    batch_wait_us: int = 0
    max_inflight: int = 1  # dispatcher batches in flight per stream (PD's client: 1)
    connections: int = 1  # distinct channels (TCP connections) streams are spread over
    timeout_s: float = 5.0  # per-request deadline
    cacert: str | None = None  # TLS: PEM file of the CA that signed the servers' certificates
    cert: str | None = None  # mutual TLS: the client's certificate and key (PEM files)
    key: str | None = None

    def __post_init__(self) -> None:
        for name in ("pool_size", "streams", "max_batch", "max_inflight", "connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1")
        if self.batch_wait_us < 0 or self.timeout_s <= 0:
            raise ValueError("batch wait must be >= 0 and timeout > 0")
        if (self.cert is None) != (self.key is None):
            raise ValueError("--cert and --key go together (mutual TLS needs both)")

    @property
    def tls(self) -> bool:
        return any((self.cacert, self.cert, self.key))


@runtime_checkable
class TsoClient(Protocol):
    """Thread API: many threads call ``get_ts`` at once."""

    def open(self) -> None: ...
    def get_ts(self, count: int = 1) -> Timestamp: ...
    def close(self) -> None: ...


@runtime_checkable
class AsyncTsoClient(Protocol):
    """asyncio API: many tasks await ``get_ts`` at once on one loop."""

    async def open(self) -> None: ...
    async def get_ts(self, count: int = 1) -> Timestamp: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class Strategy:
    """A named way of sharing streams, with a client factory per API."""

    name: str
    summary: str
    thread: Callable[[ClientOptions], TsoClient]
    asyncio: Callable[[ClientOptions], AsyncTsoClient]
    safe: bool = True  # False only for the negative control
    baseline: bool = False  # True for the harness's own ceiling (no RPC): not a design to choose


APIS = ("thread", "asyncio")


class ReplyMismatch(RuntimeError):
    """The server answered a different count than was asked for."""
