"""The report's figures, drawn on matplotlib's Agg canvas directly: no
display, no pyplot global state, nothing left open between figures.

Each function takes the per-configuration table of ``aggregate.repeats`` and
returns a Figure, or None when the data has nothing for it to show.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from .. import latency as hdr
from .aggregate import UNSAFE, verdict
from .usl import SeriesFit

SPECTRUM_NINES = 4  # up to 99.99%
DPI = 110


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def colors(series: Sequence[str]) -> dict[str, str]:
    """The same colour for a series in every figure."""
    cmap = matplotlib.colormaps["tab10" if len(series) <= 10 else "tab20"]
    return {s: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, s in enumerate(sorted(series))}


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _closed(agg: pd.DataFrame) -> pd.DataFrame:
    return agg[~agg["open_loop"] & (agg["tps"] > 0)]


def _label(row: pd.Series) -> str:
    return row["series"] + ("" if row["clean"] else " (NOT CLEAN)")


def _callers_axis(ax, values: Sequence[float]) -> None:
    """Log2 x axis ticked at the measured concurrency levels."""
    ax.set_xscale("log", base=2)
    ticks = sorted({float(v) for v in values})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("concurrent callers (concurrency x processes)")
    ax.grid(True, which="both", alpha=0.3)


def _log_ms(ax) -> None:
    """Log y axis in milliseconds, labelled 0.5, 1, 2, 10 rather than 10^0."""
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    labelled = range(1, 10) if np.log10(high / low) < 1.2 else (2, 5)  # all of them on a narrow axis

    def minor(v: float, _: int) -> str:
        mantissa = round(v / 10 ** np.floor(np.log10(v)))
        return f"{v:g}" if mantissa in labelled else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))
    ax.grid(True, which="both", alpha=0.3)


def _mark_processes(ax, g: pd.DataFrame, y: pd.Series, color: str) -> None:
    """Hollow squares around points measured with more than one client process."""
    many = g["processes"] > 1
    if many.any():
        ax.scatter(g.loc[many, "total_callers"], y[many], s=150, marker="s", facecolors="none", edgecolors=color)


def _errorbars(ax, x, median, low, high, color: str, label: str, scale: float = 1.0) -> None:
    yerr = np.vstack([(median - low) / scale, (high - median) / scale])
    ax.errorbar(x, median / scale, yerr=yerr, color=color, marker="o", capsize=3, label=label)


_PROCESSES_HANDLE = Line2D(
    [], [], color="grey", marker="s", markerfacecolor="none", markersize=10, linestyle="", label="> 1 client process"
)


def _legend_below(fig: Figure, handles: list, data: pd.DataFrame) -> None:
    """One legend under both panels, with the multi-process marker when it is used."""
    if (data["processes"] > 1).any():
        handles.append(_PROCESSES_HANDLE)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False)


def throughput(agg: pd.DataFrame, fits: Sequence[SeriesFit], palette: dict[str, str]) -> Figure | None:
    data = _closed(agg)
    if data.empty:
        return None
    by_series = {f.series: f.fit for f in fits}
    fig = _figure(13, 5)
    ax_ts, ax_rq = fig.subplots(1, 2)
    for series, g in data.groupby("series", sort=True):
        g = g.sort_values(["total_callers", "processes"])
        color, label = palette[series], _label(g.iloc[0])
        _errorbars(ax_ts, g["total_callers"], g["tps"], g["tps_min"], g["tps_max"], color, label, 1e3)
        _errorbars(ax_rq, g["total_callers"], g["rps"], g["rps_min"], g["rps_max"], color, label, 1e3)
        _mark_processes(ax_ts, g, g["tps"] / 1e3, color)
        _mark_processes(ax_rq, g, g["rps"] / 1e3, color)
        fit = by_series.get(series)
        if fit is not None:
            n = np.geomspace(1, max(fit.n_max * 2, 2), 100)
            ax_ts.plot(n, fit.predict(n) / 1e3, color=color, linestyle=":", linewidth=1.5)
    for ax, what in ((ax_ts, "timestamps"), (ax_rq, "requests")):
        _callers_axis(ax, data["total_callers"])
        ax.set_ylabel(f"{what} per second (thousands)")
        ax.set_ylim(bottom=0)
    ax_ts.set_title("Timestamps/s (dotted: USL fit)")
    ax_rq.set_title("Requests/s")
    handles, _ = ax_ts.get_legend_handles_labels()
    handles.append(Line2D([], [], color="grey", linestyle=":", label="USL fit"))
    _legend_below(fig, handles, data)
    fig.suptitle("Throughput vs concurrency — closed loop, median of repeats, bars: min-max")
    fig.tight_layout()
    return fig


def latency(agg: pd.DataFrame, palette: dict[str, str]) -> Figure | None:
    data = _closed(agg)
    if data.empty:
        return None
    fig = _figure(13, 5)
    axes = fig.subplots(1, 2, sharey=True)
    for series, g in data.groupby("series", sort=True):
        g = g.sort_values(["total_callers", "processes"])
        for ax, k in zip(axes, ("p50", "p99"), strict=True):
            _errorbars(
                ax,
                g["total_callers"],
                g[f"{k}_us"],
                g[f"{k}_min_us"],
                g[f"{k}_max_us"],
                palette[series],
                _label(g.iloc[0]),
                1e3,
            )
            _mark_processes(ax, g, g[f"{k}_us"] / 1e3, palette[series])
    for ax, k in zip(axes, ("p50", "p99"), strict=True):
        _callers_axis(ax, data["total_callers"])
        _log_ms(ax)
        ax.set_ylabel("latency (ms, log scale)")
        ax.set_title(f"{k} latency")
        ax.yaxis.set_tick_params(labelleft=True)
    handles, _ = axes[0].get_legend_handles_labels()
    _legend_below(fig, handles, data)
    fig.suptitle("Latency vs concurrency — merged HDR histograms of repeats, bars: min-max of runs")
    fig.tight_layout()
    return fig


def hockey_stick(agg: pd.DataFrame, palette: dict[str, str]) -> Figure | None:
    data = agg[agg["open_loop"]]
    if data.empty:
        return None
    fig = _figure(9, 5.5)
    ax = fig.subplots()
    for (series, c, p), g in data.groupby(["series", "concurrency", "processes"], sort=True):
        g = g.sort_values("rate")
        color = palette[series]
        label = f"{_label(g.iloc[0])} c={c:g}" + (f" p={p:g}" if p > 1 else "")
        ax.plot(g["tps"] / 1e3, g["p99_us"] / 1e3, color=color, marker="o", label=f"{label}: p99")
        ax.plot(g["tps"] / 1e3, g["p50_us"] / 1e3, color=color, marker=".", linestyle="--", label=f"{label}: p50")
        for _, r in g.iterrows():
            ax.annotate(f"{r['rate']:g}/s", (r["tps"] / 1e3, r["p99_us"] / 1e3), fontsize=7, alpha=0.7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    _log_ms(ax)
    ax.set_xlabel("achieved throughput (thousand timestamps/s)")
    ax.set_ylabel("latency (ms, log scale), from the intended send time")
    ax.set_xlim(left=0)
    ax.legend(fontsize=8)
    ax.set_title("Latency vs throughput — open loop (Poisson arrivals), labels: offered rate")
    fig.tight_layout()
    return fig


def spectrum(agg: pd.DataFrame, concurrency: int, palette: dict[str, str]) -> Figure | None:
    data = _closed(agg)
    data = data[(data["concurrency"] == concurrency) & data["safe"] & data["histogram"].notna()]
    if data.empty:
        return None
    fractions = 1 - np.logspace(0, -SPECTRUM_NINES, 400)  # 0 .. 99.99%
    fig = _figure(9, 5.5)
    ax = fig.subplots()
    for _, r in data.sort_values(["series", "processes"]).iterrows():
        h = hdr.decode(r["histogram"])
        shown = fractions[fractions <= 1 - 1 / h.get_total_count()]  # no percentile finer than the sample
        values = np.array([h.get_value_at_percentile(100 * f) for f in shown]) / 1e3
        label = r["series"] + (f" p={r['processes']:g}" if r["processes"] > 1 else "")
        label += f" ({h.get_total_count():,} requests)"
        style = "-" if r["processes"] == 1 else "--"
        ax.plot(1 / (1 - shown), values, color=palette[r["series"]], linestyle=style, label=label)
    ax.set_xscale("log")
    _log_ms(ax)
    ticks = [10.0**k for k in range(SPECTRUM_NINES + 1)]
    ax.xaxis.set_major_locator(FixedLocator([1, 2, *ticks[1:]]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * (1 - 1 / v):.{max(0, len(str(int(v))) - 3)}f}%"))
    ax.set_xlim(1, ticks[-1])
    ax.set_xlabel("percentile (axis: 1 / (1 - p))")
    ax.set_ylabel("latency (ms, log scale)")
    ax.legend(fontsize=8)
    ax.set_title(f"Latency by percentile at concurrency {concurrency} per process — safe strategies, closed loop")
    ax.text(0.99, 0.02, "each line stops at 1 / its request count", transform=ax.transAxes, ha="right", fontsize=7,
            alpha=0.7)  # fmt: skip
    fig.tight_layout()
    return fig


FAILED_COLOR, VIOLATION_COLOR, CLEAN_COLOR = "#f4a582", "#d6604d", "#1a9850"


def correctness(by_series: pd.DataFrame) -> Figure | None:
    """One row per series: the share of requests that failed and the violations found.

    Colours mean pass/fail here (not the series colours): the point is to see
    the negative control fail and everything else stay clean.
    """
    if by_series.empty:
        return None
    data = by_series.sort_values("series", ascending=False)
    y = np.arange(len(data))
    total = (data["requests_ok"].fillna(0) + data["requests_failed"].fillna(0)).replace(0, np.nan)
    failed_pct = (100 * data["requests_failed"].fillna(0) / total).fillna(0)
    violations = data["violations"].fillna(0)
    fig = _figure(13, 0.55 * len(data) + 2)
    ax_f, ax_v = fig.subplots(1, 2, sharey=True)
    ax_f.barh(y, failed_pct, color=FAILED_COLOR)
    ax_v.barh(y, violations, color=VIOLATION_COLOR)
    for i, (_, r) in enumerate(data.iterrows()):
        text = verdict(r)
        clean = text == "clean"
        if clean:
            note = "clean" + (f": {int(r['timestamps']):,} timestamps" if pd.notna(r["timestamps"]) else "")
        else:
            top = ", ".join(f"{k} {v:,}" for k, v in sorted(r["errors"].items(), key=lambda kv: -kv[1])[:2])
            note = f"{failed_pct.iloc[i]:.0f}% failed" + (f" ({top})" if top else "")
        color = CLEAN_COLOR if clean else "black"
        ax_f.text(0.01, i, note, va="center", fontsize=8, color=color, transform=ax_f.get_yaxis_transform())
        n = int(violations.iloc[i])
        ax_v.text(0.01, i, f"{n:,} violations", va="center", fontsize=8, color="black" if n else CLEAN_COLOR,
                  transform=ax_v.get_yaxis_transform())  # fmt: skip
    ax_f.set_yticks(y, [s + (" (negative control)" if s.split("/")[0] in UNSAFE else "") for s in data["series"]])
    for label, strategy in zip(ax_f.get_yticklabels(), data["strategy"], strict=True):
        label.set_color(VIOLATION_COLOR if strategy in UNSAFE else "black")
    ax_f.set_xlim(0, 100)
    ax_f.set_xlabel("failed requests (% of requests)")
    ax_v.set_xscale("symlog", linthresh=1)
    ax_v.set_xlim(0, max(10, violations.max() * 10))
    ax_v.set_xlabel("correctness violations: duplicate + non-monotonic + mismatched (count, symlog)")
    for ax in (ax_f, ax_v):
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle("Correctness and errors per strategy: the unsafe negative control should fail, the rest stay clean")
    fig.tight_layout()
    return fig
