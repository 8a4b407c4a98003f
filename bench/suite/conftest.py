"""Fixtures of the benchmark suite: one embedded server for the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tsobench.server import ChildServer


@dataclass(frozen=True)
class Scale:
    strategies: tuple[str, ...]
    apis: tuple[str, ...]
    concurrency: tuple[int, ...]
    requests: int  # per round: the fixed work whose time is measured
    warmup_requests: int  # before each round, untimed
    rounds: int


SAFE = ("per-request", "locked", "pool", "dispatcher")
SCALES = {
    "smoke": Scale(("dispatcher",), ("thread",), (2,), 300, 50, 2),
    "quick": Scale(SAFE, ("thread", "asyncio"), (1, 16, 64), 5_000, 500, 3),
    "full": Scale(SAFE, ("thread", "asyncio"), (1, 16, 64, 256), 20_000, 2_000, 5),
}


def scale() -> Scale:
    name = os.environ.get("TSOBENCH_SUITE", "quick")
    if name not in SCALES:
        raise pytest.UsageError(f"TSOBENCH_SUITE must be one of {', '.join(SCALES)}, got {name!r}")
    return SCALES[name]


@pytest.fixture(scope="session")
def tso_server() -> Iterator[ChildServer]:
    """The server runs in its own process so it does not share the clients' GIL."""
    with ChildServer() as server:
        yield server
