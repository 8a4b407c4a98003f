"""``tsobench compare``: points matched by what they measured, changes judged by their intervals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tsobench.bench import RunConfig, run, write_results
from tsobench.bench.analysis.compare import SAME, SLOWER, UNKNOWN, compare
from tsobench.bench.cli.commands import main
from tsobench.server import ChildServer, ServerConfig

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"
INTERVAL_S = 0.1
# a steady run's intervals, relative to its rate: twelve whose neighbours do not correlate (batch means)
STEADY = [1.00, 1.02, 0.98, 1.01, 0.99, 1.00, 1.03, 0.97, 1.01, 0.99, 1.02, 0.98]


def hand_made(folder: Path, name: str, tps: float, p99_us: float, **edits) -> Path:
    """SYNTHETIC: a real fixture given a timeline of steady intervals around ``tps`` and ``p99_us``
    (``edits``: ``config`` keys to change, or ``errors``: failed requests)."""
    data = json.loads((FIXTURES / "dispatcher-asyncio-c4.json").read_text())
    errors = edits.pop("errors", 0)
    data["config"].update(interval_s=INTERVAL_S, **edits)
    data["timeline"] = [
        {"t_s": round(i * INTERVAL_S, 6), "ok": int(tps * k * INTERVAL_S), "failed": 0, "tps": tps * k,
         "p50_us": round(p99_us / 3), "p99_us": round(p99_us * (2 - k)), "max_us": round(p99_us * 2),
         "warmup": False}
        for i, k in enumerate(STEADY)
    ]  # fmt: skip
    m = data["metrics"]
    m.update(measured_s=INTERVAL_S * len(STEADY), throughput_tps=tps, throughput_rps=tps)
    m["latency_us"]["p99"] = round(p99_us)
    if errors:
        m["requests_failed"], m["errors"] = errors, {"UNAVAILABLE": errors}
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def test_a_folder_against_itself_has_no_significant_change(tmp_path: Path) -> None:
    base = tmp_path / "base"
    hand_made(base, "a", 10_000, 800)
    hand_made(base, "b", 4_000, 2_000, strategy="pool", api="thread")
    result = CliRunner().invoke(main, ["compare", str(base), str(base)])
    assert result.exit_code == 0, result.output
    c = compare(base, base)
    assert [p.verdict for p in c.changes] == [SAME, SAME] and not c.regressions
    assert all(p.tps.ratio == 1 and p.tps.known and p.tps.low < 1 < p.tps.high for p in c.changes)
    assert "no significant change" in result.output and "12 batch means of one run" in result.output


def test_a_clear_slowdown_against_another_address_is_slower_and_exits_3(tmp_path: Path) -> None:
    base, new = tmp_path / "base", tmp_path / "new"
    hand_made(base, "a", 10_000, 800)
    hand_made(new, "a", 5_000, 1_600, target="10.0.0.7:2379", seed=7, duration_s=30.0)  # elsewhere, longer: same point
    c = compare(base, new)
    (p,) = c.changes
    assert p.verdict == SLOWER and p.regression
    assert p.tps.ratio == pytest.approx(0.5) and p.tps.high < 0.95 and p.p99.low > 1.05
    assert "ts/s -50.0 %" in p.why and "p99 +100.0 %" in p.why
    result = CliRunner().invoke(main, ["compare", str(base), str(new)])
    assert result.exit_code == 3 and "slower" in result.output
    faster = CliRunner().invoke(main, ["compare", str(new), str(base)])
    assert faster.exit_code == 0 and "faster" in faster.output


def test_a_small_change_counts_only_beyond_the_minimum_effect(tmp_path: Path) -> None:
    base, new = tmp_path / "base", tmp_path / "new"
    hand_made(base, "a", 10_000, 800)
    hand_made(new, "a", 9_500, 800)  # 5 % fewer ts/s, interval [-7 %, -3 %]: significant, not all beyond 5 %
    (p,) = compare(base, new).changes
    assert p.tps.high < 1 and not p.tps.distinguishable and p.verdict == SAME  # the default minimum effect: 5 %
    (strict,) = compare(base, new, min_effect=0.01).changes
    assert strict.verdict == SLOWER
    result = CliRunner().invoke(main, ["compare", str(base), str(new), "--min-effect", "0.01"])
    assert result.exit_code == 3


def test_a_point_that_is_no_longer_clean_is_a_regression(tmp_path: Path) -> None:
    base, new = tmp_path / "base", tmp_path / "new"
    hand_made(base, "a", 10_000, 800)
    hand_made(new, "a", 10_000, 800, errors=12)
    (p,) = compare(base, new).changes
    assert p.verdict == SLOWER and "verdict errors (was clean)" in p.why


def test_points_only_on_one_side_are_listed_and_no_common_point_is_bad_input(tmp_path: Path) -> None:
    base, new, other = tmp_path / "base", tmp_path / "new", tmp_path / "other"
    hand_made(base, "a", 10_000, 800)
    hand_made(base, "c16", 20_000, 900, concurrency=16)
    hand_made(new, "a", 10_000, 800)
    hand_made(new, "r500", 500, 900, rate=500.0)
    c = compare(base, new)
    assert len(c.changes) == 1 and c.only_base == ("dispatcher/asyncio c16 closed",)
    assert c.only_new == ("dispatcher/asyncio c4 r500",)
    hand_made(other, "a", 10_000, 800, strategy="locked", api="thread")
    result = CliRunner().invoke(main, ["compare", str(base), str(other)])
    assert result.exit_code == 2 and "no common points" in result.output and "Traceback" not in result.output
    missing = CliRunner().invoke(main, ["compare", str(base), str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such file or folder" in missing.output
    bad = CliRunner().invoke(main, ["compare", str(base), str(new), "--min-effect", "2"])
    assert bad.exit_code == 2 and "min-effect" in bad.output


def test_values_match_as_their_option_reads_them(tmp_path: Path) -> None:
    base, new = tmp_path / "base", tmp_path / "new"
    hand_made(base, "a", 500, 800, rate=500)  # an integer, as an older or other writer may record it
    hand_made(new, "a", 500, 800, rate=500.0)
    (p,) = compare(base, new).changes
    assert p.verdict == SAME


def test_markdown_on_stdout_and_into_a_file(tmp_path: Path) -> None:
    base = tmp_path / "base"
    hand_made(base, "a", 10_000, 800)
    out = tmp_path / "cmp.md"
    result = CliRunner().invoke(main, ["compare", str(base), str(base), "--markdown", "-o", str(out)])
    assert result.exit_code == 0
    assert result.output == out.read_text() and "| point | runs | ts/s BASE |" in result.output


def test_one_run_a_side_without_a_timeline_cannot_tell(tmp_path: Path) -> None:
    """Purpose (issue 26): a gate never passes on nothing: exit 4 unless --allow-unknown."""
    same = FIXTURES / "pool-thread-c4.json"
    (p,) = compare(same, same).changes
    assert p.verdict == UNKNOWN and not p.regression and not p.tps.known
    result = CliRunner().invoke(main, ["compare", str(same), str(same)])
    assert result.exit_code == 4 and "cannot be told" in result.output and "--repeat 3" in result.output
    assert CliRunner().invoke(main, ["compare", str(same), str(same), "--allow-unknown"]).exit_code == 0


def test_one_run_whose_intervals_correlate_is_steadiness_and_never_slower(tmp_path: Path) -> None:
    """Purpose (issue 24): an unchanged tree's two runs once exited 3 on their own correlated intervals."""
    base, new = tmp_path / "base", tmp_path / "new"
    hand_made(base, "a", 10_000, 800)
    hand_made(new, "a", 5_000, 800)
    for path in (base / "a.json", new / "a.json"):  # a drift: every interval leans on the one before
        data = json.loads(path.read_text())
        for i, entry in enumerate(data["timeline"]):
            entry["tps"] *= 1 + i / 20
            entry["p99_us"] = round(entry["p99_us"] * (1 + i / 20))  # latencies are whole µs
        path.write_text(json.dumps(data))
    (p,) = compare(base, new).changes
    assert p.verdict == UNKNOWN and p.new.samples.tps.source == "steadiness" and "steadiness" in p.why


def test_environment_differences_are_printed_and_strict_refuses_them(tmp_path: Path) -> None:
    base, new = tmp_path / "base", tmp_path / "new"
    hand_made(base, "a", 10_000, 800)
    path = hand_made(new, "a", 10_000, 800)
    data = json.loads(path.read_text())
    data["environment"].update(grpcio="1.99.0", cpu_count=64, git_commit="b" * 40)
    path.write_text(json.dumps(data))
    c = compare(base, new)
    assert {d.name for d in c.environment} == {"grpcio", "cores", "tsobench commit"}
    result = CliRunner().invoke(main, ["compare", str(base), str(new)])
    assert result.exit_code == 0 and "different environments" in result.output and "grpcio: 1.85.3" in result.output
    strict = CliRunner().invoke(main, ["compare", str(base), str(new), "--strict"])
    assert strict.exit_code == 2 and "--strict" in strict.output and "Traceback" not in strict.output
    assert CliRunner().invoke(main, ["compare", str(base), str(base), "--strict"]).exit_code == 0


def test_json_on_stdout_and_csv_into_a_file(tmp_path: Path) -> None:
    base, new = tmp_path / "base", tmp_path / "new"
    hand_made(base, "a", 10_000, 800)
    hand_made(new, "a", 5_000, 1_600)
    table = tmp_path / "cmp.csv"
    result = CliRunner().invoke(main, ["compare", str(base), str(new), "--json", "--csv", str(table)])
    assert result.exit_code == 3
    document = json.loads(result.stdout)  # one JSON document and nothing else
    (point,) = document["points"]
    assert point["verdict"] == SLOWER and point["tps_change"]["direction"] == "lower"
    assert point["tps_change"]["ratio"] == pytest.approx(0.5) and point["base"]["tps"]["median"] == 10_000
    rows = table.read_text().splitlines()
    assert rows[0].startswith("point,runs_base,runs_new,tps_base,") and len(rows) == 2 and ",slower," in rows[1]


def test_two_designs_within_one_folder(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    hand_made(folder, "a", 10_000, 800)  # dispatcher
    hand_made(folder, "b", 4_000, 2_000, strategy="pool")
    hand_made(folder, "c", 3_000, 2_000, strategy="pool", concurrency=16)  # no dispatcher point to match
    c = compare(folder, strategies=("dispatcher", "pool"))
    (p,) = c.changes
    assert p.label == "asyncio c4" and p.verdict == SLOWER and p.tps.ratio == pytest.approx(0.4)
    assert c.base.startswith("dispatcher in") and len(c.only_new) == 1
    result = CliRunner().invoke(main, ["compare", "--strategies", "dispatcher,pool", str(folder)])
    assert result.exit_code == 3 and "pool in" in result.output
    reverse = CliRunner().invoke(main, ["compare", "--strategies", "pool,dispatcher", str(folder)])
    assert reverse.exit_code == 0 and "faster" in reverse.output
    for bad in (["--strategies", "pool", str(folder)], ["--strategies", "pool,nope", str(folder)],
                ["--strategies", "pool,dispatcher", str(folder), str(folder)], [str(folder)]):  # fmt: skip
        refused = CliRunner().invoke(main, ["compare", *bad])
        assert refused.exit_code == 2 and "Traceback" not in refused.output, bad


@pytest.mark.serial  # compares measured speeds: runs alone, after the parallel phase
def test_the_same_run_against_a_slower_server_at_another_address(tmp_path: Path) -> None:
    """Real runs: BASE on the embedded server (two repeats), NEW once with --target to a server that
    waits 2 ms per reply (its batch means decide)."""
    base, new = tmp_path / "base", tmp_path / "new"
    short = {"strategy": "locked", "concurrency": 2, "duration_s": 2.0, "warmup_s": 0.1, "interval_s": INTERVAL_S}
    for i in range(2):  # two repeats: one loopback run's intervals may drift and decide nothing
        write_results(run(RunConfig(**short)), base / f"run{i}.json")
    with ChildServer(ServerConfig(delay_ms=2.0, data_dir=str(tmp_path / "data"))) as slow:
        write_results(run(RunConfig(**short, target=slow.address)), new / "run.json")
    assert CliRunner().invoke(main, ["compare", str(base), str(base)]).exit_code in (0, 4)  # 4: steadiness only
    result = CliRunner().invoke(main, ["compare", str(base), str(new)])
    assert result.exit_code == 3 and "slower" in result.output, result.output
    (p,) = compare(base, new).changes
    assert p.verdict == SLOWER and p.new.samples.tps.source == "batches"
