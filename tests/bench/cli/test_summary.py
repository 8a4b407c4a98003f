"""What a person reads: the progress line, the run table, fault lines, SLO steps and table (from fixtures)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from rich.console import Console

from tsobench.bench.cli.summary import (
    distance,
    interval_line,
    ms,
    point_line,
    print_run,
    progress_line,
    recovery_line,
    run_table,
    slo_step_line,
    slo_table,
    timeline_intervals,
    verdict,
)
from tsobench.bench.model import results
from tsobench.bench.model.faults import Fault
from tsobench.bench.model.results import RunResult
from tsobench.bench.model.verdict import Judgement, Verdict
from tsobench.bench.runs.runner import LiveInterval, Progress
from tsobench.bench.sweeps.slo import Outcome, Step
from tsobench.bench.sweeps.sweep import PointOutcome

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
    assert f"{m['throughput_tps']:,.0f} ts/s" in text and f"p99 {m['latency_us']['p99'] / 1000:.3f}" in text
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
    last = LiveInterval(1, 1.0, 2.0, 5_000, 0, 5_000.0, 600, 1_250)
    live = progress_line(Progress("measuring", 1_234, 2.0, 10.0, interval=last))
    assert live.endswith("last interval      5,000 ts/s  p99 1.250 ms")


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


FIXTURES = Path(__file__).parents[3] / "results" / "fixtures"


def test_an_interval_line_has_time_rate_requests_errors_and_both_percentiles_in_ms():
    line = interval_line(LiveInterval(2, 2.0, 3.0, 12_345, 7, 12_345.0, 612, 1_234))
    assert line.split()[:7] == ["2.00–3.00s", "12,345", "ts/s", "12,345", "req", "7", "err"]
    assert "p50    0.612 ms" in line and "p99    1.234 ms" in line and "fault" not in line


def test_an_interval_line_marks_the_faults_acting_in_it():
    kill, abort = Fault.parse("kill@3s:1s"), Fault.parse("abort@5s")
    at = {i: interval_line(LiveInterval(i, i, i + 1.0, 1, 0, 1.0, 1, 1), (kill, abort)) for i in range(7)}
    assert [i for i, line in at.items() if "[fault" in line] == [3, 5]
    assert "[fault kill@3s:1s]" in at[3] and "[fault abort@5s]" in at[5]


def test_a_warmup_interval_says_so_and_no_answers_show_no_latency():
    line = interval_line(LiveInterval(-1, -1.0, 0.0, 0, 3, 0.0, 0, 0))
    assert line.split()[:2] == ["-1.00–0.00s", "warmup"] and "p99        - ms" in line


def test_the_timeline_gives_back_every_interval_of_a_run():
    base = results.read(FIXTURES / "dispatcher-asyncio-c4.json")
    entry = {"ok": 10, "failed": 0, "tps": 10.0, "p50_us": 5, "p99_us": 9, "max_us": 9}
    timeline = [{**entry, "t_s": t, "warmup": t < 0, "ok": 10 + i} for i, t in enumerate((-0.5, 0.0, 1.0, 2.0))]
    result = dataclasses.replace(base, config={**base.config, "interval_s": 1.0}, timeline=timeline)
    lines = timeline_intervals(result)
    assert len(lines) == len(result.timeline)
    assert [i.requests for i in lines] == [e["ok"] for e in result.timeline]
    assert [i.warmup for i in lines] == [e["warmup"] for e in result.timeline]


def test_latency_is_shown_in_ms_everywhere_in_the_run_table():
    from rich.console import Console

    result = results.read(next(FIXTURES.glob("*.json")))
    console = Console(record=True, width=200)
    console.print(run_table(result))
    text = console.export_text()
    assert "latency ms" in text and f"p99 {ms(result.metrics['latency_us']['p99'])}" in text
    assert "latency µs" not in text


def test_the_timeline_intervals_keep_their_index_and_span():
    base = results.read(FIXTURES / "dispatcher-asyncio-c4.json")
    entry = {"ok": 1, "failed": 0, "tps": 1.0, "p50_us": 5, "p99_us": 9, "max_us": 9}
    timeline = [{**entry, "t_s": t, "warmup": t < 0} for t in (-0.25, 0.0, 0.5)]
    result = dataclasses.replace(base, config={**base.config, "interval_s": 0.5}, timeline=timeline)
    assert [(i.index, i.start_s, i.end_s) for i in timeline_intervals(result)][:2] == [(-1, -0.25, 0.0), (0, 0.0, 0.5)]


def _outcome(status: str, result: str | None = "r.json", **summary: object) -> PointOutcome:
    base = {"throughput_tps": 1234.0, "p99_us": 1500, "requests_ok": 10, "violations": 0, "requests_failed": 0}
    return PointOutcome("k", status, result, 0, 1.0, summary={**base, **summary} if summary is not None else None)


def test_a_dirty_point_is_shown_by_its_verdict_and_its_reason():
    line = point_line("k", _outcome("dirty", verdict="starved", detail="3 of 64 callers starved", measured_s=1.0))
    assert "starved" in line and "3 of 64 callers starved" in line and "dirty" not in line


def test_a_resumed_point_is_done_earlier_and_an_interrupted_one_shows_what_it_measured():
    assert "done earlier" in point_line("k", _outcome("skipped", measured_s=1.0))
    line = point_line("k", _outcome("interrupted", measured_s=2.5))
    assert "1,234 ts/s" in line and "2.5s measured before the stop" in line
    nothing = point_line("k", _outcome("interrupted", measured_s=0.0, throughput_tps=0.0, requests_ok=0))
    assert "nothing measured" in nothing and "0 ts/s" not in nothing
