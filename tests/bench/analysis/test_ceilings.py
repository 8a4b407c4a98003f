"""The server side of a point: measured at saturation, a fitted cost, or unknown with its reason."""

from __future__ import annotations

import pandas as pd

from tsobench.bench.analysis.ceilings import NO_CPU, SATURATED, UNKNOWN_FROM, Batch, planned_batch, server_side

ONE = Batch(ts_per_rpc=1.0, streams_per_rpc=0.0, measured_ts_per_rpc=1.0, how="1 ts per RPC")


def row(**over: object) -> pd.Series:
    base = {"tps": 10_000.0, "server_cpu_share": 0.2, "server_threads": 1, "rpcs_per_ts": 1.0, "count": 1}
    return pd.Series(base | over)


def test_a_server_busy_on_its_cores_was_measured_at_saturation():
    side = server_side(row(server_cpu_share=0.95), None, ONE, 10_000.0, "c=64")
    assert side.ceiling_kind == SATURATED and side.ceiling_tps == 10_000.0
    assert "0.95 of the 1 core" in side.ceiling_from


def test_without_server_cpu_there_is_no_ceiling_only_what_was_seen():
    side = server_side(row(server_cpu_share=None), None, ONE, 12_000.0, "c=64")
    assert side.ceiling_tps is None and side.ceiling_kind is None
    assert side.ceiling_from == UNKNOWN_FROM + NO_CPU
    assert side.lower_bound_tps == 12_000.0 and "not a ceiling" in side.lower_bound_from


def test_others_load_is_named_in_the_ceilings_reason():
    shared = server_side(row(server_others_rpcs=5_000.0), None, ONE, 12_000.0, "c=64")
    assert "includes others' load" in shared.ceiling_from and "5,000 RPCs" in shared.ceiling_from
    alone = server_side(row(server_others_rpcs=float("nan")), None, ONE, 12_000.0, "c=64")
    assert "others' load" not in alone.ceiling_from


def test_a_design_that_does_not_batch_keeps_the_batch_it_was_measured_at():
    batch = planned_batch(row(strategy="pool"), 50_000.0, 0.0)
    assert batch.ts_per_rpc == 1.0
