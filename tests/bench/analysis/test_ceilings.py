"""The server side of a point says when its cost includes other clients' load."""

from __future__ import annotations

import pandas as pd

from tsobench.bench.analysis.ceilings import server_side


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
