"""A pytest plugin that plants a slowdown in one hot path, the fold (``-p planted_slowdown``), so a
test can show the benchmark gate fails on it: each ``Fold.fold`` spins on its thread's CPU clock for
``SLOWDOWN`` of the CPU time it took, as code 25 % slower would."""

from __future__ import annotations

import time
from typing import Any

from tsobench.bench.measure.fold import Fold

SLOWDOWN = 0.25
_original = Fold.fold


def _slower(self: Fold, *args: Any, **kwargs: Any) -> Any:
    start = time.thread_time()
    out = _original(self, *args, **kwargs)
    end = time.thread_time() + (time.thread_time() - start) * SLOWDOWN
    while time.thread_time() < end:
        pass
    return out


def pytest_configure(config: Any) -> None:
    Fold.fold = _slower  # type: ignore[method-assign]
