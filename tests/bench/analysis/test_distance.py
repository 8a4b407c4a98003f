"""Distance: each point's round trip, each design's bound, PD's parallel-RPC trade beside TiDB's figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tsobench.bench.analysis.aggregate import repeats
from tsobench.bench.analysis.distance import DOCUMENTED_PARALLEL, BoundCheck, distance_text, parallel_trades
from tsobench.bench.analysis.loader import load_results

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"


def test_a_bound_in_batches_bounds_rpcs_and_says_so() -> None:
    b = BoundCheck("dispatcher/asyncio", "c=64", "batches", 4, 2.0, "emulated", 1_800.0)
    assert b.limit == 2_000 and b.share == pytest.approx(0.9)
    assert b.sentence() == (
        "dispatcher/asyncio c=64: 1,800 RPCs/s, 90% of its bound (4 batches in flight per round trip of 2.00 ms, "
        "emulated: 2,000/s), which bounds RPCs, not timestamps (each batch carries every caller that queued)"
    )
    over = BoundCheck("locked/asyncio", "c=16", "requests", 1, 0.5, "the shortest measured", 2_400.0)
    assert "120% of its bound" in over.sentence() and "is not the limit" in over.sentence()


def test_the_distance_of_a_point_is_stated_as_measured() -> None:
    emulated = pd.Series({"rtt_ms": 2.07, "rtt_emulated_ms": 2.0, "loopback": True, "target": None})
    assert distance_text(emulated) == "2 ms emulated (measured 2.07 ms)"
    loop = pd.Series({"rtt_ms": 0.05, "rtt_emulated_ms": None, "loopback": True, "target": None})
    assert distance_text(loop) == "loopback (round trip 0.05 ms)"
    old = pd.Series({"rtt_ms": None, "rtt_emulated_ms": None, "loopback": None, "target": None})
    assert distance_text(old) == "distance not recorded"


def test_the_parallel_trade_is_set_beside_tidbs_figures() -> None:
    # SYNTHETIC: one open-loop point at 1 ms measured with 1, 2 and 4 RPCs in flight (numbers by hand)
    (point,) = repeats(load_results(FIXTURES / "dispatcher-asyncio-c8-rate2000.json")).to_dict("records")
    measured = {1: (1_620.0, 900.0), 2: (1_300.0, 1_750.0), 4: (1_150.0, 3_400.0)}  # mean µs, RPCs/s
    agg = pd.DataFrame(
        [
            {**point, "rpc_concurrency": n, "rtt_ms": 1.0, "mean_us": mean, "batch_rpcs_per_s": rpcs}
            for n, (mean, rpcs) in measured.items()
        ]
    )
    (trade,) = parallel_trades(agg)
    assert [s.rpcs_in_flight for s in trade.steps] == [1, 2, 4]
    assert [s.documented for s in trade.steps] == [DOCUMENTED_PARALLEL[n] for n in (1, 2, 4)] == [1.5, 1.25, 1.125]
    assert trade.steps[0].off == pytest.approx(1.62 / 1.5 - 1)
    text = trade.sentence()
    assert text.startswith("Parallel RPCs, dispatcher/asyncio c=8 rate=2000/s at ")
    assert "1 in flight: mean 1.62x the round trip, TiDB documents about 1.5x (+8%), 900 RPCs/s" in text
    assert "4 in flight: mean 1.15x the round trip, TiDB documents about 1.125x (+2%), 3,400 RPCs/s" in text
    timed = agg.assign(batch_rpc_us_mean=[1_080.0, 1_040.0, 1_020.0])  # what the dispatcher timed per RPC
    assert (
        "1 in flight: mean 1.50x the RPC time, TiDB documents about 1.5x (+0%)" in parallel_trades(timed)[0].sentence()
    )


def test_no_parallel_trade_without_several_rpc_concurrencies() -> None:
    agg = repeats(load_results(FIXTURES / "dispatcher-asyncio-c8-rate2000.json"))
    assert parallel_trades(agg) == [] and parallel_trades(agg.assign(rpc_concurrency=1)) == []
