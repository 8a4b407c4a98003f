import random

import pytest

from tsobench.bench.measure import latency


def test_merged_histograms_equal_one_histogram_of_all_values():
    rng = random.Random(7)
    parts = [[int(rng.lognormvariate(6, 1.2)) + 1 for _ in range(2000)] for _ in range(4)]
    merged = latency.merge(latency.encode(latency.histogram_of(p)) for p in parts)
    whole = latency.histogram_of(v for p in parts for v in p)
    assert merged.get_total_count() == whole.get_total_count() == 8000
    assert latency.summarize(merged) == latency.summarize(whole)


def test_summary_of_empty_histogram_is_zero():
    assert latency.summarize(latency.new_histogram())["p99"] == 0


def test_values_are_recorded_as_they_are_or_refused():
    h = latency.histogram_of([0, 1, 5])
    assert (h.get_min_value(), h.get_max_value(), h.get_total_count()) == (0, 5, 3)
    with pytest.raises(ValueError, match="outside"):
        latency.histogram_of([latency.HIGHEST_US * 10])
