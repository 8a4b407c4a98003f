"""A TSO server that behaves like PD's: oracle, window, gRPC service, launchers."""

from .config import DEFAULT_CLUSTER_ID, ServerConfig
from .embedded import ChildServer, InProcessServer
from .metrics import ServerCounters
from .oracle import LOGICAL_BITS, MAX_LOGICAL, compose

__all__ = [
    "DEFAULT_CLUSTER_ID",
    "LOGICAL_BITS",
    "MAX_LOGICAL",
    "ChildServer",
    "InProcessServer",
    "ServerConfig",
    "ServerCounters",
    "compose",
]
