"""The report's time and faults part: timeline.png, the recovery table, the finding."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from tsobench.bench.analysis import timeline
from tsobench.bench.analysis.loader import load_results
from tsobench.bench.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "results" / "fixtures"


def with_a_kill(tmp_path: Path, strategy: str, api: str, first_success_s: float, failed: int) -> Path:
    """A fixture run given the timeline and fault entry a kill at 1 s would leave."""
    data = json.loads((FIXTURES / "pool-thread-c4.json").read_text())
    data["config"].update(strategy=strategy, api=api, interval_s=0.5)
    data["strategy"] = {"name": strategy, "safe": True, "baseline": False}
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
    data["metrics"]["requests_failed"] = failed
    data["metrics"]["errors"] = {"UNAVAILABLE": failed}
    path = tmp_path / f"{strategy}-{api}.json"
    path.write_text(json.dumps(data))
    return path


def test_the_report_draws_the_timeline_and_tabulates_the_recovery(tmp_path):
    with_a_kill(tmp_path, "pool", "thread", 1.5, 40)  # a second more than the reconnect backoff can explain
    with_a_kill(tmp_path, "dispatcher", "asyncio", 0.2, 12)
    runs = timeline.runs(load_results(tmp_path))
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
    finding = timeline.recovery_finding(runs)
    assert finding.startswith("After a kill, dispatcher/asyncio recovered fastest") and finding in md
    assert "slowest pool/thread" in finding


def test_recoveries_within_the_reconnect_backoff_are_alike(tmp_path):
    with_a_kill(tmp_path, "pool", "thread", 0.2, 40)
    with_a_kill(tmp_path, "locked", "thread", 0.5, 3)
    finding = timeline.recovery_finding(timeline.runs(load_results(tmp_path)))
    assert finding.startswith("After a kill, every design answered again within 500 ms of its end")
    assert "locked/thread failed the fewest requests (3)" in finding


def test_runs_without_a_timeline_give_no_timeline_plot(tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", str(FIXTURES / "pool-thread-c4.json"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "timeline.png").exists()
    assert "no timeline plot" in (out / "report.md").read_text()
