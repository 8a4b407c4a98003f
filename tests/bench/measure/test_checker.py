import numpy as np
import pytest

from tsobench.bench.measure.checker import CallerOrder, Correctness, RangeSet, RealTimeOrder, coalesce, merge_ranges


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


def test_caller_order_flags_a_reply_not_above_what_the_caller_held():
    order = CallerOrder(1)
    lasts = np.array([5, 5, 9], np.int64)  # the second is not strictly increasing
    firsts = lasts - np.array([1, 1, 3]) + 1
    one = np.array([0]), np.array([0])  # caller 0's replies start at index 0
    assert order.check(*one, firsts, lasts).tolist() == [False, True, False]
    assert order.check(*one, np.array([9]), np.array([9])).tolist() == [True]  # held across calls


def test_caller_order_over_many_callers_agrees_with_one_at_a_time():
    rng = np.random.default_rng(3)
    callers = 7
    sizes = rng.integers(0, 40, callers)
    lasts_by_caller = [np.cumsum(rng.integers(-2, 6, n)) + 100 * c for c, n in enumerate(sizes)]  # some drops
    together, alone = CallerOrder(callers), CallerOrder(callers)
    for _ in range(2):  # twice: what each caller held carries over
        lasts = np.concatenate(lasts_by_caller)
        firsts = lasts - rng.integers(0, 3, len(lasts))
        nonempty = [c for c in range(callers) if sizes[c]]
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))[nonempty]
        got = together.check(starts, np.array(nonempty), firsts, lasts)
        want = []
        for c, lo in zip(nonempty, starts, strict=True):
            hi = lo + sizes[c]
            want += alone.check(np.array([0]), np.array([c]), firsts[lo:hi], lasts[lo:hi]).tolist()
        assert got.tolist() == want
        lasts_by_caller = [x + 50 for x in lasts_by_caller]


def test_range_set_grown_in_pieces_agrees_with_one_coalesce():
    rng = np.random.default_rng(2)
    firsts = np.sort(rng.integers(0, 5_000, 2_000))  # mostly in order, as a TSO hands them out ...
    firsts[::37] = rng.integers(0, 5_000, len(firsts[::37]))  # ... with some stragglers and duplicates
    lasts = firsts + rng.integers(0, 4, len(firsts))
    grown = RangeSet()
    for lo in range(0, len(firsts), 97):
        grown.add(firsts[lo : lo + 97], lasts[lo : lo + 97])
    whole = coalesce(firsts, lasts)
    got = grown.ranges()
    assert got.duplicates == whole.duplicates
    assert got.firsts.tolist() == whole.firsts.tolist() and got.lasts.tolist() == whole.lasts.tolist()


def test_verdict_sums_violations():
    assert Correctness(10, 1, 2, 3).violations == 6
    assert Correctness(10).to_dict()["violations"] == 0


def real_time(*replies):
    """(logical, sent_us, done_us) replies of one process: how many are out of real-time order."""
    logical, sent, done = (np.array(v, np.int64) for v in zip(*replies, strict=True))
    order = RealTimeOrder()
    order.add(done, logical)
    return int(order.late(sent, logical).sum())


def test_real_time_order_across_callers():
    # B's reply (logical 5) was handed out before A sent; A then got an older one (4):
    # what a misrouted reply looks like. Per caller, both are fine.
    assert real_time((5, 0, 10), (4, 20, 30)) == 1


def test_overlapping_requests_may_come_back_in_any_order():
    assert real_time((5, 0, 30), (4, 10, 20), (6, 31, 40)) == 0


def test_real_time_order_includes_the_per_caller_case():
    assert real_time((5, 0, 10), (5, 11, 20)) == 1


def test_forgetting_old_replies_keeps_what_they_held_as_the_floor():
    order = RealTimeOrder()
    order.add(np.array([10, 20], np.int64), np.array([5, 7], np.int64))
    order.forget(15)  # nothing still to check was sent before 15
    # at 16 the process held 5 (the floor), at 25 it held 7
    assert order.late(np.array([16, 16, 25, 25]), np.array([5, 6, 7, 8])).tolist() == [True, False, True, False]
    assert order.late(np.array([12]), np.array([1])).tolist() == [False]  # sent before the horizon: not checked
