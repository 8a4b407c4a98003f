"""Folding what the callers recorded into what a shard reports, as the run goes.

A caller's hot path only reads the clock and appends to its ``Record`` (compact
typed arrays). Every ``FOLD_S`` the ``FoldTicker`` takes what the callers appended
and folds it: latencies into HDR histograms (integer µs, from each request's
intended start), completions into the timeline's intervals and per-caller
counts, every reply into the correctness checks, the requests around each fault
into the recovery trace. Raw per-request arrays live one fold period, so a
shard's memory does not grow with the run's length; every check stays exact.

Windows: a request counts in the window where it completes. One begun in the
warm-up and answered in the window counts with its full latency; one answered
in the warm-up is checked but left out of the figures; one still in flight when
the window closes is *censored*: its wait so far goes into the latency, so a
caller that waits forever shows as a tail as long as the run, never as nothing.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from tsobench.bench.measure import latency, recovery
from tsobench.bench.measure.checker import EMPTY, CallerOrder, RangeSet, RealTimeOrder
from tsobench.bench.measure.intervals import Buckets
from tsobench.bench.measure.measures import Closing, ShardResult
from tsobench.bench.measure.recovery import NO_ANSWER, Trace

if TYPE_CHECKING:
    from tsobench.bench.measure.clock import Clock
    from tsobench.bench.model.config import ShardConfig

FOLD_S = 0.25  # how often the folder thread takes what the callers appended
FOLD_MAX = 200_000  # replies one fold takes at most (all callers): a fold that fell behind catches up in
# steps whose temporary arrays stay a few MB, instead of one step as large as its backlog
IDLE = -1  # a caller's ``pending`` when it waits for nothing


class Record:
    """One caller's appends: written by its caller, drained by the fold.

    ``lasts``, ``sent`` and ``done`` (and ``intended`` in the open loop, where it
    differs from ``sent``) grow together, one entry per answer; a reply whose
    count is not the request's is noted in ``odd`` first. Failures go to their
    own arrays. The fold takes the entries all arrays have and deletes them, each
    an atomic array operation under the GIL, while the caller keeps appending.
    """

    __slots__ = (
        "abandoned",
        "done",
        "failed_at",
        "failed_done",
        "failed_kind",
        "intended",
        "lasts",
        "odd",
        "pending",
        "samples",
        "sent",
    )

    def __init__(self, open_loop: bool) -> None:
        self.lasts = array("q")  # each reply's largest timestamp
        self.sent = array("q")  # µs, when each answered request was sent
        self.done = array("q")  # µs, when its reply arrived
        self.intended = array("q") if open_loop else self.sent  # µs, when it was meant to start
        self.odd: list[tuple[int, int]] = []  # (last, count) of replies whose count differs from the request's
        self.failed_at = array("q")  # a failed request's intended start ...
        self.failed_done = array("q")  # ... when it failed ...
        self.failed_kind: list[str] = []  # ... and how (``errors.error_kind``)
        self.samples: dict[str, dict[str, str]] = {}  # the first message and place of each kind
        self.pending = IDLE  # intended start of the request in flight
        self.abandoned = False  # the shard gave up on this caller: a late reply is not recorded

    def _answers(self) -> tuple[array, ...]:
        return (self.lasts, self.sent, self.done) + ((self.intended,) if self.intended is not self.sent else ())

    def requests_done(self) -> int:
        return len(self.done) + len(self.failed_done)


class _Taken:
    """What one fold took from every caller, concatenated caller by caller (each in its order).

    Taking is array slicing only, no numpy call per caller: in the folder thread each numpy call on
    a large array may hand the GIL to a busy event loop, and waiting to get it back costs a switch
    interval each time (a fold of hundreds of such calls fell seconds behind the null strategy).
    """

    def __init__(self, records: Sequence[Record], open_loop: bool, most: int) -> None:
        lasts, sent, done, intended = array("q"), array("q"), array("q"), array("q")
        failed_at, failed_done = array("q"), array("q")
        self.failed_kind: list[str] = []
        self.odd: list[list[tuple[int, int]]] = []
        self.behind = False  # some caller had more than ``most`` to take: the rest waits for the next fold
        answers, failures = [], []  # per caller: how many were taken
        for r in records:
            odd = r.odd[: len(r.odd)]  # before the answers: a reply's odd count is noted before it
            arrays = r._answers()
            available = min(len(a) for a in arrays)
            n = min(most, available)
            parts = [a[:n] for a in arrays]
            for a in arrays:
                del a[:n]
            for into, part in zip((lasts, sent, done, intended), parts, strict=False):
                into.extend(part)
            failed = min(len(r.failed_at), len(r.failed_done), len(r.failed_kind))
            m = min(most, failed)
            self.behind = self.behind or available > n or failed > m
            failed_at.extend(r.failed_at[:m])
            failed_done.extend(r.failed_done[:m])
            self.failed_kind += r.failed_kind[:m]
            del r.failed_at[:m], r.failed_done[:m], r.failed_kind[:m]
            del r.odd[: len(odd)]
            self.odd.append(odd)
            answers.append(n)
            failures.append(m)
        self.lasts, self.sent, self.done = _numpy(lasts), _numpy(sent), _numpy(done)
        self.intended = _numpy(intended) if open_loop else self.sent
        ends = np.cumsum(answers)
        self.spans = list(zip((ends - answers).tolist(), ends.tolist(), strict=True))
        self.callers = np.repeat(np.arange(len(records)), answers)
        self.failed_at, self.failed_done = _numpy(failed_at), _numpy(failed_done)
        self.failed_kind_array = np.array(self.failed_kind, dtype=object)
        self.failed_callers = np.repeat(np.arange(len(records)), failures)

    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, caller) of each caller that answered something: the segments of the arrays above."""
        nonempty = [(lo, i) for i, (lo, hi) in enumerate(self.spans) if hi > lo]
        starts, callers = zip(*nonempty, strict=True) if nonempty else ((), ())
        return np.array(starts, np.int64), np.array(callers, np.int64)


def _numpy(values: array) -> np.ndarray:
    return np.frombuffer(values, np.int64) if len(values) else EMPTY


class Fold:
    """A shard's figures so far; ``fold()`` adds what callers appended, ``finish()`` closes the window."""

    def __init__(
        self,
        shard: ShardConfig,
        clock: Clock,
        records: Sequence[Record],
        counters: Callable[[], dict[str, int]] = dict,
    ) -> None:
        run = shard.run
        self.shard, self.run, self.clock, self.records, self._counters = shard, run, clock, records, counters
        self.requested = run.count
        self._open_loop = run.open_loop
        self.start = clock.measure_from_us
        self.corrected, self.uncorrected = latency.new_histogram(), latency.new_histogram()
        self.ok = self.answered_us = 0
        self.errors: Counter[str] = Counter()
        self.completions = np.zeros(len(records), np.int64)  # in the window
        # Callers with a request due in the window (its intended start before the close, its completion, if
        # any, after the open). Closed loop, every caller; open loop, one whose schedule gave it nothing in
        # a short window is idle, not starved.
        self.active = np.zeros(len(records), bool)
        self.last_ok = np.full(len(records), NO_ANSWER, np.int64)  # µs from the window's start
        self.last_intended = np.full(len(records), -(1 << 62), np.int64)  # of each caller's last completion
        self.last_completion = self.start  # --requests: the window lasts until the last completion
        self.checked = self.mismatched = self.out_of_order = self.out_of_order_per_caller = 0
        self.ranges = RangeSet()
        self.caller_order = CallerOrder(len(records))
        self.real_time = RealTimeOrder()
        self._unchecked = (EMPTY, EMPTY, np.zeros(0, bool))  # (sent, firsts, out of order per caller), one fold late
        self.buckets = Buckets(self.start, round(run.interval_s * 1e6))
        self.censored_waits: list[np.ndarray] = []
        self._regions = [
            (self.start + lo, self.start + hi) for lo, hi in recovery.regions(run.faults, shard.recovery_horizon_s)
        ]
        self._trace: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._odd: list[list[tuple[int, int]]] = [[] for _ in records]  # noted, their replies not yet taken
        self.folded = 0  # requests finished and folded, window or not
        self._counters_at_start: dict[str, int] | None = None
        self.observer: Callable[[_Taken], None] | None = None  # run --metrics-port: sees what each fold took

    # ------------------------------------------------------------ folding

    def fold(self, now_us: int, final: bool = False) -> bool:
        """Take what the callers appended and fold it (at most ``FOLD_MAX`` replies, all of it when
        ``final``: nobody appends any more). True when more was left than one fold takes."""
        if self._counters_at_start is None and now_us >= self.start:
            self._counters_at_start = dict(self._counters())
        while True:
            pending = [r.pending for r in self.records]  # read before the arrays: see _forget
            taken = _Taken(self.records, self._open_loop, max(1, FOLD_MAX // len(self.records)))
            behind = taken.behind
            if self.observer is not None:
                self.observer(taken)
            self.folded += len(taken.done) + len(taken.failed_done)
            self._fold(taken, final and not behind)
            self._forget(pending, final and not behind)
            if not (final and behind):
                break
        self.buckets.seal(int(self.buckets.index(np.array([now_us]))[0]) - 1)
        return behind

    def _fold(self, t: _Taken, final: bool) -> None:
        end = self.clock.end_us
        counts = self._counts(t)
        firsts = t.lasts - counts + 1
        self.checked += int(counts.sum())
        self.ranges.add(firsts, t.lasts)
        starts, callers = t.groups()
        per_caller = self.caller_order.check(starts, callers, firsts, t.lasts)
        self.real_time.add(t.done, t.lasts)
        sent, first, own = (
            np.concatenate([a, b]) for a, b in zip(self._unchecked, (t.sent, firsts, per_caller), strict=True)
        )
        ready = np.ones(len(sent), bool) if final else np.arange(len(sent)) < len(self._unchecked[0])
        late = self.real_time.late(sent[ready], first[ready]) | own[ready]
        self.out_of_order += int(np.count_nonzero(late))
        self.out_of_order_per_caller += int(np.count_nonzero(own[ready]))
        self._unchecked = (sent[~ready], first[~ready], own[~ready])

        corrected = t.done - t.intended
        in_window = (t.done >= self.start) & (t.done < end)
        self.ok += int(np.count_nonzero(in_window))
        latency.record(self.corrected, corrected[in_window])
        latency.record(self.uncorrected, (t.done - t.sent)[in_window])
        self.answered_us += int(corrected[in_window].sum())
        n = len(self.records)
        self.completions += np.bincount(t.callers[in_window], minlength=n)
        after = (t.done >= end) & (t.intended < end)  # answered, but after the close: censored at the close
        self._censor(end - t.intended[after])

        failed_in_window = (t.failed_done >= self.start) & (t.failed_done < end)
        self.errors.update(t.failed_kind_array[failed_in_window].tolist())
        self.completions += np.bincount(t.failed_callers[failed_in_window], minlength=n)
        self.active |= np.bincount(t.callers[(t.done >= self.start) & (t.intended < end)], minlength=n) > 0
        self.active |= (
            np.bincount(t.failed_callers[(t.failed_done >= self.start) & (t.failed_at < end)], minlength=n) > 0
        )
        self._censor(end - t.failed_at[(t.failed_at < end) & (t.failed_done >= end)])
        self.buckets.add(t.done[t.done < end], corrected[t.done < end], t.failed_done[t.failed_done < end])

        if len(starts):  # each caller's replies come in its own order: its last is its latest
            _raise(self.last_intended, callers, np.maximum.reduceat(t.intended, starts))
            _raise(
                self.last_ok, callers, np.maximum.reduceat(np.where(in_window, t.done - self.start, NO_ANSWER), starts)
            )
        for done in (t.done, t.failed_done):
            self.last_completion = max(self.last_completion, int(done[done < end].max(initial=self.start)))
        if len(t.failed_at):  # failures are few: no need to avoid a call per caller
            np.maximum.at(self.last_intended, t.failed_callers, t.failed_at)
        if self._regions:  # the requests around the faults (regions may overlap: each request once)
            a = in_window & self._in_regions(t.done)
            f = failed_in_window & self._in_regions(t.failed_done)
            if a.any() or f.any():
                self._trace.append((t.intended[a] - self.start, t.done[a] - self.start, t.failed_done[f] - self.start))

    def _censor(self, waits: np.ndarray) -> None:
        """Waits cut short by the close (few: only what was in flight then); folded into the latency at the end."""
        if len(waits):
            self.censored_waits.append(waits)

    def _in_regions(self, at: np.ndarray) -> np.ndarray:
        inside = np.zeros(len(at), bool)
        for lo, hi in self._regions:
            inside |= (at >= lo) & (at < hi)
        return inside

    def _counts(self, t: _Taken) -> np.ndarray:
        """Each reply's count: what was asked, except the replies noted as odd (kept until their reply is taken)."""
        counts = np.full(len(t.lasts), self.requested, np.int64)
        for caller, ((lo, hi), noted) in enumerate(zip(t.spans, t.odd, strict=True)):
            waiting = self._odd[caller] = self._odd[caller] + noted
            for last, count in list(waiting):
                hit = np.flatnonzero((t.lasts[lo:hi] == last) & (counts[lo:hi] == self.requested))
                if len(hit):
                    # A count that is no integer (a plugin's odd reply) is a mismatch all the same.
                    counts[lo + hit[0]] = count if type(count) is int else self.requested
                    self.mismatched += 1
                    waiting.remove((last, count))
        return counts

    def _forget(self, pending: list[int], final: bool) -> None:
        """Keep the replies a request still to be checked may have been sent after."""
        if final:
            return
        oldest = [p for p in pending if p != IDLE]
        oldest += [int(r.intended[0]) for r in self.records if len(r.intended)]
        if len(self._unchecked[0]):
            oldest.append(int(self._unchecked[0].min()))
        if oldest:
            self.real_time.forget(min(oldest))

    # ------------------------------------------------------------ progress

    def requests_done(self) -> int:
        """Requests finished so far (answered or failed), all callers, window or not."""
        return self.folded + sum(r.requests_done() for r in self.records)

    # ------------------------------------------------------------ the end

    def finish(
        self,
        closed_at: int,
        now_us: int,
        cpu_s: float,
        streams_opened: int,
        crashes: Counter[str],
        samples: dict[str, dict[str, str]],
        result: type[ShardResult] = ShardResult,
    ) -> ShardResult:
        """Fold the rest, censor what is still waiting, and return the shard's result (``result``:
        ShardResult, or an extension of it: every field is produced by its declaration)."""
        self.fold(now_us, final=True)
        run, end = self.run, self.clock.end_us
        hung = 0
        late_us = int(self.shard.late_s * 1e6)
        for i, r in enumerate(self.records):
            if r.pending != IDLE and r.pending < end and r.pending > self.last_intended[i]:
                self.active[i] = True
                self._censor(np.array([end - r.pending], np.int64))  # never answered
                if now_us - r.pending > late_us:
                    hung += 1  # well past its deadline: the strategy enforced none
        waits = np.concatenate([EMPTY, *self.censored_waits])
        latency.record(self.corrected, waits)
        latency.record(self.uncorrected, waits)
        start = self.start
        window_end = min(closed_at, end)
        if run.window_s is None:  # --requests: measured until the last completion
            window_end = min(window_end, self.last_completion)
        errors = self.errors + crashes
        if hung:
            errors["hung"] += hung
        counters = _delta(dict(self._counters()), self._counters_at_start or {})
        window_s = max(0.0, (window_end - start) / 1e6)
        closing = Closing(self, hung, waits, errors, crashes, samples, window_s, cpu_s, streams_opened, counters)
        return result.produce(closing)  # each field as its declaration (measures.py) says

    def completions_per_caller(self) -> list[int]:
        """Completions of each caller with a request due in the window (closed loop: every caller)."""
        return (self.completions[self.active] if self._open_loop else self.completions).tolist()

    def joined_trace(self) -> Trace | None:
        """The requests around the faults, every caller's together (None: the run has no faults)."""
        if not self.run.faults:
            return None
        columns = list(zip(*self._trace, strict=True)) or [(), (), ()]
        intended, done, failed = (np.concatenate([EMPTY, *column]) for column in columns)
        order = np.argsort(done, kind="stable")
        return Trace(intended[order], done[order], np.sort(failed), self.last_ok.copy())


def _raise(held: np.ndarray, callers: np.ndarray, values: np.ndarray) -> None:
    """Per caller, the larger of what ``held`` has and its new value."""
    held[callers] = np.maximum(held[callers], values)


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items()}


class FoldTicker:
    """Folds every ``FOLD_S`` (at once while it is behind) and tells the progress line how far the run is.

    When ``tick`` runs is the driver's business: a thread beside thread-API callers; for asyncio
    callers the event loop itself, between two callbacks. A thread there would have to win the GIL
    back from a busy loop after every numpy call that lets it go, and fell seconds behind (null
    strategy, 2 shared cores); in the loop a fold costs what it costs, about 0.1 µs per reply.
    """

    def __init__(
        self,
        fold: Fold,
        now_us: Callable[[], int],
        progress: Callable[[int], None] | None = None,
        interval: Callable[[int, int, int, int, int], None] | None = None,
    ) -> None:
        self._fold, self._now, self._progress, self._interval = fold, now_us, progress, interval
        self.error: BaseException | None = None

    def tick(self) -> float | None:
        """Fold once; seconds until the next fold (None: stop, the fold failed and says why in ``error``)."""
        try:
            now = self._now()
            behind = self._fold.fold(now)
            if self._progress:
                self._progress(self._fold.requests_done())
            if self._interval and (last := self._fold.buckets.last_whole(now)) is not None:
                self._interval(*last)
        except BaseException as exc:  # raised again by ``check`` in the shard's own thread
            self.error = exc
            return None
        return 0.0 if behind else self.next_wait_s()

    def next_wait_s(self) -> float:
        """A fold period, but the first fold of the window comes as it opens (the strategy's counters start there)."""
        until_window = (self._fold.start - self._now()) / 1e6
        return min(FOLD_S, until_window) if until_window > 0 else FOLD_S

    def check(self) -> None:
        if self.error is not None:
            raise self.error
