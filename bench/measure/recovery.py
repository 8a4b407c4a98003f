"""What each fault did to the callers, and how long they took to recover.

Computed once the run is over from every request of the measured window (its
intended start and completion in µs, each failure's completion), not from the
timeline's intervals, so recovery times are exact to the request. For a fault
that ran from ``start`` to ``end`` (a kill ends when the restarted server
listens again; an abort is an instant):

- its failures are those completing from ``start`` until the next fault, the
  window's end, or ``horizon`` after ``end``, whichever comes first (later ones
  are not the fault's: the run's verdict counts them as errors);
- it *recovered* at the first successful completion after both ``end`` and its
  last failure, before the next fault: ``first_success_after_s`` counts from ``end``;
- ``p99_during_us``: p99 of the answered requests in flight at some time between
  ``start`` and the recovery;
- ``time_to_baseline_s``: from ``end`` to the first 100 ms step with answers, no
  failure and a p99 within 2x of the p99 before the fault (null if never).

So that a long run's memory does not grow with its length, a shard keeps the
requests of each fault's region only (``regions``): from ``BEFORE_S`` before it
(the baseline) to ``AFTER_S`` after its effects can last. A recovery, or a
return to baseline, later than that is reported as none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tsobench.bench.measure import latency
from tsobench.bench.model.faults import Fault, Injected
from tsobench.bench.model.results import FaultOutcome

BEFORE_S = 5.0  # the baseline before a fault: at most this long
AFTER_S = 10.0  # how long after a fault's effects a recovery is still looked for
RESTART_S = 5.0  # a killed server or leader is back (listening, elected) within this, or the run says so
STEP_S = 0.1  # time back to baseline is found in steps this long (finer than the timeline)
BASELINE_FACTOR = 2.0
NO_ANSWER = -(1 << 62)  # a caller's last answer when it had none


def _us(seconds: float) -> int:
    return round(seconds * 1e6)


@dataclass(frozen=True, eq=False)
class Trace:
    """Requests of the measured window, µs from its start."""

    intended_us: np.ndarray  # answered requests: intended start ...
    done_us: np.ndarray  # ... and completion
    failed_us: np.ndarray  # failed requests: completion
    last_ok_us: np.ndarray  # per caller: its last answer, NO_ANSWER if none

    def shifted(self, offset_us: int) -> Trace:
        """The same requests on a clock ``offset_us`` later (a shard that started late)."""
        return Trace(
            self.intended_us + offset_us,
            self.done_us + offset_us,
            self.failed_us + offset_us,
            np.where(self.last_ok_us == NO_ANSWER, NO_ANSWER, self.last_ok_us + offset_us),
        )

    @classmethod
    def join(cls, traces: Iterable[Trace]) -> Trace:
        """All shards' requests, answered ones in completion order."""
        parts = list(traces)
        done = np.concatenate([np.empty(0, np.int64), *(t.done_us for t in parts)])
        intended = np.concatenate([np.empty(0, np.int64), *(t.intended_us for t in parts)])
        order = np.argsort(done, kind="stable")
        return cls(
            intended[order],
            done[order],
            np.sort(np.concatenate([np.empty(0, np.int64), *(t.failed_us for t in parts)])),
            np.concatenate([np.empty(0, np.int64), *(t.last_ok_us for t in parts)]),
        )


def regions(faults: Sequence[Fault], horizon_s: float) -> list[tuple[int, int]]:
    """µs from the window's start: the spans whose requests ``outcomes`` needs, one per fault."""
    return [
        (_us(f.at_s - BEFORE_S), _us(f.end_s + RESTART_S + horizon_s + f.declared.extra_horizon_s + AFTER_S))
        for f in faults
    ]


def _p99(values: np.ndarray) -> int | None:
    return latency.histogram_of(values).get_value_at_percentile(99) if len(values) else None


def outcomes(injected: Sequence[Injected], trace: Trace, window_s: float, horizon_s: float) -> list[FaultOutcome]:
    """One entry per fault (the results' ``faults``); ``trace`` from ``Trace.join``."""
    done, failed = trace.done_us, trace.failed_us
    latencies = done - trace.intended_us
    out: list[FaultOutcome] = []
    settled = 0  # where the previous fault's effects ended: the baseline is measured after it
    for i, f in enumerate(injected):
        start, end = _us(f.started_s), _us(f.ended_s)
        stop = _us(injected[i + 1].started_s) if i + 1 < len(injected) else _us(window_s)
        own_s = horizon_s + f.fault.declared.extra_horizon_s  # how long after it its failures are its own
        lo, hi = np.searchsorted(failed, [start, max(start, min(stop, end + _us(own_s)))])
        settle_from = max(end, int(failed[hi - 1]) + 1) if hi > lo else end
        j = int(np.searchsorted(done, settle_from))
        recovered_at = int(done[j]) if j < len(done) and done[j] < stop and f.error is None else None
        during = (done >= start) & (trace.intended_us <= max(end, recovered_at or end))
        before = latencies[(done >= settled) & (done < start)]
        out.append(
            {
                "kind": f.fault.kind,
                "spec": f.fault.spec,
                "at_s": f.fault.at_s,
                "duration_s": f.fault.duration_s,
                "started_s": f.started_s,
                "ended_s": f.ended_s,
                "failed_requests": int(hi - lo),
                "first_success_after_s": None if recovered_at is None else round((recovered_at - end) / 1e6, 6),
                "recovered": recovered_at is not None,
                "p99_during_us": _p99(latencies[during]),
                "p99_before_us": _p99(before),
                "time_to_baseline_s": _back_to_baseline_s(done, latencies, failed, end, stop, _p99(before)),
                "error": f.error,
            }
        )
        settled = recovered_at if recovered_at is not None else end
    return out


def _back_to_baseline_s(
    done: np.ndarray, latencies: np.ndarray, failed: np.ndarray, end: int, stop: int, baseline_us: int | None
) -> float | None:
    """From ``end``, the first whole step (before ``stop``) with answers, no failure and p99 <= 2x baseline."""
    if baseline_us is None:
        return None
    step = _us(STEP_S)
    for t in range(end, stop - step + 1, step):
        lo, hi = np.searchsorted(done, [t, t + step])
        f_lo, f_hi = np.searchsorted(failed, [t, t + step])
        p99 = _p99(latencies[lo:hi])
        if p99 is not None and f_hi == f_lo and p99 <= BASELINE_FACTOR * baseline_us:
            return round((t - end) / 1e6, 6)
    return None


def unrecovered_callers(faults: Sequence[FaultOutcome], trace: Trace) -> int:
    """Callers with no answer after the last fault's effects ended (its recovery, or its end if none)."""
    if not faults:
        return 0
    last = faults[-1]
    since = last["ended_s"] + (last["first_success_after_s"] or 0.0)
    return int(np.count_nonzero(trace.last_ok_us < _us(since)))
