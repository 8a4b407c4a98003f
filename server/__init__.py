"""A TSO server that behaves like PD's: oracle, window, gRPC service, launchers.

The names below load on first use, so that importing the server's config (or
starting ``python -m tsobench.server``) does not load grpc before the command
line has decided how loud gRPC's own log may be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tsobench.lazy import lazy_names

if TYPE_CHECKING:
    from .config import DEFAULT_CLUSTER_ID, ServerConfig, ServerKnobs
    from .embedded import ChildCluster, ChildServer, InProcessServer
    from .metrics import ServerCounters
    from .oracle import LOGICAL_BITS, MAX_LOGICAL, compose

__getattr__ = lazy_names(
    __name__,
    {
        "DEFAULT_CLUSTER_ID": "config",
        "ServerConfig": "config",
        "ServerKnobs": "config",
        "ChildCluster": "embedded",
        "ChildServer": "embedded",
        "InProcessServer": "embedded",
        "ServerCounters": "metrics",
        "LOGICAL_BITS": "oracle",
        "MAX_LOGICAL": "oracle",
        "compose": "oracle",
    },
)
__all__ = [
    "DEFAULT_CLUSTER_ID",
    "LOGICAL_BITS",
    "MAX_LOGICAL",
    "ChildCluster",
    "ChildServer",
    "InProcessServer",
    "ServerConfig",
    "ServerCounters",
    "ServerKnobs",
    "compose",
]
