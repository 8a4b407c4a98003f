"""The report's time and faults part (recovery_report): timeline.png, the recovery table, the finding."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from tsobench.bench.analysis import recovery_report
from tsobench.bench.analysis.loader import load_results
from tsobench.bench.cli.commands import main

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"


def with_a_kill(tmp_path: Path, strategy: str, api: str, first_success_s: float, failed: int, **said: object) -> Path:
    """A fixture run given the timeline and fault entry a kill at 1 s would leave; ``said``: what its
    strategy's record says of itself (``recovery``, ``fewest_failures``)."""
    data = json.loads((FIXTURES / "pool-thread-c4.json").read_text())
    data["config"].update(strategy=strategy, api=api, interval_s=0.5)
    data["strategy"] = {"name": strategy, "safe": True, "baseline": False, **said}
    data["timeline"] = [
        {"t_s": t / 2, "ok": ok, "failed": f, "tps": ok * 2.0, "p50_us": p, "p99_us": p, "max_us": p, "warmup": False}
        for t, (ok, f, p) in enumerate([(900, 0, 800), (950, 0, 900), (0, failed, None), (400, 0, 90_000)])
    ]
    data["timeline"].insert(0, {**data["timeline"][0], "t_s": -0.5, "warmup": True})
    data["faults"] = [
        {
            "kind": "kill",
            "spec": "kill@1s:200ms",
            "at_s": 1.0,
            "duration_s": 0.2,
            "started_s": 1.0,
            "ended_s": 1.4,
            "failed_requests": failed,
            "first_success_after_s": first_success_s,
            "recovered": True,
            "p99_during_us": 90_000,
            "p99_before_us": 900,
            "time_to_baseline_s": first_success_s + 0.1,
            "error": None,
        }
    ]
    data["metrics"].update(measured_s=2.0, requests_failed=failed)
    data["metrics"]["errors"] = {"UNAVAILABLE": failed}
    path = tmp_path / f"{strategy}-{api}.json"
    path.write_text(json.dumps(data))
    return path


def test_the_report_draws_the_timeline_and_tabulates_the_recovery(tmp_path):
    with_a_kill(tmp_path, "pool", "thread", 1.5, 40)  # a second more than the reconnect backoff can explain
    with_a_kill(tmp_path, "dispatcher", "asyncio", 0.2, 12)
    runs = recovery_report.runs(load_results(tmp_path))
    assert [r.series for r in runs] == ["dispatcher/asyncio", "pool/thread"]
    assert all(len(r.timeline) == 4 for r in runs)  # the warm-up is not drawn

    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out / "timeline.png") as image:
        assert image.format == "PNG" and image.width >= 600
    md = (out / "report.md").read_text()
    assert "| kill | dispatcher | asyncio | 4 | 1/1 | 12 | 0.200 | 0.300 | 90.0 | 0.9 |" in md
    assert "| kill | pool | thread | 4 | 1/1 | 40 | 1.500 |" in md
    finding = recovery_report.recovery_finding(runs)
    assert finding.startswith("After a kill fault, dispatcher/asyncio recovered fastest") and finding in md
    assert "slowest pool/thread" in finding


def test_recoveries_within_the_reconnect_backoff_are_alike(tmp_path):
    with_a_kill(tmp_path, "pool", "thread", 0.2, 40)
    with_a_kill(tmp_path, "locked", "thread", 0.5, 3)
    finding = recovery_report.recovery_finding(recovery_report.runs(load_results(tmp_path)))
    assert finding.startswith("After a kill fault, every design answered again within 500 ms of its end")
    assert "locked/thread failed the fewest requests (3)" in finding


def test_runs_without_a_timeline_give_no_timeline_plot(tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", str(FIXTURES / "pool-thread-c4.json"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "timeline.png").exists()
    assert "no timeline plot" in (out / "report.md").read_text()


def test_a_strategy_explains_its_recovery_from_its_own_record(tmp_path):
    # a plugin nobody here knows by name: its results file says why it recovers so, and that is what is said
    why = "its one stream reconnects once and every queued caller rides on it"
    with_a_kill(tmp_path, "my-plugin", "asyncio", 0.2, 12, recovery={"kill": why})
    with_a_kill(tmp_path, "pool", "thread", 1.5, 40)
    finding = recovery_report.recovery_finding(recovery_report.runs(load_results(tmp_path)))
    assert finding.startswith("After a kill fault, my-plugin/asyncio recovered fastest") and f": {why}." in finding


def test_a_strategy_that_says_nothing_gets_no_explanation(tmp_path):
    # a built-in's name is no licence to explain it: a file without strategy.recovery gets no reason
    with_a_kill(tmp_path, "dispatcher", "asyncio", 0.2, 12)
    with_a_kill(tmp_path, "locked", "thread", 1.5, 3, fewest_failures="as only its stream's holder fails")
    finding = recovery_report.recovery_finding(recovery_report.runs(load_results(tmp_path)))
    assert finding.startswith("After a kill fault, dispatcher/asyncio recovered fastest")
    assert "slowest locked/thread, 1.50 s)" in finding and "s):" not in finding
    assert "locked/thread failed the fewest requests (3), as only its stream's holder fails" in finding


def test_the_timeline_ends_with_the_measured_window_and_shows_fault_marks_only_with_faults(tmp_path):
    data = json.loads((FIXTURES / "pool-thread-c4.json").read_text())
    entry = {"ok": 10, "failed": 0, "tps": 10.0, "p50_us": 900, "p99_us": 900, "max_us": 900, "warmup": False}
    data["timeline"] = [{**entry, "t_s": 0.0}, {**entry, "t_s": 1.0}]  # a 1.5 s window in 1 s intervals
    data["metrics"]["measured_s"] = 1.5
    (tmp_path / "run.json").write_text(json.dumps(data))
    fig = recovery_report.figure(recovery_report.runs(load_results(tmp_path)))
    assert fig.axes[0].get_xlim() == (0.0, 1.5)
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels == ["c=4"]  # no fault ran: no fault marks to explain
