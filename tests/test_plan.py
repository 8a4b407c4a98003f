"""Capacity planning: the obvious winner wins, the unreachable is refused plainly."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tsobench.bench.analysis.loader import load_results
from tsobench.bench.analysis.plan import plan
from tsobench.bench.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "results" / "fixtures"


@pytest.fixture(scope="module")
def measured():
    return load_results(FIXTURES)


def test_picks_the_only_setting_that_reaches_the_target_as_measured(measured) -> None:
    # 15k ts/s with 30% headroom needs 21.4k: only dispatcher/asyncio at c=16 measured that much (28k).
    answer = plan(measured, target_tps=15_000)
    r = answer.recommendation
    assert answer.reachable and not answer.extrapolated
    assert (r.strategy, r.api, r.concurrency, r.processes, r.machines) == ("dispatcher", "asyncio", 16, 1, 1)
    assert answer.best_measured.measured_tps == max(o.measured_tps for o in answer.options)
    assert answer.message.startswith("REACHABLE (measured)")


def test_the_unsafe_control_and_dirty_runs_are_never_candidates(measured) -> None:
    answer = plan(measured, target_tps=100)
    assert answer.options and all(o.strategy != "unsafe-shared" for o in answer.options)
    assert all(o.p99_ms > 0 and o.measured_tps > 0 for o in answer.options)


def test_obvious_winner_on_a_synthetic_fixture(tmp_path: Path) -> None:
    # SYNTHETIC: copies of real result files with edited numbers (not measurements): pool is made 10x
    # faster than locked at the same p99, and the unsafe control is given absurd throughput (it must
    # still never be recommended: it failed).
    edits = {
        "pool-thread-c4.json": {"throughput_tps": 40_000.0, "throughput_rps": 40_000.0},
        "locked-thread-c4.json": {"throughput_tps": 4_000.0, "throughput_rps": 4_000.0},
        "unsafe-shared-asyncio-c4.json": {"throughput_tps": 1e9, "throughput_rps": 1e9},
    }
    for name, metrics in edits.items():
        data = json.loads((FIXTURES / name).read_text())
        data["metrics"].update(metrics)
        (tmp_path / name).write_text(json.dumps(data))
    answer = plan(load_results(tmp_path), target_tps=20_000, headroom=0.3)
    assert answer.reachable and not answer.extrapolated
    assert answer.recommendation.strategy == "pool" and answer.recommendation.processes == 1
    # headroom 0.5: 20k needs 40k of capacity, exactly what pool measured, still one process
    assert plan(load_results(tmp_path), target_tps=20_000, headroom=0.5).recommendation.processes == 1


def test_processes_and_machines_arithmetic(measured) -> None:
    answer = plan(measured, target_tps=25_000, headroom=0.3)
    r = answer.recommendation
    assert answer.reachable and answer.extrapolated  # more than anything measured: flagged, not hidden
    assert "EXTRAPOLATION" in answer.message
    assert r.processes == math.ceil(25_000 / (r.per_process_tps * 0.7))
    assert r.machines == math.ceil(r.processes / r.cores_per_machine)
    assert r.ceiling_tps >= answer.required_tps


def test_unreachable_target_is_refused_with_a_reason(measured) -> None:
    answer = plan(measured, target_tps=10_000_000)
    assert not answer.reachable and answer.recommendation is None
    assert answer.message.startswith("UNREACHABLE")
    assert "cannot take the server past its capacity" in answer.message
    assert answer.best_measured is not None  # still says what the best measured point is


def test_p99_limit_nobody_meets(measured) -> None:
    answer = plan(measured, target_tps=1_000, p99_ms=0.01)
    assert not answer.reachable
    assert "no safe measured point meets that p99" in answer.message


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["plan", str(FIXTURES), "--target-tps", "15000", "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["reachable"] and data["recommendation"]["strategy"] == "dispatcher"
    assert {"sigma", "kappa", "lambda_", "n_star", "peak", "sigma_err"} <= set(data["fits"][0]["fit"] or {})
    assert data["littles_law"]["runs"] > 0
    refused = runner.invoke(main, ["plan", str(FIXTURES), "--target-tps", "1e7"])
    assert refused.exit_code == 3 and "UNREACHABLE" in refused.output
    bad = runner.invoke(main, ["plan", str(FIXTURES), "--target-tps", "100", "--headroom", "1.5"])
    assert bad.exit_code == 2 and "headroom" in bad.output and "Traceback" not in bad.output
    only_unsafe = tmp_path / "unsafe"
    only_unsafe.mkdir()
    shutil.copy(FIXTURES / "unsafe-shared-thread-c4.json", only_unsafe)
    none = runner.invoke(main, ["plan", str(only_unsafe), "--target-tps", "100"])
    assert none.exit_code == 3 and "no safe, clean measured point" in " ".join(none.output.split())
