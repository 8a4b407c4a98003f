"""Capacity planning: the obvious winner wins, the unreachable is refused plainly, and only above a
ceiling it can name; what nobody measured is unknown, never unreachable."""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from tsobench.bench.analysis.ceilings import FITTED, SATURATED
from tsobench.bench.analysis.loader import load_results
from tsobench.bench.analysis.plan import (
    MORE_PROCESSES,
    REACHABLE,
    UNKNOWN,
    UNREACHABLE,
    confirm_command,
    confirmation,
    plan,
    prediction,
    print_plan,
    shown,
)
from tsobench.bench.analysis.usl import SeriesFit, fit_usl
from tsobench.bench.cli.commands import main

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"


@pytest.fixture(scope="module")
def measured():
    return load_results(FIXTURES)


# The server's CPU in the hand-made copies: a cost per RPC, as a TSO server spends it. 200 µs: one core answers
# 5,000 RPCs/s, above the 4,633 the fixtures' busiest point saw (that one ran 0.93 of a core: saturated).
US_PER_RPC = 200.0


@pytest.fixture
def measured_with_cpu(copies, with_cpu):
    """Every fixture, its server CPU recorded (the contract of DESIGN.md, hand-made)."""
    names = sorted(p.name for p in FIXTURES.glob("*.json") if p.name != "pytest-benchmark-smoke.json")
    return load_results(copies(names, lambda d: with_cpu(d, US_PER_RPC)))


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


def test_processes_and_machines_arithmetic(measured_with_cpu) -> None:
    answer = plan(measured_with_cpu, target_tps=25_000, headroom=0.3)
    r = answer.recommendation
    assert answer.reachable and answer.extrapolated  # more than anything measured: flagged, not hidden
    assert answer.limit == r.limit == "client side" and "the client side is the limit" in answer.message
    assert r.processes == math.ceil(25_000 / (r.per_process_tps * 0.7))
    assert r.machines == math.ceil(r.processes / r.cores_per_machine) and "of 2 cores" in answer.message
    assert r.server_ceiling_tps >= answer.required_tps and r.server_ceiling_from.startswith("server side")
    assert r.command in answer.message and "--processes 1,2 " in r.command
    # the ceiling is the server's cost on its one core: 200 µs per RPC of 16 timestamps, 80k ts/s
    assert r.server_ceiling_kind == FITTED and r.server_ceiling_tps == pytest.approx(1e6 / 200 * 13_968 / 873)


ONE_PROCESS = ("dispatcher-asyncio-c1.json", "dispatcher-asyncio-c4.json", "dispatcher-asyncio-c16.json")


@pytest.fixture
def one_process(copies, with_cpu):
    """Every fixture, the server's CPU (hand-made) 300 µs per RPC: the cost model fits one core answering
    3,333 RPCs/s, 53.3k ts/s at the 16 per RPC dispatcher/asyncio c=16 batched. dispatcher/asyncio was measured
    with one client process at 1, 4, 16 callers (28k ts/s at most)."""
    return load_results(copies(fixture_names(), lambda d: with_cpu(d, 300.0)))


def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.glob("*.json") if p.name != "pytest-benchmark-smoke.json")


def test_one_process_and_server_headroom_answers_with_processes_and_a_command(one_process) -> None:
    answer = plan(one_process, target_tps=30_000, headroom=0.3)  # 43k of capacity: below the 53.3k server side
    r = answer.recommendation
    assert answer.reachable and not answer.message.startswith("UNREACHABLE")
    assert (r.strategy, r.concurrency, r.processes, r.limit) == ("dispatcher", 16, 2, "client side")
    assert r.command == (
        "tsobench sweep --strategies dispatcher --apis asyncio --concurrency 16 --processes 1,2 --duration 10 "
        "-o results/confirm-dispatcher-asyncio-c16 --report"
    )
    assert "no client-side ceiling: 3 concurrency level(s), a ceiling needs 4" in answer.message


def test_the_confirm_command_names_each_setting_as_the_sweep_takes_it(one_process) -> None:
    """A setting that is a sweep axis (--rpc-concurrency) is given as its axis (--rpc-concurrencies)."""
    r = plan(one_process, target_tps=30_000, headroom=0.3).recommendation
    settings = (("rpc_concurrency", 2), ("max_inflight", 3))
    argv = shlex.split(confirm_command(dataclasses.replace(r, settings=settings), 2))
    assert argv[argv.index("--rpc-concurrencies") + 1] == "2" and argv[argv.index("--max-inflight") + 1] == "3"
    assert argv[:2] == ["tsobench", "sweep"]
    params = main.commands["sweep"].make_context("sweep", argv[2:]).params  # the sweep's own parser takes it
    assert params["rpc_concurrencies"] == (2,) and params["max_inflight"] == 3


def test_a_target_beyond_the_server_cpu_ceiling_is_refused(one_process) -> None:
    answer = plan(one_process, target_tps=40_000)  # 57k of capacity: above the 53.3k the server's CPU allows
    assert not answer.reachable and answer.limit == "server side" and answer.answer == UNREACHABLE
    assert answer.message.startswith("UNREACHABLE")
    assert "53,3" in answer.message and "µs of server CPU per timestamp" in answer.message
    assert "cannot take the server past it" in answer.message and "--processes" not in answer.message
    # the most this design was seen answering is a lower bound, shown as one, never the ceiling
    assert answer.focus.server_lower_bound_from.startswith("server side at least 28,082 ts/s: seen answering this")
    assert "not a ceiling" in answer.focus.server_lower_bound_from
    assert all(o.processes is None and o.machines is None for o in answer.options)  # no "needs" past a ceiling


def test_without_the_servers_cpu_a_target_beyond_the_measured_is_unknown_not_unreachable(copies) -> None:
    answer = plan(load_results(copies(ONE_PROCESS)), target_tps=40_000)  # the same runs, no server CPU
    assert answer.answer == UNKNOWN and not answer.reachable and answer.limit == "server unknown"
    assert answer.message.startswith("UNKNOWN") and "UNREACHABLE" not in answer.message
    assert "server-side ceiling is unknown" in answer.message and "lower bound" in answer.message
    assert "cannot" not in answer.message  # nothing proves the server is the limit
    focus = answer.focus
    assert focus.server_ceiling_tps is None and focus.server_ceiling_kind is None and focus.reachable is None
    assert focus.command in answer.message and "--processes 1,2" in focus.command  # the probe to find out


def test_a_saturated_server_gives_a_measured_ceiling(copies, with_cpu) -> None:
    saturated = load_results(copies(ONE_PROCESS, lambda d: with_cpu(d, share=0.95)))
    best = max(o.measured_tps for o in plan(saturated, target_tps=1).options)
    answer = plan(saturated, target_tps=best, headroom=0.1)  # 1.1x the best point
    assert answer.answer == UNREACHABLE and answer.focus.server_ceiling_kind == SATURATED
    assert answer.focus.server_ceiling_tps == pytest.approx(best)  # the measured rate is the ceiling itself
    assert SATURATED in answer.message and "0.95 of the 1 core" in answer.message


def test_a_server_with_more_cores_than_it_used_is_not_saturated(copies, with_cpu) -> None:
    two_cores = load_results(copies(["dispatcher-asyncio-c16.json"], lambda d: with_cpu(d, share=0.95, threads=2)))
    (o,) = plan(two_cores, target_tps=1).options
    assert o.server_ceiling_kind is None and o.server_threads == 2  # one run: no cost model, not saturated
    assert "no cost model: 1 run(s)" in o.server_ceiling_from
    absent = load_results(
        copies(["dispatcher-asyncio-c16.json"], lambda d: with_cpu(d, share=0.95, threads=None), "absent")
    )
    (o,) = plan(absent, target_tps=1).options
    assert o.server_threads == 1 and o.server_ceiling_kind == SATURATED  # absent threads: the one-thread server


def test_what_the_server_was_seen_answering_is_never_computed_across_designs(measured) -> None:
    """ "521,003 ts/s it was seen to manage" was pool's RPCs/s times the dispatcher's batch: seen by nobody.
    The lower bound is the most the design itself was measured answering."""
    answer = plan(measured, target_tps=1e7)
    for o in answer.options:
        own = max(x.measured_tps for x in answer.options if x.series == o.series)
        assert o.server_lower_bound_tps == pytest.approx(own)
        assert "RPCs/s (the most measured)" not in o.server_lower_bound_from
    assert "seen to manage" not in answer.message


@pytest.mark.parametrize(
    "cpu", [None, {"us_per_rpc": US_PER_RPC}, {"share": 0.95}], ids=["unknown cpu", "cpu cost", "saturated"]
)
def test_2x_10x_100x_the_best_point_never_unreachable_without_a_named_ceiling(copies, with_cpu, cpu) -> None:
    names = [p.name for p in FIXTURES.glob("*.json") if p.name != "pytest-benchmark-smoke.json"]
    df = load_results(copies(names, (lambda d: with_cpu(d, **cpu)) if cpu else None))
    best = max(o.measured_tps for o in plan(df, target_tps=1).options)
    for factor in (2, 10, 100):
        answer = plan(df, target_tps=factor * best)
        if cpu is None:
            assert answer.answer == UNKNOWN and "UNREACHABLE" not in answer.message
        else:
            assert answer.answer == UNREACHABLE
            focus = answer.focus
            assert focus.server_ceiling_kind in (FITTED, SATURATED) and focus.server_ceiling_tps is not None
            assert (
                f"{focus.server_ceiling_tps:,.0f} ts/s" in answer.message
                and focus.server_ceiling_from in answer.message
            )
        # the row the answer is about is in the table, whatever its rank
        assert answer.focus in shown(answer, limit=1)
        console = Console(record=True, width=400)
        print_plan(answer, console, limit=1)
        assert "▶ " + answer.focus.setting() in console.export_text()


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


def test_unreachable_target_is_refused_with_a_reason(measured, measured_with_cpu) -> None:
    unknown = plan(measured, target_tps=10_000_000)  # no server CPU in the fixtures: nothing to refuse it by
    assert not unknown.reachable and unknown.recommendation is None
    assert unknown.message.startswith("UNKNOWN")
    assert "a lower bound of its capacity" in unknown.message and "tsobench sweep" in unknown.message
    assert unknown.best_measured is not None  # still says what the best measured point is
    answer = plan(measured_with_cpu, target_tps=10_000_000)
    assert not answer.reachable and answer.recommendation is None
    assert answer.message.startswith("UNREACHABLE") and answer.focus.server_ceiling_from in answer.message
    assert answer.best_measured is not None and "Best measured" in answer.message


def test_p99_limit_nobody_meets(measured) -> None:
    answer = plan(measured, target_tps=1_000, p99_ms=0.01)
    assert not answer.reachable
    assert "no safe measured point meets that p99" in answer.message


def test_cli_exit_codes_and_json(tmp_path: Path, copies, with_cpu) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["plan", str(FIXTURES), "--target-tps", "15000", "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["reachable"] and data["recommendation"]["strategy"] == "dispatcher"
    assert all(f["fit"] is None and "no fit" in f["no_ceiling_because"] for f in data["fits"])  # 3 levels at most
    # SYNTHETIC: a fourth concurrency level (c=64, an edited copy of c=16) makes dispatcher/asyncio fittable
    four = copies(ONE_PROCESS, folder="four")
    c64 = json.loads((FIXTURES / "dispatcher-asyncio-c16.json").read_text())
    c64["config"]["concurrency"], c64["metrics"]["throughput_tps"] = 64, 30_000.0
    (four / "dispatcher-asyncio-c64.json").write_text(json.dumps(c64))
    fitted = json.loads(runner.invoke(main, ["plan", str(four), "--target-tps", "15000", "--json"]).output)
    assert {"sigma", "kappa", "lambda_", "n_star", "peak", "sigma_err"} <= set(fitted["fits"][0]["fit"] or {})
    assert data["littles_law"]["runs"] > 0
    assert data["limit"] == "measured"
    assert {"limit", "server_ceiling_tps", "server_ceiling_from", "client_ceiling_tps", "client_ceiling_from",
            "processes", "machines", "cores_per_machine", "command"} <= set(data["recommendation"])  # fmt: skip
    assert all("no_ceiling_because" in f and "ceiling_tps" in f for f in data["fits"])
    assert {"answer", "focus"} <= set(data) and data["answer"] == "reachable"
    assert {"server_ceiling_kind", "server_lower_bound_tps", "server_lower_bound_from", "server_cpu_share",
            "server_threads"} <= set(data["recommendation"])  # fmt: skip
    unknown = runner.invoke(main, ["plan", str(FIXTURES), "--target-tps", "1e7", "--json"])
    assert unknown.exit_code == 4 and json.loads(unknown.output)["answer"] == "unknown"
    with_cpu_folder = copies(fixture_names(), lambda d: with_cpu(d, US_PER_RPC), folder="cpu")
    refused = runner.invoke(main, ["plan", str(with_cpu_folder), "--target-tps", "1e7"])
    assert refused.exit_code == 3 and "UNREACHABLE" in refused.output
    refused_json = json.loads(
        runner.invoke(main, ["plan", str(with_cpu_folder), "--target-tps", "1e7", "--json"]).output
    )
    assert refused_json["focus"]["server_ceiling_kind"] == FITTED and refused_json["answer"] == "unreachable"
    low, high = refused_json["focus"]["server_ceiling_interval"]
    assert low <= refused_json["focus"]["server_ceiling_tps"] <= high
    bad = runner.invoke(main, ["plan", str(FIXTURES), "--target-tps", "100", "--headroom", "1.5"])
    assert bad.exit_code == 2 and "headroom" in bad.output and "Traceback" not in bad.output
    only_unsafe = tmp_path / "unsafe"
    only_unsafe.mkdir()
    shutil.copy(FIXTURES / "unsafe-shared-thread-c4.json", only_unsafe)
    none = runner.invoke(main, ["plan", str(only_unsafe), "--target-tps", "100"])
    assert none.exit_code == 3 and "no safe, clean measured point" in " ".join(none.output.split())


# --- the server's fitted cost, sustainable rates, distance, the whole answer --------------------------------

# SYNTHETIC: one server that spends 100 µs per RPC, 2 µs per timestamp, 300 µs per stream opened and 0.05 of its
# one core idling (2 % noise); a dispatcher's RPC takes 400 µs, so it batches rate x 400 µs per RPC.
COSTS = (100e-6, 2e-6, 300e-6, 0.05)
RPC_US = 400.0


def synthetic(
    folder: Path, strategy: str, concurrency: int, tps: float, p99_ms: float, rate: float | None = None
) -> None:
    """One results file, written from a real fixture with the figures of this hand-made server."""
    template = {"dispatcher": "dispatcher-asyncio-c16.json", "pool": "pool-thread-c4.json"}
    template["per-request"] = "per-request-thread-c4.json"
    data = json.loads((FIXTURES / template[strategy]).read_text())
    name = f"{strategy}-c{concurrency}" + (f"-r{rate:g}" if rate else "")
    seconds = 1.0
    batch = max(1.0, (rate or tps) * RPC_US / 1e6) if strategy == "dispatcher" else 1.0
    rpcs = tps * seconds / batch
    streams = rpcs if strategy == "per-request" else 0.0
    noise = 1 + 0.02 * math.sin(len(name) * 7.0 + concurrency)  # deterministic "noise"
    cpu = (COSTS[0] * rpcs + COSTS[1] * tps * seconds + COSTS[2] * streams + COSTS[3] * seconds) * noise
    data["run_id"] = name
    data["config"].update(concurrency=concurrency, rate=rate, api="asyncio")
    m = data["metrics"]
    m.update(throughput_tps=tps, throughput_rps=tps, measured_s=seconds)
    m["latency_us"].update(p99=int(p99_ms * 1e3), p999=int(p99_ms * 1.2e3), max=int(p99_ms * 1.5e3))
    m["server"].update(rpcs=int(rpcs), timestamps=int(tps * seconds), streams=int(streams), mean_batch=batch)
    m["server"].update(cpu_s=cpu, cpu_share=cpu / seconds, cpu_us_per_ts=cpu * 1e6 / (tps * seconds), threads=1)
    if strategy == "dispatcher":
        m["batching"] = {
            "rpcs": int(rpcs),
            "requests": int(tps),
            "mean_batch": batch,
            "rpcs_per_s": rpcs / seconds,
            "rpc_us_mean": RPC_US,
            "wait_us_mean": RPC_US / 2,
        }
    data.pop("histograms", None)
    (folder / f"{name}.json").write_text(json.dumps(data))


def slo_folder(folder: Path) -> Path:
    """A `tsobench slo` search of the dispatcher at p99 <= 5 ms: 8,000/s held, 16,000/s did not."""
    folder.mkdir()
    for rate, p99 in ((1000, 1.0), (2000, 1.2), (4000, 1.5), (8000, 3.0), (16000, 12.0), (12000, 7.0)):
        synthetic(folder, "dispatcher", 8, rate * 0.99, p99, rate=rate)
    return folder


def sweep_folder(folder: Path) -> Path:
    """A closed-loop sweep of per-request, pool and the dispatcher against the same server."""
    folder.mkdir()
    for c, tps, p99 in ((1, 3000, 0.5), (4, 11000, 1.0), (16, 18000, 3.0), (64, 40000, 9.0)):
        synthetic(folder, "dispatcher", c, tps, p99)
    for c, tps, p99 in ((1, 3000, 0.4), (4, 5000, 1.2), (16, 6000, 4.0), (64, 6200, 15.0)):
        synthetic(folder, "pool", c, tps, p99)
    for c, tps, p99 in ((1, 800, 1.5), (4, 1000, 5.0)):
        synthetic(folder, "per-request", c, tps, p99)
    return folder


def test_the_server_ceiling_comes_from_the_fitted_cost_at_the_planned_batch(tmp_path: Path) -> None:
    df = load_results(sweep_folder(tmp_path / "sweep"))
    answer = plan(df, target_tps=10 * 40_000, p99_ms=5)
    (model,) = answer.cost_models
    rpc, _, _, idle = (c.value for c in model.costs)
    assert rpc == pytest.approx(100e-6, rel=0.2) and idle == pytest.approx(0.05, abs=0.03)
    pool = next(o for o in answer.options if o.strategy == "pool" and o.concurrency == 4)
    assert pool.server_ceiling_kind == FITTED
    low, high = pool.server_ceiling_interval
    assert low <= pool.server_ceiling_tps <= high
    assert pool.server_ceiling_tps == pytest.approx(0.95 / (102e-6), rel=0.15)  # one RPC per timestamp
    assert pool.pd_rpcs_per_s == pytest.approx(400_000)  # the load on the server: RPCs/s at its batch
    dispatcher = next(o for o in answer.options if o.strategy == "dispatcher" and o.concurrency == 16)
    assert dispatcher.ts_per_rpc > 1 and "RPC 400 µs" in dispatcher.batch_from  # predicted, not carried
    assert dispatcher.server_ceiling_tps > pool.server_ceiling_tps  # batching costs the server less
    assert answer.answer != UNREACHABLE or answer.focus.server_best_tps < answer.required_tps


def test_a_plan_with_p99_uses_the_sustained_rate_and_marks_closed_loop(tmp_path: Path) -> None:
    df = load_results([slo_folder(tmp_path / "slo"), sweep_folder(tmp_path / "sweep")])
    answer = plan(df, target_tps=20_000, p99_ms=5)
    dispatcher = [o for o in answer.options if o.strategy == "dispatcher"]
    assert dispatcher and all(o.rate is not None for o in dispatcher)  # its closed loop is not planned from
    top = max((o for o in dispatcher if o.meets_p99), key=lambda o: o.per_process_tps)
    assert top.basis.startswith("sustained") and top.rate == 8000  # the highest rate that held p99 <= 5 ms
    pool = [o for o in answer.options if o.strategy == "pool"]
    assert pool and all("no sustainable rate" in o.basis for o in pool)  # closed loop only where nothing better
    assert answer.runner_up is not None and answer.runner_up.series != answer.focus.series
    assert answer.focus.processes_range is None or answer.focus.processes_range[0] <= answer.focus.processes
    assert "Runner-up" in answer.message and "RPCs/s on the server" in answer.message
    # no step held 0.5 ms: the dispatcher sustains nothing there, whatever its closed loop answered
    strict = plan(df, target_tps=2_000, p99_ms=0.5)
    assert not [o for o in strict.options if o.strategy == "dispatcher" and o.rate is None]


@pytest.mark.parametrize("target", [5_000, 20_000, 50_000, 100_000, 300_000, 500_000, 2_000_000])
def test_plans_from_the_same_servers_folders_agree(tmp_path: Path, target: int) -> None:
    """An SLO folder, a sweep folder and both: never unreachable in one and reachable in another."""
    slo, sweep = slo_folder(tmp_path / "slo"), sweep_folder(tmp_path / "sweep")
    answers = {
        name: plan(load_results(paths), target_tps=target, p99_ms=5).answer
        for name, paths in (("slo", [slo]), ("sweep", [sweep]), ("both", [slo, sweep]))
    }
    reachable = {n for n, a in answers.items() if a in (REACHABLE, MORE_PROCESSES)}
    unreachable = {n for n, a in answers.items() if a == UNREACHABLE}
    assert not (reachable and unreachable), answers


def test_rtt_ms_on_a_loopback_folder_says_what_it_cannot_know_and_the_sweep_that_would(tmp_path: Path) -> None:
    df = load_results(sweep_folder(tmp_path / "sweep"))
    loopback = df.assign(loopback=True, rtt_ms=0.8, rtt_min_ms=0.7)  # a busy machine's loopback round trip
    answer = plan(loopback, target_tps=20_000, p99_ms=5, rtt_ms=1)
    assert answer.answer == UNKNOWN and answer.limit == "distance" and not answer.options
    at = answer.at_distance
    assert at is not None and at.near == 0 and "--server-rtt-ms 1" in at.sweep
    assert "nothing was measured near a 1 ms round trip" in answer.message and at.sweep in answer.message
    assert at.measured == ("loopback (round trips measured 0.80 ms)",)  # each distance once, in words
    assert any(b.startswith("dispatcher/asyncio") for b in at.bounds)
    near = plan(loopback, target_tps=20_000, p99_ms=5, rtt_ms=0.1)  # at loopback's distance: a plan
    assert near.options and near.at_distance is not None and near.at_distance.near > 0


def test_rtt_ms_plans_only_from_points_measured_near_it(tmp_path: Path) -> None:
    df = load_results(sweep_folder(tmp_path / "sweep"))
    far = df["strategy"] == "pool"
    df = df.assign(rtt_ms=[1.1 if f else 0.05 for f in far], loopback=[not f for f in far])
    df.loc[df["strategy"] == "per-request", "rtt_emulated_ms"] = 0.9  # an emulated round trip counts as set
    answer = plan(df, target_tps=2_000, rtt_ms=1)
    assert answer.options and {o.strategy for o in answer.options} == {"pool", "per-request"}
    assert answer.at_distance.sweep is not None and "dispatcher" in answer.at_distance.sweep  # the rest, at 1 ms
    assert "Designs not measured near 1 ms are left out" in answer.message


def test_a_confirmation_holds_within_the_predictions_interval_and_not_outside(tmp_path: Path) -> None:
    df = load_results(sweep_folder(tmp_path / "sweep"))
    answer = plan(df, target_tps=2_000)
    predicted = prediction(answer, most=1)
    assert predicted is not None and predicted.processes == 1 and predicted.low <= predicted.tps <= predicted.high
    assert predicted.command.startswith("tsobench sweep")
    same = df[
        (df["strategy"] == predicted.strategy)
        & (df["concurrency"] == predicted.concurrency)
        & (df["processes"] == 1)
        & (df["api"] == predicted.api)
    ]
    held = confirmation(predicted, same)
    assert held.held and held.measured_tps == pytest.approx(predicted.tps)
    assert "within the prediction's interval" in held.sentence()
    faster = same.assign(throughput_tps=same["throughput_tps"] * 3)
    assert not confirmation(predicted, faster).held
    assert not confirmation(predicted, df.iloc[0:0]).held
    slow = same.assign(p99_us=same["p99_us"] * 100)  # as fast, but the plan's objective is missed
    strict = dataclasses.replace(predicted, p99_ms=5.0)
    assert confirmation(strict, same).held and not confirmation(strict, slow).held
    assert "p99 above the plan's 5 ms" in confirmation(strict, slow).sentence()


def test_cli_rtt_ms_and_confirm_without_a_row_exit_4(tmp_path: Path) -> None:
    runner = CliRunner()
    far = runner.invoke(main, ["plan", str(FIXTURES), "--target-tps", "1000", "--rtt-ms", "1", "--json"])
    assert far.exit_code == 4, far.output
    data = json.loads(far.output)
    assert data["limit"] == "distance" and "--server-rtt-ms 1" in data["at_distance"]["sweep"]
    only_unsafe = tmp_path / "unsafe"
    only_unsafe.mkdir()
    shutil.copy(FIXTURES / "unsafe-shared-thread-c4.json", only_unsafe)
    nothing = runner.invoke(main, ["plan", str(only_unsafe), "--target-tps", "100", "--confirm"])
    assert nothing.exit_code == 4 and "nothing to confirm" in " ".join(nothing.output.split())
    bad = runner.invoke(main, ["plan", str(FIXTURES), "--target-tps", "100", "--rtt-ms", "0"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
