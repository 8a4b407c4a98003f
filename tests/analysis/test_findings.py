"""The findings: who wins and how sure that is, the negative control, the harness, each design against its bound."""

from __future__ import annotations

from pathlib import Path

from tsobench.bench.analysis.loader import load
from tsobench.bench.analysis.report import build

FIXTURES = Path(__file__).resolve().parents[2] / "results" / "fixtures"


def test_findings_name_the_winner_its_factors_and_the_negative_control() -> None:
    report = build(load(FIXTURES))
    f = report.findings
    rows = {(r[0], r[1]): r for r in f.rows}
    # thread at 4 callers: pool 3,729 ts/s, locked 2,733 (1.4x) and per-request 1,149 (3.2x); behaviour changed on
    # purpose (issue 18): one old run a point with no timeline has no interval, so no factor is claimed as a finding
    no_interval = ("pool/thread", "3,729 [-]", "2.14 [-]", "locked: 1.4x (no interval)", "3.2x (no interval)")
    assert rows[("thread", "4")][2:] == ("-", *no_interval)  # RTT: not recorded in these files
    assert rows[("asyncio", "16")][3] == "dispatcher/asyncio"
    lead = [s for s in f.summary if s.startswith("asyncio, 16 callers (the most measured in one process)")]
    assert len(lead) == 1 and "distance not recorded" in lead[0] and "dispatcher with 28,082 [-] ts/s" in lead[0]
    control = [n for n in f.notes if n.startswith("Negative control")]
    assert len(control) == 2 and all("failed as expected" in n for n in control)
    assert any("unsafe-shared/thread" in n and "thread_crash:KeyError 1" in n and "hung 2" in n for n in control)
    assert not any("unsafe" in r[3] for r in f.rows)  # never ranked
    assert any("embedded server" in c for c in f.caveats) and any("2 core" in c for c in f.caveats)
    assert any("One run per point" in c or "repeated" in c for c in f.caveats)


def test_fairness_harness_bound_and_starvation_are_found(tmp_path: Path, copy_one) -> None:
    # SYNTHETIC: copies of real files with fields added by hand (the measurement-truth fields).
    def fair(jain, low, high, starved):
        def edit(data):
            data["metrics"].update(callers=4, fairness={"jain": jain, "min_per_caller": low, "max_per_caller": high,
                                                        "starved_callers": starved})  # fmt: skip
            data["strategy"] = {"name": data["config"]["strategy"], "safe": True}

        return edit

    def null(data):
        data["config"]["strategy"] = "null"
        data["strategy"] = {"name": "null", "safe": True}
        data["metrics"]["throughput_tps"] = data["metrics"]["throughput_rps"] = 5_000.0

    copy_one("pool-thread-c4.json", tmp_path, fair(0.97, 400, 520, 0))
    copy_one("locked-thread-c4.json", tmp_path, fair(0.40, 0, 900, 2))
    copy_one("per-request-thread-c4.json", tmp_path, null, "null-thread-c4.json")
    df = load(tmp_path)
    report = build(df)
    notes = " ".join(report.findings.notes)
    assert "lowest of the safe strategies 0.40 at locked/thread c=4" in notes
    assert "callers that completed nothing: locked/thread c=4 (2 of 4)" in notes
    assert "Harness-bound" in notes and "pool/thread c=4 (75% of 5,000)" in notes  # 3,729 >= half of 5,000
    assert "NOT CLEAN" in notes and "starved" in notes  # a starved safe point is dirty and not ranked
    assert "fairness.png" in [i.name for i in report.images]
    (row,) = [r for r in report.findings.rows if r[1] == "4"]
    assert row[3] == "pool/thread (harness-bound)"
