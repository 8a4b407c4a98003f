import numpy as np
import pytest

from tsobench.bench.checker import CallerCheck, Correctness, coalesce, merge_ranges, out_of_real_time_order
from tsobench.strategies import Timestamp


def ranges(pairs):
    firsts, lasts = zip(*pairs, strict=True)
    return coalesce(np.array(firsts, np.int64), np.array(lasts, np.int64))


def test_adjacent_ranges_coalesce_without_duplicates():
    r = ranges([(5, 9), (1, 4), (10, 10)])
    assert list(zip(r.firsts, r.lasts, strict=True)) == [(1, 10)]
    assert r.duplicates == 0


def test_gaps_keep_ranges_apart():
    r = ranges([(1, 2), (4, 5)])
    assert list(zip(r.firsts, r.lasts, strict=True)) == [(1, 2), (4, 5)]


@pytest.mark.parametrize(
    ("pairs", "duplicates"),
    [
        ([(1, 5), (5, 6)], 1),
        ([(1, 10), (3, 4)], 2),  # contained
        ([(1, 2), (3, 4), (4, 6), (5, 8)], 3),  # 4 twice, 5 and 6 twice
        ([(7, 7), (7, 7), (7, 7)], 2),
    ],
)
def test_overlaps_count_as_duplicates(pairs, duplicates):
    assert ranges(pairs).duplicates == duplicates


def test_merging_shards_finds_cross_shard_duplicates():
    a, b = ranges([(1, 100)]), ranges([(100, 200)])
    merged = merge_ranges([a, b])
    assert merged.duplicates == 1
    assert len(merged) == 1


def test_brute_force_agrees_on_random_ranges():
    rng = np.random.default_rng(1)
    firsts = rng.integers(0, 500, 300)
    lasts = firsts + rng.integers(0, 5, 300)
    values = np.concatenate([np.arange(f, last + 1) for f, last in zip(firsts, lasts, strict=True)])
    assert coalesce(firsts, lasts).duplicates == len(values) - len(np.unique(values))


def test_caller_check_flags_non_monotonic_and_mismatch():
    check = CallerCheck()
    check.observe(Timestamp(10, 5, count=1), 1, 0, 1)
    check.observe(Timestamp(10, 5, count=1), 1, 2, 3)  # not strictly increasing
    check.observe(Timestamp(10, 9, count=3), 1, 4, 5)  # asked 1, got 3
    assert (check.non_monotonic, check.mismatched, check.checked) == (1, 1, 5)
    assert check.ranges().duplicates == 1


def test_verdict_sums_violations():
    assert Correctness(10, 1, 2, 3).violations == 6
    assert Correctness(10).to_dict()["violations"] == 0


def callers_with(*replies):
    """CallerChecks from (caller, logical, sent_us, done_us) tuples, physical fixed."""
    checks = {}
    for caller, logical, sent, done in replies:
        checks.setdefault(caller, CallerCheck()).observe(Timestamp(1, logical), 1, sent, done)
    return list(checks.values())


def test_real_time_order_across_callers():
    # B's reply (logical 5) was handed out before A sent; A then got an older one (4):
    # what a misrouted reply looks like. Per caller, both are fine.
    checks = callers_with(("B", 5, 0, 10), ("A", 4, 20, 30))
    assert out_of_real_time_order(checks) == 1
    assert sum(c.non_monotonic for c in checks) == 0


def test_overlapping_requests_may_come_back_in_any_order():
    checks = callers_with(("B", 5, 0, 30), ("A", 4, 10, 20), ("C", 6, 31, 40))
    assert out_of_real_time_order(checks) == 0


def test_real_time_order_includes_the_per_caller_case():
    checks = callers_with(("A", 5, 0, 10), ("A", 5, 11, 20))
    assert out_of_real_time_order(checks) == 1 == checks[0].non_monotonic
