"""The server side of a plan: a ceiling only where one can be defended, a lower bound otherwise (pure units)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tsobench.bench.analysis.ceilings import CPU_COST, NO_CPU, SATURATED, UNKNOWN_FROM, server_side


def point(**values) -> pd.Series:
    return pd.Series({"tps": 10_000.0, "count": 1, **values})


def test_a_server_busy_on_its_cores_was_measured_at_saturation():
    side = server_side(point(server_cpu_share=0.95, server_threads=1, server_cpu_us_per_ts=90.0), None)
    assert side.ceiling_kind == SATURATED and side.ceiling_tps == 10_000.0
    assert "0.95 of the 1 core" in side.ceiling_from


def test_a_cpu_cost_gives_the_cores_divided_by_it():
    side = server_side(point(server_cpu_share=0.5, server_threads=2, server_cpu_us_per_ts=50.0), None)
    assert side.ceiling_kind == CPU_COST and side.ceiling_tps == pytest.approx(2 * 1e6 / 50)
    assert side.threads == 2 and side.cpu_us_per_ts == 50.0


def test_a_cost_the_server_was_seen_to_beat_and_a_missing_cpu_are_unknown_not_ceilings():
    beaten = server_side(point(server_cpu_us_per_ts=500.0), None)  # would allow 2,000 ts/s; it did 10,000
    assert beaten.ceiling_tps is None and beaten.ceiling_from.startswith(UNKNOWN_FROM)
    unknown = server_side(point(server_cpu_us_per_ts=math.nan), None)
    assert unknown.ceiling_tps is None and unknown.ceiling_from == UNKNOWN_FROM + NO_CPU
    assert unknown.threads == 1  # a file that does not say: the asyncio server's one thread


def test_the_lower_bound_is_the_most_rpcs_seen_times_the_batching_or_the_points_own_rate():
    own = server_side(point(), None)
    assert own.lower_bound_tps == 10_000.0 and "no server counters" in own.lower_bound_from
    batched = server_side(point(rpcs_per_ts=0.1), server_rps=3_600.0)  # 10 ts per RPC
    assert batched.lower_bound_tps == pytest.approx(36_000.0) and "at this batching" in batched.lower_bound_from
    unbatched = server_side(point(count=2), server_rps=3_600.0)  # batching not measured: count per RPC
    assert unbatched.lower_bound_tps == 10_000.0  # 7,200 from the server, below the point's own rate
    assert "assuming no batching" in unbatched.lower_bound_from


def row(others: float | None) -> pd.Series:
    return pd.Series(
        {
            "tps": 10_000.0,
            "server_cpu_share": 0.2,
            "server_cpu_us_per_ts": 20.0,
            "server_threads": 1,
            "rpcs_per_ts": 1.0,
            "count": 1,
            "server_others_rpcs": others,
        }
    )


def test_others_load_is_named_in_the_ceilings_reason():
    shared = server_side(row(5_000.0), 12_000.0)
    assert "includes others' load" in shared.ceiling_from and "5,000 RPCs" in shared.ceiling_from
    alone = server_side(row(float("nan")), 12_000.0)
    assert "others' load" not in alone.ceiling_from
