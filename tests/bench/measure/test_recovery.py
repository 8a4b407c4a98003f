"""Recovery figures from request times (pure units)."""

from __future__ import annotations

import numpy as np
import pytest

from tsobench.bench.measure.recovery import NO_ANSWER, Trace, outcomes, unrecovered_callers
from tsobench.bench.model.faults import Fault, Injected

MS = 1000


def trace(answered: list[tuple[int, int]], failed: list[int], last_ok: list[int]) -> Trace:
    """(intended, done) pairs and failure times in ms."""
    a = np.array(answered, np.int64) * MS
    return Trace.join([Trace(a[:, 0], a[:, 1], np.array(failed, np.int64) * MS, np.array(last_ok, np.int64) * MS)])


def steady(start_ms: int, end_ms: int, latency_ms: int = 1) -> list[tuple[int, int]]:
    return [(t - latency_ms, t) for t in range(start_ms, end_ms, 5)]


def test_a_kill_counts_its_failures_until_the_first_success_after_the_last_one():
    # up 0-1000 ms; killed 1000-1300 ms; failures until 1450 ms (a reconnect backoff); answers from 1500 ms
    answered = [*steady(2, 1000), (1480, 1500), *steady(1505, 3000)]
    failed = [1000, 1100, 1200, 1300, 1450]
    injected = [Injected(Fault("kill", 1.0, 0.3), 1.0, 1.3)]
    (out,) = outcomes(injected, trace(answered, failed, [2995, 2990]), window_s=3.0, horizon_s=5.0)
    assert out["failed_requests"] == 5
    assert out["recovered"] and out["first_success_after_s"] == pytest.approx(0.2)
    assert out["p99_during_us"] == pytest.approx(20 * MS, rel=1e-3)  # the request that succeeded at 1500 ms
    assert out["p99_before_us"] == 1 * MS
    assert out["time_to_baseline_s"] == pytest.approx(0.3)  # the step from 1600 ms: the 1500 ms answer is late
    assert unrecovered_callers([out], trace(answered, failed, [2995, 1400])) == 1


def test_no_success_after_the_fault_is_no_recovery_and_later_failures_are_not_its_own():
    answered = steady(2, 1000)
    injected = [Injected(Fault("stall", 1.0, 0.5), 1.0, 1.5)]
    (out,) = outcomes(injected, trace(answered, [1200, 1900], [995]), window_s=2.0, horizon_s=0.2)
    assert not out["recovered"] and out["first_success_after_s"] is None
    assert out["failed_requests"] == 1  # 1900 ms is past the horizon (end + 0.2 s)
    assert out["time_to_baseline_s"] is None


def test_each_fault_owns_the_failures_until_the_next_one():
    answered = [*steady(2, 1000), *steady(1100, 2000), *steady(2100, 3000)]
    injected = [Injected(Fault("abort", 1.0), 1.0, 1.0), Injected(Fault("abort", 2.0), 2.0, 2.0)]
    first, second = outcomes(injected, trace(answered, [1000, 1050, 2000], [2995]), window_s=3.0, horizon_s=5.0)
    assert (first["failed_requests"], second["failed_requests"]) == (2, 1)
    assert first["first_success_after_s"] == pytest.approx(0.1)
    assert second["first_success_after_s"] == pytest.approx(0.1)


def test_callers_without_an_answer_after_the_recovery_are_unrecovered():
    injected = [Injected(Fault("abort", 1.0), 1.0, 1.0)]
    t = trace(steady(2, 3000), [], [2995, 500])  # the second answered only before the fault
    assert unrecovered_callers(outcomes(injected, t, 3.0, 5.0), t) == 1
    late = Trace(t.intended_us, t.done_us, t.failed_us, np.array([2_995_000, NO_ANSWER])).shifted(3_000)
    assert late.last_ok_us.tolist() == [2_998_000, NO_ANSWER]  # a shard that started late: "none" stays none
    assert unrecovered_callers(outcomes(injected, late, 3.0, 5.0), late) == 1
