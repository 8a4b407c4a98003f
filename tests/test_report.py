"""The report: merged percentiles, every file written, every PNG a real image."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tsobench.bench import latency
from tsobench.bench.analysis.aggregate import repeats
from tsobench.bench.analysis.loader import load, load_results
from tsobench.bench.analysis.report import build
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
    assert "ERRORS" in md and "clean" in md  # the unsafe control fails, the rest are clean
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
