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
from tsobench.bench.analysis.usl import SeriesFit, fit_usl
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
    assert answer.limit == r.limit == "client side" and "the client side is the limit" in answer.message
    assert r.processes == math.ceil(25_000 / (r.per_process_tps * 0.7))
    assert r.machines == math.ceil(r.processes / r.cores_per_machine) and "of 2 cores" in answer.message
    assert r.server_ceiling_tps >= answer.required_tps and r.server_ceiling_from.startswith("server side")
    assert r.command in answer.message and "--processes 1,2 " in r.command


ONE_PROCESS = ("dispatcher-asyncio-c1.json", "dispatcher-asyncio-c4.json", "dispatcher-asyncio-c16.json")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory):
    """dispatcher/asyncio measured with one client process at 1, 4, 16 callers (28k ts/s at most); the
    server answered at most 2,947 RPCs/s and the c=16 point batched 16 timestamps per RPC: 47k ts/s."""
    folder = tmp_path_factory.mktemp("one-process")
    for name in ONE_PROCESS:
        shutil.copy(FIXTURES / name, folder)
    return load_results(folder)


def test_one_process_and_server_headroom_answers_with_processes_and_a_command(one_process) -> None:
    answer = plan(one_process, target_tps=30_000, headroom=0.3)  # 43k of capacity: below the 47k server side
    r = answer.recommendation
    assert answer.reachable and not answer.message.startswith("UNREACHABLE")
    assert (r.strategy, r.concurrency, r.processes, r.limit) == ("dispatcher", 16, 2, "client side")
    assert r.command == (
        "tsobench sweep --strategies dispatcher --apis asyncio --concurrency 16 --processes 1,2 --duration 10 "
        "-o results/confirm-dispatcher-asyncio-c16 --report"
    )
    assert "no client-side ceiling: 3 concurrency level(s), a ceiling needs 4" in answer.message


def test_a_target_beyond_the_measured_server_ceiling_is_refused(one_process) -> None:
    answer = plan(one_process, target_tps=40_000)  # 57k of capacity: above the 47k server side
    assert not answer.reachable and answer.limit == "server side"
    assert answer.message.startswith("UNREACHABLE as measured")
    assert "2,947 RPCs/s (the most measured) x 16.0 ts per RPC" in answer.message
    assert all(o.processes is None and o.machines is None for o in answer.options)  # no "needs" past a ceiling


def test_a_poor_fit_sets_no_ceiling() -> None:
    n = [1, 2, 4, 8, 16]
    noisy = SeriesFit("s", "pool", "thread", 5, fit_usl(n, [1000, 5000, 1500, 6000, 2000]))
    assert noisy.fit is not None and noisy.fit.r2 < 0.8
    assert noisy.ceiling is None and noisy.no_ceiling_because.startswith("R²")
    good_n = [1, 2, 4, 8, 16, 32]
    good = SeriesFit("s", "pool", "thread", 6, fit_usl(good_n, [1000 * k / (1 + 0.05 * (k - 1)) for k in good_n]))
    assert good.ceiling is not None and good.ceiling == good.fit.peak
    few = SeriesFit("s", "pool", "thread", 3, fit_usl([1, 4, 16], [1000, 3000, 5000]))
    assert few.ceiling is None and "needs 4" in few.no_ceiling_because


def test_unreachable_target_is_refused_with_a_reason(measured) -> None:
    answer = plan(measured, target_tps=10_000_000)
    assert not answer.reachable and answer.recommendation is None
    assert answer.message.startswith("UNREACHABLE")
    assert "a lower bound of its capacity" in answer.message and "tsobench sweep" in answer.message
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
    assert data["limit"] == "measured"
    assert {"limit", "server_ceiling_tps", "server_ceiling_from", "client_ceiling_tps", "client_ceiling_from",
            "processes", "machines", "cores_per_machine", "command"} <= set(data["recommendation"])  # fmt: skip
    assert all("no_ceiling_because" in f and "ceiling_tps" in f for f in data["fits"])
    refused = runner.invoke(main, ["plan", str(FIXTURES), "--target-tps", "1e7"])
    assert refused.exit_code == 3 and "UNREACHABLE" in refused.output
    bad = runner.invoke(main, ["plan", str(FIXTURES), "--target-tps", "100", "--headroom", "1.5"])
    assert bad.exit_code == 2 and "headroom" in bad.output and "Traceback" not in bad.output
    only_unsafe = tmp_path / "unsafe"
    only_unsafe.mkdir()
    shutil.copy(FIXTURES / "unsafe-shared-thread-c4.json", only_unsafe)
    none = runner.invoke(main, ["plan", str(only_unsafe), "--target-tps", "100"])
    assert none.exit_code == 3 and "no safe, clean measured point" in " ".join(none.output.split())
