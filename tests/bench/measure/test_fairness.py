"""Fairness figures and Little's law, as pure functions."""

import pytest

from tsobench.bench.measure.fairness import fairness, littles_law_ratio


def test_equal_completions_are_perfectly_fair():
    assert fairness([5, 5, 5, 5]) == {"jain": 1.0, "min_per_caller": 5, "max_per_caller": 5, "starved_callers": 0}


def test_one_caller_taking_everything_scores_one_over_n():
    f = fairness([100, 0, 0, 0])
    assert f["jain"] == pytest.approx(0.25)
    assert f["starved_callers"] == 3


def test_merging_is_concatenation():
    """Per-process completions merge by concatenation, not by averaging indexes."""
    a, b = [10, 10], [0, 30]
    merged = fairness(a + b)
    assert merged["jain"] == pytest.approx(50**2 / (4 * (100 + 100 + 0 + 900)))
    assert (merged["min_per_caller"], merged["max_per_caller"], merged["starved_callers"]) == (0, 30, 1)


def test_nobody_answered_has_no_index():
    assert fairness([0, 0])["jain"] is None
    assert fairness([])["starved_callers"] == 0


def test_littles_law_ratio_is_the_busy_share_of_the_callers():
    assert littles_law_ratio(answered_us=8_000_000, measured_s=1.0, callers=8) == 1.0
    assert littles_law_ratio(answered_us=1_000_000, measured_s=1.0, callers=8) == 0.125
    assert littles_law_ratio(answered_us=5, measured_s=0.0, callers=8) is None
