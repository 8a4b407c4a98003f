"""``tsobench slo``: the search brackets the sustainable rate; the command runs it against one server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tsobench.bench import RunConfig, RunResult
from tsobench.bench.cli.commands import main
from tsobench.bench.sweeps.slo import INTERRUPTED, Search, Step, bracket, designs, judge_step, run_searches
from tsobench.options import ConfigError

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"
SHORT = ["--duration", "0.5", "--warmup", "0.1", "--interval", "0.1"]  # a step: about two seconds of wall time


def fake(limit: float):
    """A design that meets the objective up to ``limit`` requests/s, and the rates it was asked for."""
    asked: list[float] = []

    def measure(rate: float) -> Step:
        asked.append(rate)
        ok = rate <= limit
        return Step(rate, ok, False, "fake", rate, rate, 1.0 if ok else 9.0, "clean", None)

    return measure, asked


def test_doubling_then_bisection_brackets_the_rate_within_the_resolution() -> None:
    measure, asked = fake(3_300)
    steps, stopped = bracket(measure, Search(p99_ms=5, start=1_000, resolution=0.1))
    assert asked == [1_000, 2_000, 4_000, 3_000, 3_500, 3_250]
    assert "bracketed within 8%" in stopped
    assert max(s.rate for s in steps if s.passed) == 3_250 and min(s.rate for s in steps if not s.passed) == 3_500


def test_halving_below_the_first_rate_and_the_limits() -> None:
    measure, asked = fake(100)
    bracket(measure, Search(p99_ms=5, start=1_000, resolution=0.3))
    assert asked[:5] == [1_000, 500, 250, 125, 62.5] and asked[5] == 93.8  # bisection rounded to 3 digits
    measure, asked = fake(1)
    _, stopped = bracket(measure, Search(p99_ms=5, start=40, min_rate=10))
    assert asked == [40, 20, 10] and "misses the target even at --min-rate 10/s" in stopped
    measure, asked = fake(1e9)
    _, stopped = bracket(measure, Search(p99_ms=5, start=1_000, max_rate=3_000))
    assert asked == [1_000, 2_000, 3_000] and "at least that" in stopped
    measure, asked = fake(3_300)
    _, stopped = bracket(measure, Search(p99_ms=5, start=1_000, max_steps=2))
    assert asked == [1_000, 2_000] and "--max-steps 2" in stopped


def test_an_interrupted_step_ends_the_search() -> None:
    def measure(rate: float) -> Step:  # fails at 1,000/s, and is interrupted at the next step
        return Step(rate, False, rate < 1_000, "x", 0.0, 0.0, None, "clean", None)

    steps, stopped = bracket(measure, Search(p99_ms=5, start=1_000))
    assert stopped == INTERRUPTED and [s.rate for s in steps] == [1_000, 500]


def test_bad_input_is_refused_with_the_options_own_message() -> None:
    with pytest.raises(ConfigError, match="not both"):
        designs({"strategy": "pool", "api": "thread"}, "pool,locked", None)
    with pytest.raises(ConfigError, match="give --strategy"):
        designs({"strategy": None, "api": "thread"}, None, None)
    with pytest.raises(ConfigError, match="unknown strategy 'nope'"):
        designs({"strategy": None, "api": "thread"}, "pool,nope", None)
    with pytest.raises(ConfigError, match="first rate"):
        Search(p99_ms=5, start=5, min_rate=10)
    made = designs({"strategy": None, "api": "thread", "duration_s": None, "requests": None}, "pool,locked", "thread")
    assert [(c.strategy, c.api, c.duration_s) for c in made] == [("pool", "thread", 3.0), ("locked", "thread", 3.0)]
    runner = CliRunner()
    for argv, says in (
        (["slo", "-s", "pool", "--p99-ms", "-1"], "p99-ms must be a positive number"),
        (["slo", "--p99-ms", "5"], "give --strategy"),
        (["slo", "-s", "pool", "--p99-ms", "5", "--fault", "abort@1s"], "--fault is not for an SLO search"),
        (["slo", "-s", "pool", "--p99-ms", "5", "--rate", "5"], "first rate"),
    ):
        result = runner.invoke(main, argv)
        assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output, result.output


def test_a_fast_search_runs_each_design_against_one_server_and_judges_each_step_by_its_file(tmp_path: Path) -> None:
    """Whether a step meets p99 <= 50 ms depends on the machine's load: this test holds only what load cannot
    change (the steps asked, one server for all, each step judged by what its own results file recorded)."""
    out = tmp_path / "slo"
    # two callers: at 50/s each expects 12 requests in a 0.5 s step (16 would expect 1.6, some none: "starved")
    argv = ["slo", "--strategies", "null,locked", "-c", "2", "--p99-ms", "50", "--rate", "50", "--max-steps", "2"]
    argv += SHORT
    result = CliRunner().invoke(main, [*argv, "--server-delay-ms", "2", "-q", "-o", str(out)])
    manifest = json.loads((out / "slo.json").read_text())
    found = [d["found"] for d in manifest["designs"]]
    assert result.exit_code == (0 if all(found) else 3), result.output
    assert "Sustainable ts/s at p99 <= 50 ms" in result.output and "null/thread step 1: 50/s offered" in result.output
    assert manifest["status"] == "completed" and manifest["server"]["embedded"]["delay_ms"] == 2.0
    assert [d["strategy"] for d in manifest["designs"]] == ["null", "locked"]
    for d in manifest["designs"]:
        steps = d["steps"]
        assert [s["rate"] for s in steps] == [50, 100 if steps[0]["passed"] else 25]  # doubling or halving, 2 steps
        passing = [s["rate"] for s in steps if s["passed"]]
        assert d["found"] == bool(passing) and d["bracket"]["passing"] == (max(passing) if passing else None)
        assert d["sustainable_rate"] == d["bracket"]["passing"]
        for step in steps:
            run = json.loads((out / step["result"]).read_text())
            assert run["config"]["rate"] == step["rate"]
            # every step against the one embedded server, its knobs recorded as the run's own
            assert run["config"]["cluster"]["leader"] == manifest["server"]["address"]
            assert run["config"]["target"] is None and run["config"]["server"]["delay_ms"] == 2.0
            # the step's judgement is its own file's: a clean verdict and p99 within the target
            m = run["metrics"]
            clean_and_fast = (
                run["verdict"]["verdict"] == "clean" and m["requests_ok"] and m["latency_us"]["p99"] <= 50e3
            )
            assert step["passed"] == clean_and_fast, (step, run["verdict"])


def test_a_target_nothing_meets_exits_3(tmp_path: Path) -> None:
    argv = ["slo", "-s", "locked", "-c", "2", "--p99-ms", "0.001", "--rate", "50", "--min-rate", "50", *SHORT, "-q"]
    result = CliRunner().invoke(main, [*argv, "-o", str(tmp_path / "slo")])
    assert result.exit_code == 3, result.output
    assert "no rate meets p99 <= 0.001 ms" in result.output and "--min-rate 50/s" in result.output
    (design,) = json.loads((tmp_path / "slo" / "slo.json").read_text())["designs"]
    assert not design["found"] and design["bracket"] == {"passing": None, "failing": 50.0}


def test_ctrl_c_keeps_what_was_measured(tmp_path: Path) -> None:
    def stop(design: str, n: int, rate: float) -> None:
        raise KeyboardInterrupt

    config = RunConfig(strategy="null", duration_s=0.5, warmup_s=0.1)
    (outcome,) = run_searches([config], Search(p99_ms=5, start=50), tmp_path, ["test"], on_start=stop)
    assert outcome.interrupted and outcome.steps == ()
    assert json.loads((tmp_path / "slo.json").read_text())["status"] == INTERRUPTED


def test_a_step_whose_callers_had_nothing_scheduled_says_so() -> None:
    data = json.loads((FIXTURES / "dispatcher-asyncio-c8-rate500.json").read_text())
    data["metrics"].update(
        callers=8, fairness={"jain": 0.6, "min_per_caller": 0, "max_per_caller": 9, "starved_callers": 3}
    )
    result = RunResult.from_dict(data)
    few = judge_step(result, rate=50, p99_ms=5, path=None)  # 50/s x 0.5 s / 8 callers: 3 requests each
    assert not few.passed and "starved" in few.why and "expected 3.1 requests" in few.why
    assert "--concurrency" in few.why
    many = judge_step(result, rate=500, p99_ms=5, path=None)
    assert not many.passed and "expected" not in many.why
    clean = judge_step(
        RunResult.from_dict(json.loads((FIXTURES / "dispatcher-asyncio-c8-rate500.json").read_text())), 500, 5, None
    )
    assert clean.passed and clean.why.startswith("p99 1.85 ms <= 5 ms")
