"""Medians with bootstrap intervals, ratios, and the rule for calling two figures apart."""

from __future__ import annotations

import numpy as np
import pytest

from tsobench.bench.analysis.stats import (
    Estimate,
    Ratio,
    RunFigures,
    Samples,
    estimate,
    median_ci,
    point_samples,
    ratio_ci,
)


def samples(values, source="repeats") -> Samples:
    return Samples(tuple(float(v) for v in values), source)


def test_the_median_and_an_interval_around_it_reproducibly() -> None:
    values = np.random.default_rng(1).normal(1000, 50, 40)
    e = median_ci(samples(values))
    assert e.median == pytest.approx(float(np.median(values)))
    assert e.low < e.median < e.high and e.high - e.low < 100  # 40 samples of sd 50: a tight interval
    assert median_ci(samples(values)) == e  # seeded: the same files give the same report
    assert median_ci(samples(values), confidence=0.5).high - median_ci(samples(values), confidence=0.5).low < (
        e.high - e.low
    )


def test_too_few_samples_give_no_interval_and_no_value_gives_a_dash() -> None:
    one = median_ci(samples([23_596], "one run"))
    assert (one.median, one.low, one.high, one.known) == (23_596, None, None, False)
    assert str(one) == "23,596 [-]"
    assert str(median_ci(samples([]))) == "-"
    assert median_ci(samples([10, 12])).format(".1f") == "11.0 [10.0, 12.0]"
    with pytest.raises(ValueError, match="confidence"):
        median_ci(samples([1, 2]), confidence=1.0)


def test_estimates_are_distinguishable_only_when_their_intervals_do_not_overlap() -> None:
    a, b = median_ci(samples([100, 101, 102, 99, 100])), median_ci(samples([200, 201, 199, 202, 200]))
    near = median_ci(samples([101, 103, 100, 104, 102]))
    assert a.distinguishable_from(b) and b.distinguishable_from(a)
    assert a.overlaps(near) and not a.distinguishable_from(near)
    unknown = median_ci(samples([500], "one run"))
    assert not unknown.distinguishable_from(a)  # without an interval nothing can be told apart


def test_a_ratio_of_medians_with_its_interval_formats_itself() -> None:
    fast, slow = samples([1800, 1810, 1790, 1805, 1795, 1802]), samples([1000, 1005, 995, 1002, 998, 1001])
    r = ratio_ci(fast, slow)
    assert r.value == pytest.approx(1.8, abs=0.01) and r.low < r.value < r.high
    assert r.distinguishable and str(r) == "1.8x [1.8, 1.8]"
    assert r.claim() == str(r) and r.change().startswith("+80.")
    assert r.beyond(0.05) == 1 and ratio_ci(slow, fast).beyond(0.05) == -1
    same = ratio_ci(samples([100, 120, 90, 110]), samples([105, 95, 115, 100]))
    assert not same.distinguishable and same.claim() == "not distinguishable" and same.beyond(0) == 0


def test_a_ratio_without_enough_samples_is_not_distinguishable() -> None:
    r = ratio_ci(samples([200], "one run"), samples([100], "one run"))
    assert r.value == 2 and not r.known and not r.distinguishable
    assert str(r) == "2.0x [-]" and r.change() == "+100.0 % [-]" and r.claim() == "not distinguishable"
    assert str(ratio_ci(samples([]), samples([1, 2]))) == "-"
    assert ratio_ci(samples([1, 2]), samples([0, 0])).value is None  # no ratio to a zero median
    assert str(Ratio(0.52, 0.49, 0.55)) == "0.52x [0.49, 0.55]" and str(Ratio(12.3, 11.0, 14.0)) == "12x [11, 14]"


def interval(t_s, tps, p99, warmup=False) -> dict:
    return {"t_s": t_s, "ok": int(tps / 10), "failed": 0, "tps": tps, "p50_us": 100, "p99_us": p99, "warmup": warmup}


def row(tps, p99, timeline=None, measured_s=1.0, interval_s=0.25) -> dict:
    return {
        "throughput_tps": tps,
        "p99_us": p99,
        "timeline": timeline,
        "measured_s": measured_s,
        "config": {"interval_s": interval_s},
    }


def test_one_run_is_sampled_by_its_measured_intervals() -> None:
    timeline = [
        interval(-0.25, 9_000, 900, warmup=True),  # warm-up: never a sample
        interval(0.0, 10_000, 1000),
        interval(0.25, 11_000, 1100),
        interval(0.5, 12_000, None),  # answered nothing: no p99 sample, still a rate
        interval(0.75, 13_000, 1300),
        interval(1.0, 50_000, 5000),  # a 0.05 s tail of a 1.05 s window: too short for its rate to mean anything
    ]
    run = RunFigures.of(row(11_500, 1200, timeline, measured_s=1.05))
    assert run.interval_tps == (10_000, 11_000, 12_000, 13_000)
    assert run.interval_p99_us == (1000, 1100, 1300)
    s = point_samples([run])
    assert s.tps.source == "intervals" and s.tps.describe() == "4 intervals of one run"
    assert s.p99_us.values == (1000, 1100, 1300)
    e = estimate(s)
    assert e.tps.median == 11_500 and e.tps.known and e.p99_us.median == 1100


def test_repeats_are_sampled_one_value_per_run_and_a_lone_run_without_a_timeline_by_itself() -> None:
    runs = [RunFigures.of(row(t, p)) for t, p in ((1000, 50), (1100, 55), (900, float("nan")))]
    s = point_samples(runs)
    assert s.tps == Samples((1000, 1100, 900), "repeats") and s.p99_us.values == (50, 55)  # nan: nothing answered
    assert s.tps.describe() == "3 repeats"
    lone = point_samples([RunFigures.of(row(1000, 50, timeline=[interval(0.0, 1000, 50)]))])
    assert lone.tps == Samples((1000,), "one run") and lone.p99_us == Samples((50,), "one run")
    assert not estimate(lone).tps.known
    assert isinstance(estimate(lone).tps, Estimate)
