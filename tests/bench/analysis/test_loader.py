"""The loader on the committed example results (results/fixtures/)."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from tsobench.bench.analysis.aggregate import repeats
from tsobench.bench.analysis.loader import load, load_pytest_benchmark, load_results
from tsobench.bench.model.config import RunConfig
from tsobench.bench.model.faults import Fault
from tsobench.options import Spec, point_keys, specs
from tsobench.strategies import registry

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"
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


# --- what makes a point: derived from the option declarations --------------------------------------

EXAMPLES = {Fault: "abort@0.2s", bool: True}  # a value other than the default, for kinds without an obvious one


def other_value(spec: Spec) -> object:
    """A valid value of ``spec`` that is not its default, as a results file records it."""
    if spec.multiple:
        return [dataclasses.asdict(spec.parse(EXAMPLES[spec.kind]))]
    choices = spec.choices()
    if choices:
        return next(c for c in choices if c != spec.default)
    if spec.kind is str:
        return "10.0.0.9:2379"
    if spec.kind is bool:
        return not spec.default
    default = spec.default if isinstance(spec.default, int | float) and not isinstance(spec.default, bool) else 1
    return spec.kind(default + 2)


def recorded_with(data: dict, spec: Spec, value: object) -> dict:
    """``data`` with the option at ``spec.path`` recorded as ``value`` (nested options in their section)."""
    out = copy.deepcopy(data)
    section = out["config"]
    for name in spec.path[:-1]:
        section = section.setdefault(name, {})
    section[spec.path[-1]] = value
    return out


def test_every_declared_option_that_makes_a_point_makes_its_own_row(tmp_path: Path) -> None:
    base = json.loads((FIXTURES / "pool-thread-c4.json").read_text())
    point = [s for s in specs(RunConfig) if s.key in point_keys(RunConfig)]
    assert {s.key for s in point} >= {"loop", "server_members", "timeout_s", "scheduler", "server_delay_ms"}
    for spec in point:
        folder = tmp_path / spec.key
        folder.mkdir()
        (folder / "a.json").write_text(json.dumps(base))
        (folder / "b.json").write_text(json.dumps(recorded_with(base, spec, other_value(spec))))
        agg = repeats(load_results(folder))
        assert len(agg) == 2, f"runs that differ only in {spec.key} folded into one point"


def test_runs_that_differ_only_in_length_seed_or_recording_are_repeats(tmp_path: Path) -> None:
    base = json.loads((FIXTURES / "pool-thread-c4.json").read_text())
    others = [s for s in specs(RunConfig) if s.key not in point_keys(RunConfig)]
    assert {s.key for s in others} >= {"duration_s", "seed", "warmup_s"}
    (tmp_path / "base.json").write_text(json.dumps(base))
    for spec in others:
        (tmp_path / f"{spec.key}.json").write_text(json.dumps(recorded_with(base, spec, other_value(spec))))
    (row,) = repeats(load_results(tmp_path)).to_dict("records")
    assert row["runs"] == len(others) + 1


def test_every_option_is_a_column_by_its_flat_key() -> None:
    df = load_results(FIXTURES / "pool-thread-c4.json")
    assert {s.key for s in specs(RunConfig)} <= set(df.columns)
    row = df.iloc[0]
    assert (row["server_delay_ms"], row["loop"], row["server_members"], row["timeout_s"]) == (0.0, "asyncio", 1, 5.0)
    assert row["faults"] is None and row["scheduler"] is None  # defaults for options the file predates


def test_the_loader_never_asks_the_live_strategy_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # an old file without `strategy` is judged by the name rules only; a recorded record wins over them
    data = json.loads((FIXTURES / "pool-thread-c4.json").read_text())
    data["config"]["strategy"] = "my-plugin"  # not installed here
    (tmp_path / "plugin.json").write_text(json.dumps(data))
    data["strategy"] = {"name": "my-plugin", "safe": False, "baseline": False, "reference": True}
    (tmp_path / "recorded.json").write_text(json.dumps(data))

    def asked() -> None:
        raise AssertionError("the analysis asked the live strategy registry")

    monkeypatch.setattr(registry, "all_strategies", asked)
    monkeypatch.setattr(registry, "get", asked)
    df = load_results(tmp_path).set_index("path")
    plain, recorded = df.loc[str(tmp_path / "plugin.json")], df.loc[str(tmp_path / "recorded.json")]
    assert plain["safe"] and not plain["baseline"] and not plain["reference"]
    assert not recorded["safe"] and recorded["reference"] and recorded["negative_control"]
