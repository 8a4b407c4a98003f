"""A TSO server that behaves like PD's: oracle, window, gRPC service, launchers.

The names below load on first use, so that importing the server's config (or
starting ``python -m tsobench.server``) does not load grpc before the command
line has decided how loud gRPC's own log may be.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import DEFAULT_CLUSTER_ID, ServerConfig, ServerKnobs
    from .embedded import ChildServer, InProcessServer
    from .metrics import ServerCounters
    from .oracle import LOGICAL_BITS, MAX_LOGICAL, compose

_WHERE = {
    "DEFAULT_CLUSTER_ID": "config",
    "ServerConfig": "config",
    "ServerKnobs": "config",
    "ChildServer": "embedded",
    "InProcessServer": "embedded",
    "ServerCounters": "metrics",
    "LOGICAL_BITS": "oracle",
    "MAX_LOGICAL": "oracle",
    "compose": "oracle",
}
__all__ = [
    "DEFAULT_CLUSTER_ID",
    "LOGICAL_BITS",
    "MAX_LOGICAL",
    "ChildServer",
    "InProcessServer",
    "ServerConfig",
    "ServerCounters",
    "ServerKnobs",
    "compose",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
