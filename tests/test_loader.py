"""The loader on the committed example results (results/fixtures/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tsobench.bench.analysis.loader import load, load_pytest_benchmark, load_results

FIXTURES = Path(__file__).resolve().parent.parent / "results" / "fixtures"
RESULTS = sorted(p for p in FIXTURES.glob("*.json") if not p.name.startswith("pytest-benchmark"))
BENCHMARK = FIXTURES / "pytest-benchmark-smoke.json"
REQUIRED = [
    "path",
    "run_id",
    "strategy",
    "api",
    "concurrency",
    "processes",
    "total_callers",
    "rate",
    "count",
    "pool_size",
    "streams",
    "batch_wait_us",
    "server_delay_ms",
    "status",
    "throughput_rps",
    "throughput_tps",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "max_us",
    "mean_us",
    "requests_ok",
    "requests_failed",
    "errors",
    "violations",
    "duplicates",
    "non_monotonic",
    "mismatched",
    "client_cpu_s",
    "cpu_per_1k_ts",
    "server_rpcs",
    "server_timestamps",
    "rpcs_per_ts",
    "histogram",
    "histogram_uncorrected",
    "command",
    "python",
    "grpcio",
    "cpu_model",
    "git_commit",
]


def test_one_row_per_results_file_with_every_column() -> None:
    df = load_results(FIXTURES)
    assert len(df) == len(RESULTS) >= 10
    assert set(REQUIRED) <= set(df.columns)
    assert set(df["path"]) == {str(p) for p in RESULTS}
    assert (df["total_callers"] == df["concurrency"] * df["processes"]).all()
    assert df["histogram"].str.startswith("HIST").all()
    assert {"dispatcher", "locked", "pool", "per-request", "unsafe-shared"} <= set(df["strategy"])


def test_values_match_the_file() -> None:
    path = FIXTURES / "dispatcher-asyncio-c4-p2.json"
    data = json.loads(path.read_text())
    row = load_results(path).iloc[0]
    m = data["metrics"]
    assert row["run_id"] == data["run_id"]
    assert (row["concurrency"], row["processes"], row["total_callers"]) == (4, 2, 8)
    assert row["throughput_tps"] == m["throughput_tps"]
    assert row["p99_us"] == m["latency_us"]["p99"]
    assert row["cpu_per_1k_ts"] == pytest.approx(m["client_cpu_s"] * 1e6 / m["timestamps"])  # ms per 1,000
    assert row["rpcs_per_ts"] == pytest.approx(m["server"]["rpcs"] / m["server"]["timestamps"])
    assert row["command"].startswith("tsobench run") and "-p 2" in row["command"]
    assert row["git_commit"] == data["environment"]["git_commit"]
    assert not row["open_loop"] and row["rate"] != row["rate"]  # NaN: closed loop


def test_errors_open_loop_and_unsafe_control() -> None:
    df = load_results(FIXTURES)
    unsafe = df[df["strategy"] == "unsafe-shared"]
    assert (unsafe["requests_failed"] > 0).all()
    assert all(isinstance(e, dict) and sum(e.values()) > 0 for e in unsafe["errors"])
    open_loop = df[df["open_loop"]]
    assert len(open_loop) >= 3 and open_loop["histogram_uncorrected"].notna().all()
    assert df.loc[~df["open_loop"], "histogram_uncorrected"].isna().all()


def test_folders_skip_manifests_reports_and_other_json(tmp_path: Path) -> None:
    shutil.copy(RESULTS[0], tmp_path / "a.json")
    (tmp_path / "sweep.json").write_text(json.dumps({"schema_version": 1, "kind": "tsobench-sweep", "metrics": {}}))
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / "broken.json").write_text("{ not json")
    (tmp_path / "report").mkdir()
    shutil.copy(RESULTS[1], tmp_path / "report" / "b.json")
    (tmp_path / "deeper").mkdir()
    shutil.copy(RESULTS[2], tmp_path / "deeper" / "c.json")
    df = load_results(tmp_path)
    assert sorted(Path(p).name for p in df["path"]) == ["a.json", "c.json"]


def test_bad_input_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        load_results(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(ValueError, match="not a JSON file"):
        load_results(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a tsobench results file"):
        load_results(tmp_path / "other.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no tsobench results"):
        load_results(tmp_path / "empty")
    future = json.loads(RESULTS[0].read_text()) | {"schema_version": 99}
    (tmp_path / "future.json").write_text(json.dumps(future))
    with pytest.raises(ValueError, match="schema_version 99"):
        load_results(tmp_path / "future.json")


def test_pytest_benchmark_rows_use_the_same_columns() -> None:
    df = load_pytest_benchmark(BENCHMARK)
    data = json.loads(BENCHMARK.read_text())
    entry = data["benchmarks"][0]
    assert len(df) == 1
    row = df.iloc[0]
    assert row["source"] == "pytest-benchmark"
    for key in ("strategy", "api", "concurrency"):
        assert row[key] == entry["params"][key]
    assert row["throughput_tps"] == entry["extra_info"]["throughput_tps"]
    assert row["p99_us"] == entry["extra_info"]["latency_us"]["p99"]
    assert row["violations"] == 0 and row["requests_failed"] == 0
    assert row["cpu_model"] == data["machine_info"]["cpu"]["brand_raw"]
    with pytest.raises(ValueError, match="not a pytest-benchmark file"):
        load_pytest_benchmark(RESULTS[0])


def test_load_reads_both_kinds_into_one_frame() -> None:
    df = load([FIXTURES])
    assert df["source"].value_counts().to_dict() == {"tsobench": len(RESULTS), "pytest-benchmark": 1}
    assert list(load(BENCHMARK).columns) == list(df.columns)
