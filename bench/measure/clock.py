"""A shard's window on this process's clock, anchored to the run's shared start instant.

Every shard of a run starts its load at one wall-clock instant (the start
barrier gives it); each anchors its monotonic microsecond clock there, so
warm-up, the measured window and the timeline's intervals are the same spans
of wall-clock time in every shard, on every host (as far as their clocks agree).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from tsobench.bench.model.config import RunConfig

FOREVER_US = 1 << 62


def now_us() -> int:
    return time.perf_counter_ns() // 1000


@dataclass
class Clock:
    """Microsecond instants on this process's perf_counter."""

    start_us: int  # the load starts (the shared instant)
    measure_from_us: int  # the warm-up ends, the measured window opens
    end_us: int  # the window closes; FOREVER_US with --requests (the quotas end each caller)
    stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def anchored(cls, run: RunConfig, start_at: float | None = None) -> Clock:
        """The window of ``run`` from the wall-clock instant ``start_at`` (None: now)."""
        late_s = 0.0 if start_at is None else time.time() - start_at  # how far past the shared instant we are
        start = now_us() - round(late_s * 1e6)
        measure_from = start + round(run.warmup_s * 1e6)
        end = FOREVER_US if run.window_s is None else measure_from + round(run.window_s * 1e6)
        return cls(start, measure_from, end)

    def interrupt(self) -> None:
        """Close the window now (Ctrl-C, a stop from the parent): callers finish what they sent."""
        self.end_us = min(self.end_us, now_us())
        self.stop.set()
