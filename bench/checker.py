"""Correctness of every timestamp, without keeping every timestamp.

Per caller: each reply's count equals its request's, and each range starts
above the previous one's end (strictly increasing). Globally: every reply is a
range [first, last]; ranges from all callers and processes are sorted and
merged, and any overlap is a duplicate. Merged ranges stay small because the
server hands out contiguous logical values.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from strategies import Timestamp


@dataclass(frozen=True)
class Ranges:
    """Disjoint, sorted, coalesced [first, last] ranges, plus the duplicates
    found while coalescing them."""

    firsts: np.ndarray
    lasts: np.ndarray
    duplicates: int = 0

    @classmethod
    def empty(cls) -> Ranges:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64))

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


class CallerCheck:
    """The hot-path half: a few comparisons and two appends per reply."""

    __slots__ = ("checked", "firsts", "last", "lasts", "mismatched", "non_monotonic")

    def __init__(self) -> None:
        self.last = -1
        self.checked = 0
        self.non_monotonic = 0
        self.mismatched = 0
        self.firsts = array("q")
        self.lasts = array("q")

    def observe(self, ts: Timestamp, requested: int) -> None:
        if ts.count != requested:
            self.mismatched += 1
        first, last = ts.first, ts.last
        if first <= self.last:
            self.non_monotonic += 1
        if last > self.last:
            self.last = last
        self.checked += ts.count
        self.firsts.append(first)
        self.lasts.append(last)

    def ranges(self) -> Ranges:
        return coalesce(np.frombuffer(self.firsts, np.int64), np.frombuffer(self.lasts, np.int64))


@dataclass(frozen=True)
class Verdict:
    checked: int = 0
    duplicates: int = 0
    non_monotonic: int = 0
    mismatched: int = 0

    @property
    def violations(self) -> int:
        return self.duplicates + self.non_monotonic + self.mismatched

    def to_dict(self) -> dict[str, int]:
        return {
            "checked": self.checked,
            "duplicates": self.duplicates,
            "non_monotonic": self.non_monotonic,
            "mismatched": self.mismatched,
            "violations": self.violations,
        }
