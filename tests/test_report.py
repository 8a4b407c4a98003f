"""The report: merged percentiles, every file written, every PNG a real image."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tsobench.bench import latency
from tsobench.bench.analysis.aggregate import repeats
from tsobench.bench.analysis.harness import annotate
from tsobench.bench.analysis.loader import load, load_results
from tsobench.bench.analysis.report import build, config_table
from tsobench.bench.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "results" / "fixtures"
PNGS = ("throughput.png", "latency.png", "hockey_stick.png", "percentile_spectrum.png", "correctness.png")


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


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixtures copied to a results folder, reported once with the default output folder."""
    results = tmp_path_factory.mktemp("results")
    for f in FIXTURES.glob("*.json"):
        shutil.copy(f, results / f.name)
    result = CliRunner().invoke(main, ["report", str(results)])
    assert result.exit_code == 0, result.output
    assert str(results / "report" / "report.html") in result.output
    return results / "report"


def test_report_writes_every_file(report_dir: Path) -> None:
    assert sorted(p.name for p in report_dir.iterdir()) == sorted([*PNGS, "report.md", "report.html"])


@pytest.mark.parametrize("name", PNGS)
def test_each_png_is_a_valid_image(report_dir: Path, name: str) -> None:
    path = report_dir / name
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= 600 and image.height >= 250


def test_markdown_and_html_carry_the_same_report(report_dir: Path) -> None:
    md = (report_dir / "report.md").read_text()
    html = (report_dir / "report.html").read_text()
    for name in PNGS:
        assert f"]({name})" in md
    assert html.count("src='data:image/png;base64,") == len(PNGS)  # self-contained
    assert ".png'" not in html
    for section in ("Results per configuration", "Universal Scalability Law", "Little's law", "Environment"):
        assert section in md and section in html
    assert "tsobench run -q --duration 0.5" in md  # the exact commands
    assert "Intel" in md or "cpu_model" in md
    assert "errors: " in md and "clean: " in md  # the unsafe control fails, the rest are clean
    assert md.index("## Findings") < md.index("## Throughput")  # findings first
    assert html.index("<h2>Findings</h2>") < html.index("<h2>Throughput</h2>")
    assert "CPU ms / 1k ts" in md and "server RPCs / ts" in md


def test_reports_folder_is_skipped_when_reading_again(report_dir: Path) -> None:
    assert len(load(report_dir.parent)) == len(list(FIXTURES.glob("*.json")))


def test_without_open_loop_runs_the_report_says_so() -> None:
    df = load_results([FIXTURES / "locked-thread-c1.json", FIXTURES / "locked-thread-c4.json"])
    report = build(df, concurrency=4)
    names = [b.name for b in report.images]
    assert "hockey_stick.png" not in names and "percentile_spectrum.png" in names
    assert any("No open-loop runs" in getattr(b, "text", "") for b in report.blocks)
    with pytest.raises(ValueError, match="no closed-loop runs at concurrency 7"):
        build(df, concurrency=7)


def test_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "no such file" in result.output and "Traceback" not in result.output
    out = tmp_path / "out"
    ok = CliRunner().invoke(main, ["report", str(FIXTURES / "pool-thread-c4.json"), "-o", str(out)])
    assert ok.exit_code == 0, ok.output
    assert (out / "report.md").exists() and not (out / "hockey_stick.png").exists()


def test_findings_name_the_winner_its_factors_and_the_negative_control() -> None:
    report = build(load(FIXTURES))
    f = report.findings
    rows = {(r[0], r[1]): r for r in f.rows}
    # thread at 4 callers: pool 3,729 ts/s beats locked 2,733 (1.4x) and per-request 1,149 (3.2x)
    assert rows[("thread", "4")][2:] == ("pool/thread", "3,729", "2.14", "1.4x locked", "3.2x")
    assert rows[("asyncio", "16")][2] == "dispatcher/asyncio"
    assert any(s.startswith("asyncio: at 16 callers") and "dispatcher with 28,082 ts/s" in s for s in f.summary)
    control = [n for n in f.notes if n.startswith("Negative control")]
    assert len(control) == 2 and all("failed as expected" in n for n in control)
    assert any("unsafe-shared/thread" in n and "thread_crash:KeyError 1" in n and "hung 2" in n for n in control)
    assert not any("unsafe" in r[2] for r in f.rows)  # never ranked
    assert any("embedded server" in c for c in f.caveats) and any("2 core" in c for c in f.caveats)
    assert any("One run per point" in c or "repeated" in c for c in f.caveats)


def test_a_cell_with_no_answers_is_a_dash_never_zero() -> None:
    agg = repeats(load_results(FIXTURES / "unsafe-shared-asyncio-c4.json"))
    (row,) = config_table(agg).rows
    header = config_table(agg).header
    cells = dict(zip(header, row, strict=True))
    assert cells["p50 ms"] == "-" and cells["p99 ms"] == "-" and cells["p99 ms min–max (runs)"] == "-"
    assert cells["Jain"] == "-" and cells["harness-bound"] == "-"  # older file: not recorded


def _copy(name: str, folder: Path, edit=None, as_name: str | None = None) -> Path:
    data = json.loads((FIXTURES / name).read_text())
    if edit:
        edit(data)
    path = folder / (as_name or name)
    path.write_text(json.dumps(data))
    return path


def test_fairness_harness_bound_and_starvation_are_found(tmp_path: Path) -> None:
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

    _copy("pool-thread-c4.json", tmp_path, fair(0.97, 400, 520, 0))
    _copy("locked-thread-c4.json", tmp_path, fair(0.40, 0, 900, 2))
    _copy("per-request-thread-c4.json", tmp_path, null, "null-thread-c4.json")
    df = load(tmp_path)
    report = build(df)
    notes = " ".join(report.findings.notes)
    assert "lowest of the safe strategies 0.40 at locked/thread c=4" in notes
    assert "callers that completed nothing: locked/thread c=4 (2 of 4)" in notes
    assert "Harness-bound" in notes and "pool/thread c=4 (75% of 5,000)" in notes  # 3,729 >= half of 5,000
    assert "NOT CLEAN" in notes and "starved" in notes  # a starved safe point is dirty and not ranked
    assert "fairness.png" in [i.name for i in report.images]
    (row,) = [r for r in report.findings.rows if r[1] == "4"]
    assert row[2] == "pool/thread (harness-bound)"


def test_annotate_records_harness_bound_in_each_file(tmp_path: Path) -> None:
    def null(data):
        data["config"]["strategy"] = "null"
        data["metrics"]["throughput_tps"] = 100_000.0

    pool = _copy("pool-thread-c4.json", tmp_path)
    _copy("per-request-thread-c4.json", tmp_path, null, "null.json")
    other = _copy("locked-thread-c1.json", tmp_path)  # no null run at c=1
    assert sorted(annotate(tmp_path)) == sorted([pool, other])
    metrics = json.loads(pool.read_text())["metrics"]
    assert metrics["harness_bound"] is False and metrics["harness_ceiling_tps"] == 100_000.0  # 3,729 < 50,000
    assert json.loads(other.read_text())["metrics"]["harness_bound"] is None


def test_bad_files_are_skipped_with_a_warning_and_the_report_is_written(tmp_path: Path) -> None:
    for name in ("pool-thread-c4.json", "locked-thread-c4.json"):
        _copy(name, tmp_path)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)

    def huge(data):
        data["config"]["concurrency"] = 10**400

    def corrupt(data):
        data["histograms"]["latency"] = "HISTFAAAAnotahistogram"

    def script(data):
        data["metrics"]["errors"] = {"<script>alert(1)</script>": 3}
        data["metrics"]["requests_failed"] = 3

    _copy("locked-thread-c1.json", tmp_path, huge, "huge.json")
    _copy("locked-thread-c16.json", tmp_path, corrupt, "corrupt.json")
    _copy("dispatcher-asyncio-c1.json", tmp_path, script, "script.json")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["report", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 3 and all(any(n in w for w in warnings) for n in ("deep.json", "huge.json", "corrupt.json"))
    md = (out / "report.md").read_text()
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "<script>" not in (out / "report.html").read_text()
    assert "3 file(s) could not be read" in md and "pool/thread" in md
