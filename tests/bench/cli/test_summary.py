"""The human output: interval lines, units, the run table."""

import dataclasses
from pathlib import Path

from tsobench.bench.cli.summary import interval_line, ms, point_line, run_table, timeline_intervals
from tsobench.bench.model import results
from tsobench.bench.model.faults import Fault
from tsobench.bench.runs.runner import LiveInterval
from tsobench.bench.sweeps.sweep import PointOutcome

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
