"""The findings: who wins and how sure that is, the negative control, the harness, each design against its bound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tsobench.bench.analysis.loader import load
from tsobench.bench.analysis.report import build

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"


def test_findings_name_the_winner_its_factors_and_the_negative_control() -> None:
    report = build(load(FIXTURES))
    f = report.findings
    rows = {(r[0], r[1]): r for r in f.rows}
    # thread at 4 callers: pool 3,729 ts/s, locked 2,733 (1.4x) and per-request 1,149 (3.2x); behaviour changed on
    # purpose (issue 18): one old run a point with no timeline has no interval, so no factor is claimed as a finding
    no_interval = ("pool/thread", "3,729 [-]", "2.14 [-]", "locked: 1.4x (cannot tell)", "3.2x (cannot tell)")
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


def measured_at(rtt_ms: float, emulated: bool = True, loopback: bool = True):
    """An edit recording the distance a run was measured at, as `tsobench run` writes it."""

    def edit(data: dict[str, Any]) -> None:
        if emulated:  # the option, where this tsobench declares it (a point apart); the network record always
            data["config"].setdefault("server", {})["rtt_ms"] = rtt_ms
        data["network"] = {
            "rtt_ms": {"min": rtt_ms, "median": rtt_ms * 1.05, "samples": 20},
            "emulated": {"rtt_ms": rtt_ms, "jitter_ms": 0.0} if emulated else None,
            "loopback": loopback,
        }

    return edit


def with_record(name: str, **record: Any):
    def edit(data: dict[str, Any]) -> None:
        data["config"]["strategy"] = name
        data["strategy"] = {"name": name, "safe": True, "baseline": False, "reference": False, **record}

    return edit


def both(*edits):
    def edit(data: dict[str, Any]) -> None:
        for e in edits:
            e(data)

    return edit


def throughput(rps: float, **batching: float):
    def edit(data: dict[str, Any]) -> None:
        data["metrics"].update(throughput_rps=rps, throughput_tps=rps, batching=batching or None)

    return edit


def test_the_harness_ceiling_never_makes_findings_dirty_and_its_unfairness_is_the_harness(tmp_path, copy_one):
    # SYNTHETIC: null/thread starving 41 of 64 callers, as GIL scheduling made it do in a quickstart
    def starving_null(data: dict[str, Any]) -> None:
        data["config"].update(strategy="null", concurrency=64)
        data["metrics"].update(
            callers=64, fairness={"jain": 0.3, "min_per_caller": 0, "max_per_caller": 9000, "starved_callers": 41}
        )

    copy_one("locked-thread-c4.json", tmp_path, starving_null, "null-thread-c64.json")
    copy_one("pool-thread-c4.json", tmp_path)
    found = build(load(tmp_path)).findings
    notes = " ".join(found.notes)
    assert "NOT CLEAN" not in notes and "null/thread" not in " ".join(" ".join(r) for r in found.rows)
    assert "The harness's own ceiling (null: an in-process counter, no RPC) serves thread callers unevenly" in notes
    assert "41 of 64 callers completed nothing" in notes and "GIL" in notes and "thread-API figures" in notes


def test_overlapping_intervals_are_not_distinguishable_and_apart_ones_get_a_factor(tmp_path, copy_one):
    def steady(tps: float, spread: float):
        def edit(data: dict[str, Any]) -> None:
            entry = {"ok": 100, "failed": 0, "p50_us": 900, "p99_us": 2000, "max_us": 3000, "warmup": False}
            # ten intervals whose neighbours do not correlate: batch means of one run, samples that decide
            rates = [tps * (1 + spread * k) for k in (-2, 2, -1, 1, 0, 0, 1, -1, 2, -2, 1, -1)]
            data["timeline"] = [{**entry, "t_s": i / 10, "tps": r} for i, r in enumerate(rates)]
            data["metrics"]["throughput_tps"] = data["metrics"]["throughput_rps"] = tps

        return edit

    copy_one("pool-thread-c4.json", tmp_path, steady(3000, 0.05))
    copy_one("locked-thread-c4.json", tmp_path, steady(2900, 0.05))  # within the other's interval
    copy_one("per-request-thread-c4.json", tmp_path, steady(1000, 0.01))
    found = build(load(tmp_path)).findings
    (row,) = found.rows
    assert row[3] == "pool/thread or locked/thread (not distinguishable)"
    assert row[6] == "locked: not distinguishable"
    assert row[7].startswith("3.0x [") and "cannot tell" not in row[7]  # pool against per-request: apart
    (pairs,) = found.pairs  # every design against every other, the same rule
    assert pairs.title.startswith("thread, 4 callers") and pairs.header[1:] == ("pool/thread", "locked/thread",
                                                                               "per-request/thread")  # fmt: skip
    table = {r[0]: dict(zip(pairs.header[1:], r[1:], strict=True)) for r in pairs.rows}
    assert table["pool/thread"]["locked/thread"] == table["locked/thread"]["pool/thread"] == "not distinguishable"
    assert table["locked/thread"]["per-request/thread"].startswith("2.9x [")
    assert (
        table["per-request/thread"]["pool/thread"].startswith("0.33x [") and table["pool/thread"]["pool/thread"] == ""
    )
    text = "\n".join(found.lines())
    assert pairs.title in text and "ts/s of / over" in text


def test_each_design_is_placed_against_its_bound_at_each_round_trip(tmp_path, copy_one):
    one = {"in_flight": 1, "unit": "requests", "why": "one stream held across each request"}
    batches = {"in_flight": 1, "unit": "batches", "why": "one stream, one batch in flight"}
    for rtt, c in ((1.0, 1), (2.0, 4)):
        locked = both(with_record("locked", bound=one), measured_at(rtt), throughput(0.98e3 / rtt))
        copy_one(f"locked-thread-c{c}.json", tmp_path, locked)
        rpcs = {"rpcs_per_s": 0.9e3 / rtt, "mean_batch": 4.0}
        dispatcher = both(with_record("dispatcher", bound=batches), measured_at(rtt), throughput(3.6e3 / rtt, **rpcs))
        copy_one(f"dispatcher-asyncio-c{c}.json", tmp_path, dispatcher)
    found = build(load(tmp_path)).findings
    at1, at2 = (n for n in found.notes if n.startswith("At "))  # nearest first
    assert at1.startswith("At 1 ms emulated (measured 1.05 ms)")
    assert at2.startswith(
        "At 2 ms emulated (measured 2.10 ms), the best safe strategy is dispatcher/asyncio c=4 with 1,800"
    )
    per_round_trip = "in flight per round trip of 2.00 ms, the shortest measured: 500/s)"
    assert f"locked/thread c=4: 490 requests/s, 98% of its bound (1 request {per_round_trip}" in at2
    assert f"dispatcher/asyncio c=4: 450 RPCs/s, 90% of its bound (1 batch {per_round_trip}" in at2
    assert "which bounds RPCs, not timestamps" in at2 and "overstates" not in at2


def test_a_reference_client_is_shown_and_never_ranked(tmp_path, copy_one):
    copy_one("dispatcher-asyncio-c4.json", tmp_path)
    reference = both(with_record("tikv-client", reference=True), throughput(20_000.0))  # faster than any design
    copy_one("dispatcher-asyncio-c4-repeat2.json", tmp_path, reference, "tikv.json")
    found = build(load(tmp_path)).findings
    (row,) = found.rows
    assert row[3] == "dispatcher/asyncio"
    note = next(n for n in found.notes if n.startswith("Reference tikv-client/asyncio (reference)"))
    assert "not ranked" in note and "20,000" in note


def test_a_loopback_only_report_says_so(tmp_path, copy_one):
    copy_one("pool-thread-c4.json", tmp_path, measured_at(0.05, emulated=False))
    caveats = " ".join(build(load(tmp_path)).findings.caveats)
    assert "Every figure was measured over loopback (median round trip 0.05 ms)" in caveats
    assert "--server-rtt-ms" in caveats
