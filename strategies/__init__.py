"""Ways for many callers to share gRPC Tso streams, one module each."""

from .base import (
    APIS,
    AsyncTsoClient,
    Bound,
    ClientClosed,
    ClientOptions,
    ReplyMismatch,
    Strategy,
    Timestamp,
    TsoClient,
)
from .registry import all_strategies, get, names, problems, unavailable

__all__ = [
    "APIS",
    "AsyncTsoClient",
    "Bound",
    "ClientClosed",
    "ClientOptions",
    "ReplyMismatch",
    "Strategy",
    "Timestamp",
    "TsoClient",
    "all_strategies",
    "get",
    "names",
    "problems",
    "unavailable",
]
