"""A timestamp allocator with PD's rules, free of gRPC so it can be tested alone.

A timestamp is (physical ms, logical) with logical < 2**18, composed as
``physical << 18 | logical``. ``tick()`` follows the wall clock like PD's
50 ms update loop; ``allocate(count)`` advances logical by count and returns
the largest timestamp of the batch. Physical never passes the persisted
window, and never goes back, even if the wall clock does.

Physical also never runs ahead of the wall clock (by more than PD's 1 ms step
when logical passed half): a request that would overflow the logical part
takes the clock's next millisecond, or waits for it (``allocate`` returns
None), as PD makes it wait for the next physical update. The only exception
is a restart, which starts just above the saved window (up to ``window_ms``
ahead) and lets the clock catch up; meanwhile a waiting request gets the 1 ms
step of the next tick. While the wall clock is behind physical, the oracle says
so once (PD's "system time may be incorrect"), and once more when it caught up.

Physical never passes what the window's ``save`` says is on disk. A window
that saves in the background answers at once with what is already there, so
the oracle asks early (``save_ahead_ms``) and, should the disk lag behind the
clock, holds physical (requests wait, as on an overflow) until it caught up.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .window import MAX_PHYSICAL_MS, WindowError

LOGICAL_BITS = 18
MAX_LOGICAL = 1 << LOGICAL_BITS
UPDATE_INTERVAL_S = 0.050  # PD's updateTimestampStep
GUARD_MS = 1  # PD's updateTimestampGuard
# A saved window further ahead of the wall clock than this is refused unless
# the operator accepts it: a wrong clock or a foreign file, not a restart.
MAX_FUTURE_WINDOW_MS = 24 * 3600 * 1000


def compose(physical: int, logical: int) -> int:
    return physical << LOGICAL_BITS | logical


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Window(Protocol):
    """Where the high-water bound persists (``window.WindowFile``, or one saving off the event loop)."""

    def highest(self) -> tuple[int, Path | None]: ...

    def save(self, high_water_ms: int) -> int: ...


@dataclass(frozen=True, slots=True)
class Allocation:
    """The reply to one request: the largest timestamp of a batch of ``count``."""

    physical: int
    logical: int
    count: int

    @property
    def last(self) -> int:
        return compose(self.physical, self.logical)

    @property
    def first(self) -> int:
        return self.last - self.count + 1


class TimestampOracle:
    def __init__(
        self,
        window: Window,
        window_ms: int = 3000,
        clock: Callable[[], int] = wall_clock_ms,
        accept_future_window: bool = False,
        save_ahead_ms: int = 0,
        warn: Callable[[str], None] = to_stderr,
    ) -> None:
        if window_ms <= GUARD_MS:
            raise ValueError(f"window must exceed {GUARD_MS} ms, got {window_ms}")
        self._window = window
        self._window_ms = window_ms
        self._clock = clock
        self._save_ahead_ms = save_ahead_ms  # extend the window once physical is this close to it (0: at the guard)
        self._warn = warn
        self._clock_behind = False  # said so, and not yet that it caught up
        saved, source = window.highest()
        now = clock()
        ahead_ms = saved - now
        if ahead_ms > MAX_FUTURE_WINDOW_MS and not accept_future_window:
            raise WindowError(
                f"TSO window file {source} lies {ahead_ms / 86_400_000:.1f} days ahead of the wall clock "
                f"(high_water_ms {saved}): a wrong clock or a foreign file? Timestamps would jump there. "
                "Start with --accept-future-window if they should."
            )
        if saved + GUARD_MS + window_ms > MAX_PHYSICAL_MS:
            raise WindowError(f"TSO window file {source}: high_water_ms {saved} leaves no room for timestamps")
        # Start strictly above anything a previous run could have issued.
        self.physical = max(now, saved + GUARD_MS)
        self.logical = 0
        self._waiting = False  # a request found logical used up and waits for physical to move
        self._high_water = saved
        self._extend_window()

    @property
    def high_water_ms(self) -> int:
        return self._high_water

    def _extend_window(self, physical: int | None = None) -> None:
        # Save first: if saving fails, neither the window nor physical may move.
        high_water = (self.physical if physical is None else physical) + self._window_ms
        self._high_water = self._window.save(high_water)

    def _advance_to(self, physical: int) -> None:
        """Move physical forward (never back), persisting the window first if needed;
        stay put while the window on disk does not cover it yet."""
        if physical <= self.physical:
            return
        if self._high_water - physical <= GUARD_MS:
            self._extend_window(physical)
            if self._high_water - physical <= GUARD_MS:
                return
        self.physical, self.logical, self._waiting = physical, 0, False

    def tick(self) -> None:
        """PD's periodic update: follow the wall clock, or step 1 ms if logical ran high or ran out."""
        now = self._clock()
        self._watch_clock(now)
        if now - self.physical > GUARD_MS:
            self._advance_to(now)
        elif self.logical > MAX_LOGICAL // 2 or self._waiting:
            self._advance_to(self.physical + 1)
        elif self._high_water - self.physical <= GUARD_MS:
            self._extend_window()
        if self._save_ahead_ms and self._high_water - self.physical <= self._save_ahead_ms:
            self._extend_window()

    def _watch_clock(self, now: int) -> None:
        """Physical leads the clock by PD's 1 ms step at most; more means the clock is behind."""
        behind = self.physical - now
        if behind > GUARD_MS and not self._clock_behind:
            self._clock_behind = True
            self._warn(
                f"warning: system time may be incorrect: the wall clock is {behind} ms behind the TSO's physical "
                "time (a restart or a new leader above the saved window, or the clock stepped back); timestamps "
                "keep their physical time until it catches up"
            )
        elif behind <= 0 and self._clock_behind:
            self._clock_behind = False
            self._warn("the wall clock caught up with the TSO's physical time")

    def allocate(self, count: int) -> Allocation | None:
        """The batch, or None when this millisecond's logical part is used up and the
        wall clock has not moved on yet: the caller retries once it has (PD's rule)."""
        if not 0 < count < MAX_LOGICAL:
            raise ValueError(f"count must be in [1, {MAX_LOGICAL - 1}], got {count}")
        if self.logical + count >= MAX_LOGICAL:
            self._advance_to(self._clock())  # a fresh millisecond, never one ahead of the clock
            if self.logical + count >= MAX_LOGICAL:
                self._waiting = True
                return None
        self.logical += count
        return Allocation(self.physical, self.logical, count)

    def save(self) -> None:
        """Persist the current window (on shutdown)."""
        self._window.save(self._high_water)
