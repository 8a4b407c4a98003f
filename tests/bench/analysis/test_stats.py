"""Medians with order-statistic intervals, the one rule for calling two figures apart, and samples
that stand for what a rerun would do."""

from __future__ import annotations

import numpy as np
import pytest

from tsobench.bench.analysis.stats import (
    CANNOT_TELL,
    HIGHER,
    LOWER,
    MIN_BATCHES,
    SAME,
    Change,
    Estimate,
    RunFigures,
    Samples,
    batch_means,
    compare_samples,
    estimate,
    lag1,
    median_ci,
    point_samples,
    prediction_interval,
)


def samples(values, source="repeats") -> Samples:
    return Samples(tuple(float(v) for v in values), source)


def test_the_median_and_an_order_statistic_interval_around_it() -> None:
    values = np.random.default_rng(1).normal(1000, 50, 40)
    e = median_ci(samples(values))
    assert e.median == pytest.approx(float(np.median(values)))
    assert e.low < e.median < e.high and e.high - e.low < 100  # 40 samples of sd 50: a tight interval
    assert e.confidence is not None and 0.95 <= e.confidence < 0.99 and e.needed is None
    assert e.low in values and e.high in values  # order statistics: samples themselves
    half = median_ci(samples(values), confidence=0.5)
    assert half.high - half.low < e.high - e.low


def test_too_few_samples_state_their_real_confidence_and_how_many_would_do() -> None:
    three = median_ci(samples([10, 30, 20]))
    assert (three.low, three.high, three.confidence, three.needed) == (10, 30, 0.75, 6)  # [min, max] of 3: 75 %
    assert median_ci(samples([1, 2, 3, 4, 5])).confidence == pytest.approx(1 - 2 / 32)
    assert median_ci(samples(range(6))).confidence >= 0.95 and median_ci(samples(range(6))).needed is None
    one = median_ci(samples([23_596]))
    assert (one.median, one.low, one.high, one.known, one.needed) == (23_596, None, None, False, 6)
    assert str(one) == "23,596 [-]"
    assert str(median_ci(samples([]))) == "-"
    assert median_ci(samples([10, 12])).format(".1f") == "11.0 [10.0, 12.0]"
    with pytest.raises(ValueError, match="confidence"):
        median_ci(samples([1, 2]), confidence=1.0)
    with pytest.raises(ValueError, match="samples come from"):
        samples([1], "intervals")


@pytest.mark.parametrize("n", [3, 5, 10])
@pytest.mark.parametrize("shape", ["normal", "lognormal"])
def test_stated_confidence_is_simulated_coverage(shape: str, n: int) -> None:
    """Purpose (issue 24): an interval labelled 95 % covered 77 % at n=3. Both the median's and the
    ratio's stated confidence must hold within 3 points on data of either shape."""
    rng = np.random.default_rng(n)
    trials, true_ratio = 2_000, 1.5

    def draw() -> np.ndarray:
        return rng.normal(100, 20, n) if shape == "normal" else rng.lognormal(0, 1, n)

    truth = 100.0 if shape == "normal" else 1.0  # the true median
    median_hits = ratio_hits = 0
    stated: set[float | None] = set()
    for _ in range(trials):
        e = median_ci(samples(draw()))
        stated.add(e.confidence)
        median_hits += e.low <= truth <= e.high
        c = compare_samples(samples(draw()), samples(true_ratio * draw()))
        ratio_hits += c.low <= true_ratio <= c.high
    (confidence,) = stated
    assert confidence is not None
    assert median_hits / trials >= confidence - 0.03
    assert abs(median_hits / trials - confidence) <= 0.04  # distribution-free: it is what it says
    assert ratio_hits / trials >= 0.95 - 0.03


@pytest.mark.parametrize("n", [3, 5, 10])
def test_a_prediction_interval_covers_one_new_sample_as_often_as_it_says(n: int) -> None:
    """Purpose: plan --confirm judged a new measurement by the middle 95 % of 3 repeats, which
    covers a new one about half the time, and failed a plan this machine held."""
    rng = np.random.default_rng(100 + n)
    trials = 4_000
    hits = 0
    for _ in range(trials):
        interval = prediction_interval(samples(rng.lognormal(10, 0.1, n)))
        assert interval is not None
        hits += interval[0] <= rng.lognormal(10, 0.1) <= interval[1]
    assert abs(hits / trials - 0.95) <= 0.02
    assert prediction_interval(samples([5.0])) is None  # one sample has no spread
    assert prediction_interval(samples([1.0, 2.0, 3.0], "steadiness")) is None  # never deciding


def test_compare_samples_is_the_one_rule() -> None:
    fast, slow = samples([1800, 1810, 1790, 1805, 1795, 1802]), samples([1000, 1005, 995, 1002, 998, 1001])
    up = compare_samples(slow, fast)
    assert isinstance(up, Change) and up.direction == HIGHER and up.confidence == 0.95
    assert up.ratio == pytest.approx(1.8, abs=0.01) and up.low < up.ratio < up.high
    assert str(up) == "1.8x [1.8, 1.8]" and up.claim() == str(up) and up.change().startswith("+80.")
    assert compare_samples(fast, slow).direction == LOWER
    same = compare_samples(samples([105, 95, 115, 100]), samples([100, 120, 90, 110]))
    assert same.direction == SAME and same.claim() == "not distinguishable"
    small = compare_samples(slow, samples([1030, 1031, 1029, 1030]))  # +3 %: significant, below the effect
    assert small.low > 1 and small.direction == SAME
    assert compare_samples(slow, samples([1030, 1031, 1029, 1030]), min_effect=0).direction == HIGHER
    assert str(Change(0.52, 0.49, 0.55, 0.95, LOWER)) == "0.52x [0.49, 0.55]"
    assert str(Change(12.3, 11.0, 14.0, 0.95, HIGHER)) == "12x [11, 14]"


def test_one_sample_a_side_or_steadiness_cannot_tell() -> None:
    """Purpose (issue 24): one run a side with no valid samples is "cannot tell", never "slower"."""
    lone = compare_samples(samples([100]), samples([50]))
    assert lone.direction == CANNOT_TELL and lone.ratio == pytest.approx(0.5) and not lone.known
    assert lone.claim() == CANNOT_TELL and lone.change() == "-50.0 % [-]"
    steady = compare_samples(samples([100, 101, 99, 100], "steadiness"), samples([50, 51, 49, 50], "steadiness"))
    assert steady.direction == CANNOT_TELL and "steadiness" in steady.why
    assert str(compare_samples(samples([]), samples([1, 2]))) == "-"
    assert compare_samples(samples([1, 2]), samples([0, 0])).direction == CANNOT_TELL
    with pytest.raises(ValueError, match="min_effect"):
        compare_samples(samples([1, 2]), samples([1, 2]), min_effect=1)


def test_batch_means_only_when_neighbours_no_longer_correlate() -> None:
    rng = np.random.default_rng(3)
    independent = rng.normal(1000, 50, 40)
    b = batch_means(independent)
    assert b.source == "batches" and b.per_batch == 1 and len(b) == 40 and b.significant
    ar = np.zeros(400)  # AR(1), rho 0.9: neighbours lean on each other for ~10 intervals
    for i in range(1, len(ar)):
        ar[i] = 0.9 * ar[i - 1] + rng.normal()
    assert lag1(ar) > 0.8
    batched = batch_means(1000 + ar)
    assert batched.source == "batches" and batched.per_batch >= 8 and lag1(batched.values) <= 0.2
    short = batch_means(independent[: MIN_BATCHES - 1])  # too few to measure the correlation
    assert short.source == "steadiness" and not short.significant and short.describe().endswith("(steadiness only)")
    assert median_ci(short).confidence is None  # its range, shown, covers nothing
    trend = batch_means(np.arange(40.0))  # a run still warming up: correlated at every size
    assert trend.source == "steadiness"


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
    assert s.tps.source == "steadiness" and s.tps.describe() == "4 intervals of one run (steadiness only)"
    assert s.p99_us.values == (1000, 1100, 1300)
    e = estimate(s)
    assert e.tps.median == 11_500 and e.tps.known and e.tps.confidence is None and e.p99_us.median == 1100


def test_repeats_are_sampled_one_value_per_run_and_a_lone_run_without_a_timeline_by_itself() -> None:
    runs = [RunFigures.of(row(t, p)) for t, p in ((1000, 50), (1100, 55), (900, float("nan")))]
    s = point_samples(runs)
    assert s.tps == Samples((1000, 1100, 900), "repeats") and s.p99_us.values == (50, 55)  # nan: nothing answered
    assert s.tps.describe() == "3 repeats"
    lone = point_samples([RunFigures.of(row(1000, 50, timeline=[interval(0.0, 1000, 50)]))])
    assert lone.tps == Samples((1000,), "repeats") and lone.p99_us == Samples((50,), "repeats")
    assert not estimate(lone).tps.known
    assert isinstance(estimate(lone).tps, Estimate)
