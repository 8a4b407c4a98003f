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
    duration_s: float
    warmup_s: float
    rounds: int


SCALES = {
    "smoke": Scale(("dispatcher",), ("thread",), (2,), 0.3, 0.1, 1),
    "quick": Scale(("per-request", "locked", "pool", "dispatcher"), ("thread", "asyncio"), (1, 16, 64), 2.0, 0.5, 3),
    "full": Scale(
        ("per-request", "locked", "pool", "dispatcher"), ("thread", "asyncio"), (1, 16, 64, 256), 5.0, 1.0, 5
    ),
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
