"""The fold: what callers appended becomes figures and checks, fold by fold, with nothing kept per request."""

from __future__ import annotations

from collections import Counter

from tsobench.bench.measure import latency
from tsobench.bench.measure.clock import Clock
from tsobench.bench.measure.fold import IDLE, Fold, Record
from tsobench.bench.measure.measures import ShardResult
from tsobench.bench.model.config import RunConfig, ShardConfig

START = 1_000_000  # µs: the load starts here on these tests' clock
WARMUP, WINDOW = 1_000_000, 2_000_000


def fold_of(callers: int = 2, **options: object) -> tuple[Fold, list[Record], Clock]:
    run = RunConfig(strategy="null", concurrency=callers, duration_s=WINDOW / 1e6, warmup_s=WARMUP / 1e6, **options)
    clock = Clock(START, START + WARMUP, START + WARMUP + WINDOW)
    records = [Record(open_loop=False) for _ in range(callers)]
    return Fold(ShardConfig(run, 0, "", overrun_s=0.7), clock, records), records, clock


def answer(r: Record, last: int, sent: int, done: int, count: int | None = None) -> None:
    """What a caller's loop appends for one reply."""
    if count is not None:
        r.odd.append((last, count))
    r.lasts.append(last)
    r.sent.append(sent)
    r.done.append(done)


def finish(fold: Fold, closed_at: int, now: int) -> ShardResult:
    return fold.finish(closed_at, now, cpu_s=0.0, streams_opened=0, crashes=Counter(), samples={})


def test_each_fold_drains_what_the_callers_appended():
    fold, (a, b), _ = fold_of()
    t = START + WARMUP
    for i in range(1_000):
        answer(a, 10 + 2 * i, t + 10 * i, t + 10 * i + 5)
        answer(b, 11 + 2 * i, t + 10 * i, t + 10 * i + 6)
    fold.fold(t + 20_000)
    assert len(a.lasts) == len(a.sent) == len(a.done) == len(b.done) == 0  # nothing per request stays
    assert fold.ok == 2_000 and fold.checked == 2_000
    assert len(fold.ranges) == 1  # 10..2009 coalesced


def test_a_request_counts_in_the_window_where_it_completes():
    fold, (a, _), _ = fold_of()
    answer(a, 1, START, START + 500)  # warm-up: checked, not counted
    answer(a, 2, START + WARMUP - 100, START + WARMUP + 900)  # begun in the warm-up, counted whole
    answer(a, 3, START + WARMUP + WINDOW - 50, START + WARMUP + WINDOW + 70)  # answered after the close: censored
    fold.fold(START + WARMUP + WINDOW + 100)
    result = finish(fold, START + WARMUP + WINDOW, START + WARMUP + WINDOW + 200)
    assert (result.requests_ok, result.checked, result.censored) == (1, 3, 1)
    h = latency.decode(result.latency)
    assert h.get_total_count() == 2 and h.get_max_value() >= 1_000 - 1  # 1,000 µs from its start, and 50 censored


def test_an_odd_count_noted_before_its_reply_is_matched_in_a_later_fold():
    fold, (a, _), _ = fold_of()
    t = START + WARMUP
    a.odd.append((7, 3))  # the caller noted the odd count, then the fold ran before it appended the reply
    fold.fold(t)
    answer(a, 7, t, t + 10)
    fold.fold(t + 20)
    assert fold.mismatched == 1 and fold.checked == 3


def test_violations_are_found_across_folds():
    fold, (a, b), _ = fold_of()
    t = START + WARMUP
    answer(a, 100, t, t + 10)
    fold.fold(t + 20)
    answer(a, 100, t + 30, t + 40)  # the same timestamp again, for the same caller, a fold later
    answer(b, 50, t + 50, t + 60)  # below what the process held when b sent: out of real-time order
    fold.fold(t + 70)
    result = finish(fold, t + WINDOW, t + WINDOW + 10)
    assert result.ranges.duplicates == 1
    assert result.non_monotonic_per_caller == 1
    assert result.non_monotonic == 2  # a's repeat and b's stale reply


def test_a_caller_still_waiting_at_the_close_is_censored_and_hung_past_its_deadline():
    fold, (a, b), _ = fold_of(timeout_s=0.5)
    close = START + WARMUP + WINDOW
    a.pending = START + WARMUP  # sent at the window's start, never answered
    b.pending = IDLE
    result = finish(fold, close, close + 10_000_000)
    assert result.censored == 1 and result.hung == 1 and result.errors == {"hung": 1}
    assert latency.decode(result.latency).get_max_value() >= WINDOW - 1


def test_failures_count_by_kind_in_the_window_only():
    fold, (a, _), _ = fold_of()
    for at, done in ((START, START + 10), (START + WARMUP + 5, START + WARMUP + 10)):
        a.failed_kind.append("UNAVAILABLE")
        a.failed_at.append(at)
        a.failed_done.append(done)
    result = finish(fold, START + WARMUP + WINDOW, START + WARMUP + WINDOW)
    assert result.errors == {"UNAVAILABLE": 1} and result.requests_failed == 1
    assert [p.failed for p in result.intervals] == [1, 1]  # the warm-up's failure is on the timeline


def test_completions_per_caller_and_the_timeline_add_up():
    fold, (a, b), _ = fold_of(interval_s=0.5)
    t = START + WARMUP
    for i in range(300):
        answer(a, 1 + i, t + 5_000 * i, t + 5_000 * i + 100)
        if i % 3 == 0:
            answer(b, 100_000 + i, t + 5_000 * i, t + 5_000 * i + 200)
        if i % 50 == 0:
            fold.fold(t + 5_000 * i)
    result = finish(fold, t + WINDOW, t + WINDOW)
    assert result.completions == [300, 100]
    assert sum(p.ok for p in result.intervals if p.index >= 0) == result.requests_ok == 400


def test_an_open_loop_caller_with_nothing_due_in_the_window_is_idle_not_starved():
    run = RunConfig(strategy="null", concurrency=2, rate=10, duration_s=WINDOW / 1e6, warmup_s=WARMUP / 1e6)
    clock = Clock(START, START + WARMUP, START + WARMUP + WINDOW)
    records = [Record(open_loop=True) for _ in range(2)]
    fold = Fold(ShardConfig(run, 0, "", overrun_s=0.7), clock, records)
    a, b = records
    t = START + WARMUP
    a.intended.append(t + 10)
    answer(a, 5, t + 10, t + 20)
    b.intended.append(START + 10)  # b's only request: sent and answered in the warm-up
    answer(b, 6, START + 10, START + 20)
    result = finish(fold, t + WINDOW, t + WINDOW)
    assert result.completions == [1]  # b had nothing due in the window: it is not a starved caller


def test_a_fold_that_fell_behind_catches_up_in_bounded_steps(monkeypatch):
    from tsobench.bench.measure import fold as fold_module

    monkeypatch.setattr(fold_module, "FOLD_MAX", 100)  # 50 a caller
    fold, (a, b), _ = fold_of()
    t = START + WARMUP
    for i in range(400):
        answer(a, 10 + 2 * i, t + i, t + i + 1)
        answer(b, 11 + 2 * i, t + i, t + i + 1)
    assert fold.fold(t + 500) is True and len(a.done) == 350  # a step, and more is waiting
    result = finish(fold, t + WINDOW, t + WINDOW)  # the last fold takes everything, in steps
    assert result.requests_ok == result.checked == 800 and len(result.ranges) == 1
