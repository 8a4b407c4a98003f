"""The report's figures say what the data says: the defects of issue 18 item 8, each pinned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from tsobench.bench.analysis import plots
from tsobench.bench.analysis.aggregate import per_series, repeats
from tsobench.bench.analysis.loader import load_results
from tsobench.bench.analysis.report import STYLE, config_table


def style_of(agg: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    names = sorted(set(agg["series"]))
    return plots.colors(names), plots.markers(names)


def fair(jain: float, low: int, high: int, starved: int, callers: int = 4, **strategy: Any):
    def edit(data: dict[str, Any]) -> None:
        data["metrics"].update(
            callers=callers,
            fairness={"jain": jain, "min_per_caller": low, "max_per_caller": high, "starved_callers": starved},
        )
        if strategy:
            data["config"]["strategy"] = strategy["name"]
            data["strategy"] = {"safe": True, "baseline": False, **strategy}

    return edit


def test_fairness_keeps_the_negative_control_off_the_spread_axis(tmp_path: Path, copy_one) -> None:
    # the control's most served caller did 60x the mean: drawn, it flattened every safe strategy into one line
    copy_one("pool-thread-c4.json", tmp_path, fair(0.97, 400, 520, 0))
    copy_one("locked-thread-c4.json", tmp_path, fair(0.95, 600, 760, 0))
    copy_one("unsafe-shared-thread-c4.json", tmp_path, fair(0.05, 0, 12_000, 3))
    agg = repeats(load_results(tmp_path))
    fig = plots.fairness(agg, *style_of(agg))
    ax_jain, ax_spread = fig.axes[:2]
    assert ax_spread.get_ylim()[1] < 3
    assert len(ax_jain.get_lines()) == 3  # every series keeps its Jain's index


def test_correctness_names_the_worst_point_instead_of_summing_callers(tmp_path: Path, copy_one) -> None:
    # null/thread at three concurrencies: the text is the worst point's, never "starved: 70 of 73"
    for c, starved in ((1, 0), (8, 5), (64, 41)):

        def edit(data: dict[str, Any], c: int = c, starved: int = starved) -> None:
            fair(0.3 if starved else 1.0, 0, 900, starved, callers=c, name="null", baseline=True)(data)
            data["config"]["concurrency"] = c

        copy_one("locked-thread-c4.json", tmp_path, edit, f"null-c{c}.json")
    series = per_series(load_results(tmp_path))
    (text,) = series["verdict_text"]
    assert text == "starved: 41 of 64 callers got no reply at c=64 (2 of 3 runs: starved)"
    fig = plots.correctness(series)
    drawn = [t.get_text() for t in fig.axes[0].texts]
    assert drawn == [text] and "harness's ceiling" in fig.axes[0].get_yticklabels()[0].get_text()


def test_latency_draws_no_value_under_the_axis_and_a_real_value_where_it_is(tmp_path: Path, copy_one) -> None:
    # unsafe-shared/asyncio answered nothing: no value; a dirty point with a real 0.002 ms p50 stays on the plot
    def tiny(data: dict[str, Any]) -> None:
        data["metrics"]["latency_us"].update(p50=2, p99=2)
        data["metrics"].update(requests_failed=9, errors={"ValueError": 9})

    def at_c8(data: dict[str, Any]) -> None:
        data["config"]["concurrency"] = 8

    copy_one("unsafe-shared-asyncio-c4.json", tmp_path)
    copy_one("locked-thread-c4.json", tmp_path, tiny)
    copy_one("pool-thread-c4.json", tmp_path)
    copy_one("pool-thread-c4.json", tmp_path, at_c8, "pool-thread-c8.json")  # two levels: lines, not bars
    agg = repeats(load_results(tmp_path))
    fig = plots.latency(agg, *style_of(agg))
    ax = fig.axes[0]
    marks = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())]
    below = [c for c in marks if c.get_offset_transform() != ax.transData]
    assert below and all(np.all(c.get_offsets()[:, 1] < 0) for c in below)  # under the axis, not on the data
    on_data = [c for c in marks if c.get_offset_transform() == ax.transData]
    assert any(np.isclose(c.get_offsets()[:, 1], 0.002).any() for c in on_data)
    assert ax.get_ylim()[0] <= 0.002
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any(label.startswith("not clean") for label in labels) and any("no value" in x for x in labels)


def test_the_points_table_keeps_its_verdicts_on_one_line() -> None:
    fixtures = Path(__file__).resolve().parents[3] / "results" / "fixtures"
    table = config_table(repeats(load_results(fixtures)))
    assert len(table.header) <= 13
    verdicts = {row[-1] for row in table.rows}
    assert verdicts <= {"clean", "errors (control)"}  # a word; the details are in the correctness table
    assert "white-space: nowrap" in STYLE


def test_one_level_of_callers_is_a_bar_per_series_with_its_value(tmp_path: Path, copy_one) -> None:
    copy_one("pool-thread-c4.json", tmp_path)
    copy_one("locked-thread-c4.json", tmp_path)
    agg = repeats(load_results(tmp_path))
    for fig, col, scale in (
        (plots.throughput(agg, [], *style_of(agg)), "tps", 1),
        (plots.latency(agg, *style_of(agg)), "p50_us", 1e3),
    ):
        ax = fig.axes[0]
        heights = sorted(p.get_height() for p in ax.patches)
        assert heights == pytest.approx(sorted(agg[col] / scale))
        assert [t.get_text() for t in ax.get_xticklabels()] == ["locked/thread", "pool/thread"]


def test_a_closed_loop_tradeoff_labels_each_concurrency(tmp_path: Path, copy_one) -> None:
    for c in (4, 8):

        def edit(data: dict[str, Any], c: int = c) -> None:
            data["config"]["concurrency"] = c

        copy_one("pool-thread-c4.json", tmp_path, edit, f"pool-c{c}.json")
    agg = repeats(load_results(tmp_path))
    fig = plots.closed_tradeoff(agg, *style_of(agg))
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["c=4", "c=8"]
    cdf = plots.cdfs(agg)
    (panel,) = [ax for ax in cdf.axes if ax.get_visible()]
    assert len(panel.get_lines()) == 2
    for line in panel.get_lines():
        assert line.get_ydata()[0] == 0 and line.get_ydata()[-1] == pytest.approx(1.0, abs=1e-3)


def test_fairness_draws_equal_values_apart_and_correctness_nothing_when_all_clean(tmp_path: Path, copy_one) -> None:
    copy_one("pool-thread-c4.json", tmp_path, fair(1.0, 500, 500, 0))
    copy_one("locked-thread-c4.json", tmp_path, fair(1.0, 500, 500, 0))
    agg = repeats(load_results(tmp_path))
    lines = plots.fairness(agg, *style_of(agg)).axes[0].get_lines()
    xs = [line.get_xdata()[0] for line in lines]
    assert len(set(xs)) == 2 and all(3.5 < x < 4.5 for x in xs)  # apart, and still at 4 callers
    clean = per_series(load_results(tmp_path))
    assert plots.nothing_failed(clean) and plots.correctness(clean) is None  # an empty axis saying "clean": none
