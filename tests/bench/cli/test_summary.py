"""What a person reads: the progress line, the run table, fault lines, SLO steps and table (from fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from tsobench.bench.cli.summary import (
    distance,
    print_run,
    progress_line,
    recovery_line,
    run_table,
    slo_step_line,
    slo_table,
    verdict,
)
from tsobench.bench.model.results import RunResult
from tsobench.bench.model.verdict import Judgement, Verdict
from tsobench.bench.runs.runner import Progress
from tsobench.bench.sweeps.slo import Outcome, Step

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"


def fixture(**edits) -> RunResult:
    data = json.loads((FIXTURES / "dispatcher-asyncio-c8-rate500.json").read_text())
    data.update(edits)
    return RunResult.from_dict(data)


def text_of(renderable) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_run_table_shows_the_figures_and_the_verdict_of_the_file():
    result = fixture()
    console = Console(record=True, width=200, color_system=None)
    print_run(result, "out.json", console)
    text = console.export_text()
    m = result.metrics
    assert "dispatcher / asyncio" in text and "rate=500/s" in text
    assert f"{m['throughput_tps']:,.0f} ts/s" in text and f"p99 {m['latency_us']['p99']:,}" in text
    assert "correctness" in text and "OK" in text and text.rstrip().endswith("results: out.json")


def test_a_dirty_or_failed_run_says_so_with_its_reason():
    dirty = fixture(verdict=Judgement(Verdict.STARVED, "2 of 8 callers got no reply", False).to_dict())
    assert verdict(dirty).startswith("[bold red]STARVED[/] (2 of 8 callers got no reply)")
    control = fixture(verdict=Judgement(Verdict.VIOLATIONS, "3", True).to_dict())
    assert "negative control: failing is expected" in verdict(control)
    shards = [{"index": 0, "error": "worker lost", "host": "h1"}]
    text = text_of(run_table(fixture(shards=shards, status="failed")))
    assert "shard 0" in text and "failed h1: worker lost" in text and "failed" in text.splitlines()[-2]


def test_the_distance_says_measured_emulated_or_loopback():
    rtt = {"min": 0.05, "median": 0.08, "samples": 20}
    loopback = fixture(network={"rtt_ms": rtt, "emulated": None, "loopback": True})
    assert distance(loopback) == "round trip 0.050 ms min, 0.080 ms median (loopback: real clients sit 0.2-2 ms away)"
    emulated = fixture(network={"rtt_ms": None, "emulated": {"rtt_ms": 1, "jitter_ms": 0.5}, "loopback": True})
    assert distance(emulated) == "round trip not measured (emulated 1 ms + up to 0.5 ms jitter)"
    assert distance(fixture(network=None)) == "-"


def test_a_fault_line_says_how_the_callers_recovered_or_that_they_did_not():
    fault = {
        "spec": "kill@1s:300ms",
        "started_s": 1.0,
        "ended_s": 1.3,
        "failed_requests": 12,
        "recovered": True,
        "error": None,
        "first_success_after_s": 0.25,
        "p99_during_us": 1_500,
        "time_to_baseline_s": None,
    }
    line = recovery_line(fault)
    assert "12 failed, first success 0.250s after its end, p99 during 1.5 ms" in line and line.endswith("after -")
    lost = recovery_line({**fault, "recovered": False, "error": "server never came back"})
    assert "NOT RECOVERED[/] (server never came back); 12 failed" in lost


def test_the_progress_line_adds_the_last_interval_once_there_is_one():
    plain = progress_line(Progress("measuring", 1_234, 2.0, 10.0))
    assert plain.split() == ["measuring", "2.0s", "/", "~10s", "1,234", "requests"]
    live = progress_line(Progress("measuring", 1_234, 2.0, 10.0, interval_tps=5_000.0, interval_p99_us=1_250))
    assert live.endswith("last interval      5,000 ts/s  p99 1.25 ms")


def test_slo_steps_and_the_table_show_each_designs_bracket():
    passed = Step(100, True, False, "p99 1.00 ms <= 5 ms, clean", 100.0, 100.0, 1.0, "clean", "a.json")
    failed = Step(200, False, False, "p99 9.00 ms > 5 ms", 190.0, 190.0, 9.0, "clean", "b.json")
    assert slo_step_line("pool/thread", 1, passed) == (
        "pool/thread step 1: 100/s offered, 100 ts/s: [green]pass[/] (p99 1.00 ms <= 5 ms, clean)"
    )
    assert "[red]fail[/]" in slo_step_line("pool/thread", 2, failed)
    outcome = Outcome("pool", "thread", 5.0, (passed, failed), "bracketed within 100%")
    text = text_of(slo_table([outcome], 5.0))
    assert "Sustainable ts/s at p99 <= 5 ms" in text and "pool/thread" in text and "bracketed within 100%" in text
