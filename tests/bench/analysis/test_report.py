"""The report: merged percentiles, every file written, every PNG a real image."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from tsobench.bench import RunConfig, run, write_results
from tsobench.bench.analysis import validation
from tsobench.bench.analysis.aggregate import repeats
from tsobench.bench.analysis.loader import load, load_results
from tsobench.bench.analysis.report import build, config_table, write_report
from tsobench.bench.cli.commands import main

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"
PNGS = (
    "throughput.png",
    "latency.png",
    "tradeoff.png",
    "latency_cdf.png",
    "hockey_stick.png",
    "percentile_spectrum.png",
    "correctness.png",
)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixtures copied to a results folder, reported once with the default output folder."""
    results = tmp_path_factory.mktemp("results")
    for f in FIXTURES.glob("*.json"):
        shutil.copy(f, results / f.name)
    result = CliRunner().invoke(main, ["report", str(results)])
    assert result.exit_code == 0, result.output
    assert str(results / "report" / "report.html") in result.output
    assert "Findings" in result.output  # printed as quickstart prints them
    return results / "report"


def test_report_writes_every_file(report_dir: Path) -> None:
    assert sorted(p.name for p in report_dir.iterdir()) == sorted(
        [*PNGS, "report.md", "report.html", "runs.csv", "points.csv"]
    )


def test_runs_csv_has_a_row_per_run_with_the_loaders_columns(report_dir: Path) -> None:
    import pandas as pd

    runs = pd.read_csv(report_dir / "runs.csv")
    results = [f for f in FIXTURES.glob("*.json") if not f.name.startswith("pytest-benchmark")]
    assert len(runs[runs["source"] == "tsobench"]) == len(results)
    assert {"strategy", "throughput_tps", "p99_us", "verdict"} <= set(runs.columns)
    assert "histogram" not in runs.columns and "timeline" not in runs.columns
    row = runs[runs["path"].str.endswith("pool-thread-c4.json")].iloc[0]
    recorded = json.loads((FIXTURES / "pool-thread-c4.json").read_text())
    assert row["throughput_tps"] == pytest.approx(recorded["metrics"]["throughput_tps"])
    assert row["p99_us"] == recorded["metrics"]["latency_us"]["p99"]


def test_points_csv_has_a_row_per_point_with_medians_and_intervals(report_dir: Path) -> None:
    import pandas as pd

    points = pd.read_csv(report_dir / "points.csv")
    runs = pd.read_csv(report_dir / "runs.csv")
    assert len(points) < len(runs)  # repeats fold into one point
    assert {"tps", "tps_low", "tps_high", "p99_us", "p99_us_low", "p99_us_high", "runs"} <= set(points.columns)
    repeated = points[points["runs"] > 1]
    assert (
        len(repeated)
        and (repeated["tps_low"] <= repeated["tps"]).all()
        and (repeated["tps"] <= repeated["tps_high"]).all()
    )


def test_report_json_is_one_document_naming_the_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(FIXTURES), "-o", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["runs_csv"] == str(tmp_path / "runs.csv") and document["html"] == str(tmp_path / "report.html")
    assert document["findings"]["summary"]


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


def test_a_cell_with_no_answers_is_a_dash_never_zero() -> None:
    agg = repeats(load_results(FIXTURES / "unsafe-shared-asyncio-c4.json"))
    (row,) = config_table(agg).rows
    header = config_table(agg).header
    cells = dict(zip(header, row, strict=True))
    assert cells["p50 ms"] == "-" and cells["p99 ms [95 % CI]"] == "-"
    assert cells["Jain"] == "-" and cells["harness-bound"] == "-"  # older file: not recorded


def test_bad_files_are_skipped_with_a_warning_and_the_report_is_written(tmp_path: Path, copy_one) -> None:
    for name in ("pool-thread-c4.json", "locked-thread-c4.json"):
        copy_one(name, tmp_path)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)

    def huge(data):
        data["config"]["concurrency"] = 10**400

    def corrupt(data):
        data["histograms"]["latency"] = "HISTFAAAAnotahistogram"

    def script(data):
        data["metrics"]["errors"] = {"<script>alert(1)</script>": 3}
        data["metrics"]["requests_failed"] = 3

    copy_one("locked-thread-c1.json", tmp_path, huge, "huge.json")
    copy_one("locked-thread-c16.json", tmp_path, corrupt, "corrupt.json")
    copy_one("dispatcher-asyncio-c1.json", tmp_path, script, "script.json")
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


def test_a_real_run_is_reported_at_its_distance_with_its_interval_reading_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one short real run, as `tsobench run` writes it today: stored verdict, strategy record, network, timeline
    result = run(RunConfig(strategy="locked", concurrency=2, duration_s=0.5, warmup_s=0.1, interval_s=0.1))
    write_results(result, tmp_path / "locked.json")
    shutil.copy(FIXTURES / "pool-thread-c4.json", tmp_path / "old.json")  # an old file beside it still loads
    reads: Counter[str] = Counter()
    read_json = validation.read_json

    def counted(path: Path, *args: Any, **kwargs: Any) -> Any:
        reads[path.name] += 1
        return read_json(path, *args, **kwargs)

    monkeypatch.setattr(validation, "read_json", counted)
    written = write_report([tmp_path], tmp_path / "report")
    assert reads == {"locked.json": 1, "old.json": 1}  # one read per results file, none written back
    found = written.findings
    assert any("loopback (round trip" in s for s in found.summary)
    (row,) = [r for r in found.rows if r[0] == "thread" and r[1] == "2"]
    assert row[2] != "-" and "[-]" not in row[4]  # its round trip and an interval from its own intervals
    table = config_table(repeats(load(tmp_path)))
    cells = {r[0]: dict(zip(table.header, r, strict=True)) for r in table.rows}
    assert cells["locked/thread"]["runs"].startswith("1 (") and cells["locked/thread"]["verdict"] == "clean"
