"""The harness's own ceiling: how fast the baseline (``null``) strategy goes.

A baseline strategy (``strategy.baseline`` in the file; the built-in ``null``)
answers from an in-process counter with no RPC, so its throughput is the most
the harness itself can measure at that point. A point reaching half of that
measures the harness as much as the strategy: it is "harness-bound". The
figures are computed when results are loaded (and again for folded repeats),
never written back into the files.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

NULL = "null"  # the built-in baseline strategy, named in advice to run it
BOUND_SHARE = 0.5  # at least this share of the null strategy's throughput: harness-bound


def mark(frame: pd.DataFrame, tps: str, match: Sequence[str]) -> pd.DataFrame:
    """A copy with ``harness_ceiling_tps`` and ``harness_bound`` computed from the baseline rows in
    the frame (column ``tps`` holds throughput), matched on the columns ``match`` (the point without
    its strategy); None where no baseline row matches."""
    out = frame.copy()
    out["harness_ceiling_tps"] = float("nan")
    out["harness_bound"] = pd.Series([None] * len(out), index=out.index, dtype=object)
    nulls = out[out["baseline"].astype(bool) & (out[tps] > 0)]
    if nulls.empty:
        return out
    keys = list(match)
    ceiling = nulls.groupby(keys, dropna=False)[tps].median().rename("_ceiling").reset_index()
    ceiling[keys] = ceiling[keys].astype(object)  # a key all missing on one side is float there: match as values
    joined = out[keys].astype(object).merge(ceiling, on=keys, how="left")["_ceiling"].to_numpy()
    found = ~pd.isna(joined) & ~out["baseline"].to_numpy(dtype=bool)
    out.loc[found, "harness_ceiling_tps"] = joined[found]
    out.loc[found, "harness_bound"] = pd.Series(
        out.loc[found, tps].to_numpy() >= BOUND_SHARE * joined[found], index=out.index[found], dtype=object
    )
    return out
