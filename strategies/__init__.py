"""Ways for many callers to share gRPC Tso streams, one module each."""

from .base import APIS, AsyncTsoClient, ClientOptions, ReplyMismatch, Strategy, Timestamp, TsoClient
from .registry import all_strategies, get, names

__all__ = [
    "APIS",
    "AsyncTsoClient",
    "ClientOptions",
    "ReplyMismatch",
    "Strategy",
    "Timestamp",
    "TsoClient",
    "all_strategies",
    "get",
    "names",
]
