"""The harness's own ceiling: how fast the baseline (``null``) strategy goes.

A baseline strategy (``strategy.baseline`` in the file; the built-in ``null``)
answers from an in-process counter with no RPC, so its throughput is
the most the harness itself can measure with that API, concurrency and number
of processes. A point reaching half of that measures the harness as much as
the strategy: it is "harness-bound". After a sweep, ``annotate`` records this
in each results file (``metrics.harness_bound``, ``metrics.harness_ceiling_tps``;
null when no null run matches).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from tsobench.files import write_atomically

from .loader import PathLike, load_results

NULL = "null"  # the built-in baseline strategy, named in advice to run it
BOUND_SHARE = 0.5  # at least this share of the null strategy's throughput: harness-bound
MATCH = ("api", "concurrency", "processes", "rate")  # what makes a null run comparable


def mark(frame: pd.DataFrame, tps: str) -> pd.DataFrame:
    """A copy with ``harness_ceiling_tps`` and ``harness_bound`` computed from the
    null runs in the frame (column ``tps`` holds throughput); rows without a
    matching null run keep what their files recorded (or None)."""
    out = frame.copy()
    nulls = out[out["baseline"] & (out[tps] > 0)]
    if nulls.empty:
        return out
    keys = [k for k in MATCH if k in out.columns]
    ceiling = nulls.groupby(keys, dropna=False)[tps].median().rename("_ceiling").reset_index()
    joined = out[keys].merge(ceiling, on=keys, how="left")["_ceiling"].to_numpy()
    found = ~pd.isna(joined) & ~out["baseline"].to_numpy(dtype=bool)
    out["harness_ceiling_tps"] = out["harness_ceiling_tps"].astype(object)
    out["harness_bound"] = out["harness_bound"].astype(object)
    out.loc[found, "harness_ceiling_tps"] = joined[found]
    out.loc[found, "harness_bound"] = (out.loc[found, tps] >= BOUND_SHARE * joined[found]).tolist()
    return out


def annotate(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Record the harness-bound verdict in every results file under ``paths``
    (atomically, file by file); returns the files rewritten."""
    try:
        df = mark(load_results(paths), "throughput_tps")
    except ValueError:
        return []  # nothing readable: nothing to annotate
    written = []
    for _, row in df[~df["baseline"]].iterrows():
        bound, ceiling = row["harness_bound"], row["harness_ceiling_tps"]
        path = Path(row["path"])
        data = json.loads(path.read_text())
        note = {
            "harness_bound": bool(bound) if isinstance(bound, bool) else None,
            "harness_ceiling_tps": None if pd.isna(ceiling) else round(float(ceiling), 1),
        }
        if all(k in data["metrics"] and data["metrics"][k] == v for k, v in note.items()):
            continue  # already recorded (a resumed sweep)
        data["metrics"].update(note)
        write_atomically(path, json.dumps(data, indent=1) + "\n")
        written.append(path)
    return written
