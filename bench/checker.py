"""Correctness of every timestamp, without keeping every timestamp.

Per caller: each reply's count equals its request's, and each range starts
above the previous one's end (strictly increasing). Per process: no reply is
below a timestamp already held when its request was sent (real-time order). Globally: every reply is a
range [first, last]; ranges from all callers and processes are sorted and
merged, and any overlap is a duplicate. Merged ranges stay small because the
server hands out contiguous logical values.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tsobench.strategies import Timestamp

from .results import CorrectnessCounts


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
    """One caller's replies. The hot path only appends (``sent``, ``done``,
    ``lasts``); every check runs vectorised once the run is over."""

    __slots__ = ("done", "lasts", "odd_counts", "requested", "sent")

    def __init__(self, requested: int = 1) -> None:
        self.requested = requested  # the count every request of this caller asks for
        self.sent = array("q")  # µs, when each request was sent
        self.done = array("q")  # µs, when its reply arrived
        self.lasts = array("q")  # the reply's largest timestamp
        self.odd_counts: dict[int, int] = {}  # reply index -> the count it carried, when not ``requested``

    def observe(self, ts: Timestamp, requested: int, sent_us: int, done_us: int) -> None:
        """Record one reply (what the shard's loop does inline)."""
        if ts.count != requested:
            self.odd_counts[len(self.lasts)] = ts.count
        self.sent.append(sent_us)
        self.done.append(done_us)
        self.lasts.append(ts.last)

    def counts(self) -> np.ndarray:
        counts = np.full(len(self.lasts), self.requested, np.int64)
        for i, count in self.odd_counts.items():
            counts[i] = count
        return counts

    def firsts(self) -> np.ndarray:
        return _int64(self.lasts) - self.counts() + 1

    @property
    def checked(self) -> int:
        return int(self.counts().sum())

    @property
    def mismatched(self) -> int:
        return len(self.odd_counts)

    @property
    def non_monotonic(self) -> int:
        """Replies not strictly above this caller's previous ones."""
        lasts = _int64(self.lasts)
        if len(lasts) < 2:
            return 0
        held = np.maximum.accumulate(lasts)[:-1]
        return int(np.count_nonzero(self.firsts()[1:] <= held))

    def ranges(self) -> Ranges:
        return coalesce(self.firsts(), _int64(self.lasts))


def _int64(values: array) -> np.ndarray:
    return np.frombuffer(values, np.int64)


def out_of_real_time_order(checks: Iterable[CallerCheck]) -> int:
    """Replies not above a timestamp that any caller of this process already
    held when the request was sent. A TSO must be monotonic in real time, not
    only per caller: a reply read by the wrong caller (the unsafe-shared bug)
    can be older than what the process has seen. Includes the per-caller
    violations, which are the special case of the same caller."""
    checks = list(checks)
    if not checks:
        return 0
    firsts = np.concatenate([c.firsts() for c in checks])
    lasts = np.concatenate([_int64(c.lasts) for c in checks])
    sent = np.concatenate([_int64(c.sent) for c in checks])
    done = np.concatenate([_int64(c.done) for c in checks])
    if len(firsts) == 0:
        return 0
    order = np.argsort(done, kind="stable")
    highest_done = np.maximum.accumulate(lasts[order])  # highest timestamp held by each completion time
    finished_before = np.searchsorted(done[order], sent, side="left")  # replies done strictly before the send
    held = np.where(finished_before > 0, highest_done[np.maximum(finished_before - 1, 0)], -1)
    return int(np.count_nonzero(firsts <= held))


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
