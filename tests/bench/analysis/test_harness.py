"""The harness's own ceiling: computed when results are loaded, never written back into them."""

from __future__ import annotations

from pathlib import Path

from tsobench.bench.analysis.loader import load
from tsobench.bench.analysis.report import build


def test_harness_bound_is_computed_when_loading_and_no_file_is_rewritten(tmp_path: Path, copy_one) -> None:
    # behaviour changed on purpose (issue 20): a sweep no longer writes metrics.harness_bound into its files
    def null(data):
        data["config"]["strategy"] = "null"
        data["metrics"]["throughput_tps"] = 100_000.0

    copy_one("pool-thread-c4.json", tmp_path)
    copy_one("per-request-thread-c4.json", tmp_path, null, "null.json")
    other = copy_one("locked-thread-c1.json", tmp_path)  # no null run at c=1
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    df = load(tmp_path).set_index("strategy")
    assert df.loc["pool", "harness_bound"] is False and df.loc["pool", "harness_ceiling_tps"] == 100_000.0
    assert df.loc["locked", "harness_bound"] is None  # 3,729 < 50,000; nothing to compare c=1 with
    build(load(tmp_path))
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before and other in before
