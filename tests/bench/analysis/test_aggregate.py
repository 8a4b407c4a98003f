"""Repeats fold into points: merged histograms, intervals from stats, the worst stored verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner

from tsobench.bench.analysis.aggregate import per_series, repeats
from tsobench.bench.analysis.compare import compare
from tsobench.bench.analysis.loader import load, load_results
from tsobench.bench.analysis.plan import plan
from tsobench.bench.analysis.recovery_report import runs
from tsobench.bench.analysis.report import build, config_table
from tsobench.bench.cli.commands import main
from tsobench.bench.measure import latency

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"


def test_merged_histograms_give_the_percentiles_of_all_values() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.lognormal(mean, 0.6, size).astype(int) + 1 for mean, size in ((6, 5000), (7, 800), (5, 12000))]
    merged = latency.merge(latency.encode(latency.histogram_of(p)) for p in parts)
    whole = latency.histogram_of(np.concatenate(parts))
    for p in (50, 90, 99, 99.9, 99.99):
        assert merged.get_value_at_percentile(p) == whole.get_value_at_percentile(p)
    assert merged.get_total_count() == whole.get_total_count()
    assert latency.summarize(merged) == latency.summarize(whole)
    averaged = np.mean([latency.histogram_of(p).get_value_at_percentile(99) for p in parts])
    assert averaged != merged.get_value_at_percentile(99)  # what averaging would have got wrong


def test_repeats_merge_histograms_instead_of_averaging() -> None:
    df = load_results([FIXTURES / "dispatcher-asyncio-c4.json", FIXTURES / "dispatcher-asyncio-c4-repeat2.json"])
    (row,) = repeats(df).to_dict("records")
    whole = latency.merge(df["histogram"])
    assert row["runs"] == 2 and row["latency_from"] == "merged histograms"
    assert row["p99_us"] == whole.get_value_at_percentile(99)
    assert row["tps"] == df["throughput_tps"].median()
    assert (row["tps_min"], row["tps_max"]) == (df["throughput_tps"].min(), df["throughput_tps"].max())


def test_one_run_gets_its_interval_from_its_own_intervals(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "pool-thread-c4.json").read_text())
    entry = {"ok": 100, "failed": 0, "p50_us": 900, "max_us": 3000, "warmup": False}
    data["timeline"] = [{**entry, "t_s": t / 10, "tps": 3000.0 + 100 * t, "p99_us": 2000 + 10 * t} for t in range(5)]
    (tmp_path / "run.json").write_text(json.dumps(data))
    (row,) = repeats(load_results(tmp_path)).to_dict("records")
    # five intervals rising: too few to measure their correlation, so steadiness (shown, deciding nothing)
    assert row["samples_from"] == "5 intervals of one run (steadiness only)" and row["tps_est"].known
    assert row["tps_est"].low <= row["tps_est"].median == 3200.0 <= row["tps_est"].high
    assert row["tps_est"].confidence is None


def judged_clean_with_a_recovered_fault(data: dict[str, Any]) -> dict[str, Any]:
    """A run that `tsobench run` judged clean: its failures fell inside a fault it recovered from. Its counts
    alone (12 failed) would read as errors, which is what judging from partial fields used to say."""
    data["faults"] = [
        {"kind": "abort", "spec": "abort@0.2s", "at_s": 0.2, "duration_s": 0.0, "started_s": 0.2, "ended_s": 0.2,
         "failed_requests": 12, "first_success_after_s": 0.01, "recovered": True, "p99_during_us": 9000,
         "p99_before_us": 2000, "time_to_baseline_s": 0.05, "error": None}
    ]  # fmt: skip
    data["metrics"].update(requests_failed=12, errors={"UNAVAILABLE": 12})
    data["timeline"] = [
        {"t_s": t / 10, "ok": 370, "failed": 12 * (t == 2), "tps": 3700.0, "p50_us": 1000, "p99_us": 2100,
         "max_us": 5000, "warmup": False}
        for t in range(5)
    ]  # fmt: skip
    data["strategy"] = {"name": "pool", "safe": True, "baseline": False, "reference": False}
    data["verdict"] = {"verdict": "clean", "detail": "1,868 timestamps checked, 1 fault(s) recovered",
                       "negative_control": False, "baseline": False, "dirty": False}  # fmt: skip
    return data


def test_a_run_judged_clean_with_a_recovered_fault_is_clean_everywhere(tmp_path: Path, copies) -> None:
    folder = copies(["pool-thread-c4.json"], judged_clean_with_a_recovered_fault)
    df = load(folder)
    report = build(df)
    table = config_table(repeats(df))
    cells = dict(zip(table.header, table.rows[0], strict=True))
    assert cells["verdict"] == "clean"
    (series,) = per_series(df).to_dict("records")
    assert series["verdict_text"] == "clean: 1,868 timestamps checked, 1 fault(s) recovered"
    text = " ".join([*report.findings.summary, *report.findings.notes, *(" ".join(r) for r in report.findings.rows)])
    assert "NOT CLEAN" not in text and "pool/thread" in text
    assert all(run.clean for run in runs(df))  # the timeline figure's title says so too
    assert plan(df, target_tps=100).recommendation.strategy == "pool"  # a candidate: clean
    assert compare(folder, folder).changes[0].base.verdict == "clean"
    out = tmp_path / "report"
    assert CliRunner().invoke(main, ["report", str(folder), "-o", str(out)]).exit_code == 0
    md = (out / "report.md").read_text()
    assert "errors: 12" not in md and "NOT CLEAN" not in md


def test_repeats_fold_by_their_worst_stored_verdict(copies) -> None:
    def stored(verdict: str, detail: str):
        def edit(data: dict[str, Any]) -> dict[str, Any]:
            data["verdict"] = {"verdict": verdict, "detail": detail, "negative_control": False, "baseline": False,
                               "dirty": verdict != "clean"}  # fmt: skip
            return data

        return edit

    folder = copies(["pool-thread-c4.json"], stored("clean", "fine"), folder="a")
    other = copies(["pool-thread-c4.json"], stored("errors", "3 failed (UNAVAILABLE 3)"), folder="b")
    (row,) = repeats(load_results([folder, other])).to_dict("records")
    assert row["runs"] == 2 and row["verdict"] == "errors" and row["dirty"] and not row["clean"]
    assert row["verdict_text"] == "errors: 3 failed (UNAVAILABLE 3) (1 of 2 runs: errors)"
