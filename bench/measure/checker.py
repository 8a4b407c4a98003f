"""Correctness of every timestamp, checked as the run goes, in memory that does not grow per request.

Every reply is a range ``[first, last]`` (``count`` timestamps ending at the
reply's ``last``). Three checks, each exact:

- unique: ranges from all callers are kept sorted and coalesced (``RangeSet``);
  any overlap is a duplicate. Shards ship their ranges and the runner coalesces
  those across processes (``merge_ranges``). What stays grows with the gaps
  between ranges (about one per millisecond per process: the server's logical
  part restarts each millisecond), never with the number of requests;
- increasing per caller: a reply is above everything its caller held (``CallerOrder``);
- real-time order within a process: no reply is below a timestamp that any caller
  of the process already held when the request was sent (``RealTimeOrder``): how
  a reply read by the wrong caller (the unsafe-shared bug) shows. It keeps the
  replies of the last moments only: those a request still in flight could have
  been sent after.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tsobench.bench.model.results import CorrectnessCounts

EMPTY = np.empty(0, np.int64)


@dataclass(frozen=True)
class Ranges:
    """Disjoint, sorted, coalesced [first, last] ranges, plus the duplicates
    found while coalescing them."""

    firsts: np.ndarray
    lasts: np.ndarray
    duplicates: int = 0

    @classmethod
    def empty(cls) -> Ranges:
        return cls(EMPTY, EMPTY)

    def __len__(self) -> int:
        return len(self.firsts)


def coalesce(firsts: np.ndarray, lasts: np.ndarray, duplicates: int = 0) -> Ranges:
    """Sort and merge ranges; every value covered more than once is a duplicate."""
    if len(firsts) == 0:
        return Ranges(firsts.astype(np.int64), lasts.astype(np.int64), duplicates)
    order = np.argsort(firsts, kind="stable")
    f, last = firsts[order], lasts[order]
    reach = np.maximum.accumulate(last)  # furthest value covered so far
    prev_reach = np.concatenate(([f[0] - 2], reach[:-1]))
    overlap = np.minimum(last, prev_reach) - f + 1
    duplicates += int(overlap[overlap > 0].sum())
    starts = f > prev_reach + 1  # neither overlapping nor adjacent: a new range
    idx = np.flatnonzero(starts)
    new_lasts = np.maximum.reduceat(last, idx)
    return Ranges(f[idx], new_lasts, duplicates)


def merge_ranges(parts: Iterable[Ranges]) -> Ranges:
    parts = list(parts)
    if not parts:
        return Ranges.empty()
    return coalesce(
        np.concatenate([p.firsts for p in parts]),
        np.concatenate([p.lasts for p in parts]),
        sum(p.duplicates for p in parts),
    )


class RangeSet:
    """Coalesced ranges that grow as replies arrive, in amortised time per new range.

    New replies land near the top (a TSO hands out increasing values), so
    ``add`` re-coalesces only the tail they reach into, in a buffer that grows
    by doubling: a long run does not copy everything it holds on every fold.
    """

    def __init__(self) -> None:
        self._firsts = np.empty(1024, np.int64)
        self._lasts = np.empty(1024, np.int64)
        self._size = 0
        self.duplicates = 0

    def __len__(self) -> int:
        return self._size

    def add(self, firsts: np.ndarray, lasts: np.ndarray) -> None:
        if len(firsts) == 0:
            return
        new = coalesce(firsts, lasts)
        self.duplicates += new.duplicates
        n = self._size
        # Everything from the first kept range that reaches the new ones is coalesced again.
        start = int(np.searchsorted(self._lasts[:n], new.firsts[0] - 1, side="left"))
        tail = coalesce(
            np.concatenate([self._firsts[start:n], new.firsts]), np.concatenate([self._lasts[start:n], new.lasts])
        )
        self.duplicates += tail.duplicates
        end = start + len(tail)
        if end > len(self._firsts):
            capacity = max(end, 2 * len(self._firsts))
            self._firsts = np.resize(self._firsts, capacity)
            self._lasts = np.resize(self._lasts, capacity)
        self._firsts[start:end], self._lasts[start:end] = tail.firsts, tail.lasts
        self._size = end

    def ranges(self) -> Ranges:
        n = self._size
        return Ranges(self._firsts[:n].copy(), self._lasts[:n].copy(), self.duplicates)


class CallerOrder:
    """Per caller, the highest timestamp it holds: a reply not above it is out of order."""

    def __init__(self, callers: int) -> None:
        self.held = np.full(callers, -1, np.int64)

    def check(self, starts: np.ndarray, callers: np.ndarray, firsts: np.ndarray, lasts: np.ndarray) -> np.ndarray:
        """New replies, concatenated caller by caller (caller ``callers[g]``'s from ``starts[g]``), each in
        the order it got them: which are not above what their caller held.

        Vectorised over all callers: while each caller's replies increase, what it held before a reply
        is the reply before it; only a caller whose replies do not is gone through one by one."""
        if len(lasts) == 0:
            return np.zeros(0, bool)
        before = np.empty_like(lasts)
        before[1:] = lasts[:-1]
        before[starts] = self.held[callers]
        out = firsts <= before
        drops = np.flatnonzero(lasts <= before)  # after one, "the reply before" may not be the highest held
        for g in np.unique(np.searchsorted(starts, drops, side="right") - 1).tolist():
            lo, hi = int(starts[g]), int(starts[g + 1]) if g + 1 < len(starts) else len(lasts)
            held = np.maximum.accumulate(np.concatenate(([self.held[callers[g]]], lasts[lo:hi])))
            out[lo:hi] = firsts[lo:hi] <= held[:-1]
        self.held[callers] = np.maximum(self.held[callers], np.maximum.reduceat(lasts, starts))
        return out


class RealTimeOrder:
    """What the process held at each instant, as a step function of completion times.

    ``add`` takes replies (completion time, last timestamp); ``late`` takes
    requests (send time, first timestamp) whose every earlier reply has been
    added, and says which are at or below what was held when they were sent.
    ``forget(before)`` drops the steps before an instant that no request still to
    be checked was sent earlier than, keeping their highest value as the floor, so
    memory holds the replies of the last moments only. A request sent before the
    forgotten horizon (in flight far longer than any deadline) is not checked for
    real-time order; its per-caller order and uniqueness still are.
    """

    def __init__(self) -> None:
        self._done = EMPTY  # completion times, ascending
        self._lasts = EMPTY  # each reply's last timestamp, in that order
        self._held = EMPTY  # the highest timestamp held once each of them was done
        self._floor = -1  # the highest held before the first step kept
        self._horizon = -(1 << 62)  # steps before this instant are forgotten

    def add(self, done: np.ndarray, lasts: np.ndarray) -> None:
        if len(done) == 0:
            return
        # Replies arrive nearly in order and only the recent ones are kept: re-sorting is cheap.
        all_done, all_lasts = np.concatenate([self._done, done]), np.concatenate([self._lasts, lasts])
        order = np.argsort(all_done, kind="stable")
        self._done, self._lasts = all_done[order], all_lasts[order]
        self._held = np.maximum.accumulate(np.maximum(self._lasts, self._floor))

    def late(self, sent: np.ndarray, firsts: np.ndarray) -> np.ndarray:
        before = np.searchsorted(self._done, sent, side="left")  # replies done strictly before each send
        held = np.where(before > 0, self._held[np.maximum(before - 1, 0)], self._floor)
        return (sent >= self._horizon) & (firsts <= held)

    def forget(self, before: int) -> None:
        cut = int(np.searchsorted(self._done, before, side="left"))
        if cut == 0:
            return
        self._floor = int(self._held[cut - 1])
        self._done, self._lasts, self._held = self._done[cut:], self._lasts[cut:], self._held[cut:]
        self._horizon = max(self._horizon, before)


@dataclass(frozen=True)
class Correctness:
    """What checking a run's timestamps found; ``violations`` is defined here only."""

    checked: int = 0
    duplicates: int = 0
    non_monotonic: int = 0  # out of real-time order (includes per caller)
    mismatched: int = 0
    non_monotonic_per_caller: int = 0  # the part a caller sees against its own previous reply

    @property
    def violations(self) -> int:
        return self.duplicates + self.non_monotonic + self.mismatched

    def to_dict(self) -> CorrectnessCounts:
        return {
            "checked": self.checked,
            "duplicates": self.duplicates,
            "non_monotonic": self.non_monotonic,
            "mismatched": self.mismatched,
            "violations": self.violations,
            "non_monotonic_per_caller": self.non_monotonic_per_caller,
        }
