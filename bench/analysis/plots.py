"""The report's figures, drawn on matplotlib's Agg canvas directly: no
display, no pyplot global state, nothing left open between figures.

Each function takes the per-configuration table of ``aggregate.repeats`` and
returns a Figure, or None when the data has nothing for it to show.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from tsobench.bench.analysis.aggregate import where, with_series
from tsobench.bench.analysis.distance import bound_of, distance_key, round_trip_ms
from tsobench.bench.analysis.loader import DISTANCE
from tsobench.bench.analysis.usl import SeriesFit
from tsobench.bench.measure import latency as hdr

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


MARKERS = ("o", "s", "^", "D", "v", "P", "*", "<", ">", "h", "p", "d")
NOT_CLEAN: dict[str, Any] = dict(marker="X", s=110, edgecolors="black", linewidths=1.2, zorder=5)
# A point with no value at all (failed, nothing answered): a hollow mark under the axis, where no value can be.
NO_VALUE: dict[str, Any] = dict(marker="v", s=70, facecolors="none", linewidths=1.5, zorder=5, clip_on=False)
NO_VALUE_Y = -0.1  # in axes coordinates: under the tick labels
NO_VALUE_PAD = 16  # points between the tick labels and the axis label, room for those marks


def markers(series: Sequence[str]) -> dict[str, str]:
    """A marker per series as well as a colour: lines stay apart in grey print."""
    return {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(sorted(series))}


def _closed(agg: pd.DataFrame) -> pd.DataFrame:
    """Closed-loop points, failed and dirty ones included (drawn apart, never dropped)."""
    return agg[~agg["open_loop"]]


def _callers_axis(ax, values: Sequence[float]) -> None:
    """Log2 x axis ticked at the measured concurrency levels."""
    ax.set_xscale("log", base=2)
    ticks = sorted({float(v) for v in values})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("concurrent callers (concurrency x processes)")
    ax.grid(True, which="both", alpha=0.3)


def log_axis(ax, fmt=lambda v: f"{v:g}", which: str = "y") -> None:
    """Log axis (y, or ``which="x"``) labelled 0.5, 1, 2, 10 rather than 10^0: 2, 3 and 5 between the powers
    of ten on a narrow axis, 2 and 5 on a wider one, the powers alone on a wide one (call it once the data
    is drawn)."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    set_scale, get_lim, set_lim = (
        (ax.set_yscale, ax.get_ylim, ax.set_ylim) if which == "y" else (ax.set_xscale, ax.get_xlim, ax.set_xlim)
    )
    set_scale("log")
    low, high = get_lim()
    if high / low < 3:  # a nearly flat line: room above and below, not ticks in the fourth digit
        low, high = low / 1.5, high * 1.5
        set_lim(low, high)
    decades = np.log10(high / low)
    labelled = (2, 3, 5) if decades < 1.2 else (2, 5) if decades < 3 else ()

    def minor(v: float, _: int) -> str:
        mantissa = round(v / 10 ** np.floor(np.log10(v)))
        return fmt(v) if mantissa in labelled else ""

    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    axis.set_minor_formatter(FuncFormatter(minor))
    ax.grid(True, which="both", alpha=0.3)


def _mark_processes(ax, g: pd.DataFrame, y: pd.Series, color: str) -> None:
    """Hollow squares around points measured with more than one client process."""
    many = g["processes"] > 1
    if many.any():
        ax.scatter(g.loc[many, "total_callers"], y[many], s=180, marker="s", facecolors="none", edgecolors=color)


def _series_points(
    ax, g: pd.DataFrame, col: str, bounds: tuple[str, str], style: tuple[str, str], label: str, scale: float
) -> None:
    """A series' clean points with min-max bars, the line through the one-process ones;
    points that are not clean as a big X on the same spot; points with no value at all
    (failed, no answers) as a hollow mark under the axis, below its tick labels, where no
    value can be mistaken for one. Nothing is dropped."""
    color, marker = style
    g = g.sort_values(["total_callers", "processes"])
    value = g[col] / scale
    has_value = value.notna() & (value > 0)
    ok = g[g["clean"] & has_value]
    for many, part in ok.groupby(ok["processes"] > 1):
        # the merged histograms' percentile can sit a rounding step outside the runs' own: no negative bar
        yerr = np.clip(np.vstack([part[col] - part[bounds[0]], part[bounds[1]] - part[col]]) / scale, 0, None)
        ax.errorbar(part["total_callers"], part[col] / scale, yerr=yerr, color=color, marker=marker, capsize=3,
                    linestyle="none" if many else "-", label=None if many else label)  # fmt: skip
    if ok.empty:
        ax.plot([], [], color=color, marker=marker, label=label)  # still in the legend
    _mark_processes(ax, ok, ok[col] / scale, color)
    dirty = g[~g["clean"] & has_value]
    if len(dirty):
        ax.scatter(dirty["total_callers"], dirty[col] / scale, color=color, **NOT_CLEAN)
    missing = g[~has_value]
    if len(missing):
        ax.scatter(missing["total_callers"], [NO_VALUE_Y] * len(missing), edgecolors=color,
                   transform=ax.get_xaxis_transform(), **NO_VALUE)  # fmt: skip
        ax.xaxis.labelpad = NO_VALUE_PAD  # the axis label goes below the marks


def role_label(series: str, g: pd.DataFrame) -> str:
    """A series' name in a legend, with what it is when it is no design to choose: the negative control,
    the harness's own ceiling (``g``: its points)."""
    if g["baseline"].any():
        return f"{series} (harness's ceiling)"
    return series if g["safe"].all() else f"{series} (negative control)"


def _si(v: float) -> str:
    """1k, 20k, 1.5M: throughput ticks a reader can read."""
    for factor, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= factor:
            return f"{v / factor:g}{suffix}"
    return f"{v:g}"


_PROCESSES_HANDLE = Line2D(
    [], [], color="grey", marker="s", markerfacecolor="none", markersize=10, linestyle="", label="> 1 client process"
)
_NOT_CLEAN_HANDLE = Line2D(
    [], [], color="grey", marker="X", markeredgecolor="black", markersize=10, linestyle="",
    label="not clean (errors, violations, starved): its value",
)  # fmt: skip
_NO_VALUE_HANDLE = Line2D(
    [], [], color="grey", marker="v", markerfacecolor="none", markersize=8, linestyle="",
    label="no value (failed, or nothing answered): under the axis",
)  # fmt: skip


def _legend_outside(fig: Figure, handles: list, data: pd.DataFrame, cols: Sequence[str] = ("tps",)) -> None:
    """One legend under the panels (never over the data), with the markers that are used."""
    handles = sorted((h for h in handles if not h.get_label().startswith("USL")), key=lambda h: h.get_label()) + [
        h for h in handles if h.get_label().startswith("USL")
    ]
    if (data["processes"] > 1).any():
        handles.append(_PROCESSES_HANDLE)
    values = data[list(cols)]
    has_value = (values.notna() & (values > 0)).all(axis=1)
    if (~data["clean"] & has_value).any():
        handles.append(_NOT_CLEAN_HANDLE)
    if (~has_value).any():
        handles.append(_NO_VALUE_HANDLE)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False)


def _usl_curve(ax, fit, color: str) -> None:
    """Solid across the measured range, dashed beyond it (extrapolation)."""
    inside = np.geomspace(max(fit.n_min, 1), fit.n_max, 60)
    ax.plot(inside, fit.predict(inside), color=color, linestyle="-", linewidth=1, alpha=0.6)
    beyond = np.geomspace(fit.n_max, fit.n_max * 4, 40)
    ax.plot(beyond, fit.predict(beyond), color=color, linestyle="--", linewidth=1, alpha=0.6)


def one_level(data: pd.DataFrame) -> bool:
    """Every point at one number of callers: a line against concurrency would be one dot per series."""
    return data["total_callers"].nunique() == 1


def _point_label(r: pd.Series, g: pd.DataFrame) -> str:
    return role_label(r["series"], g) + (f" p={r['processes']:g}" if r["processes"] > 1 else "")


def _bars(
    ax, data: pd.DataFrame, col: str, bounds: tuple[str, str], palette: dict[str, str], scale: float, fmt
) -> None:
    """One level: a bar per series at its value, whiskers min-max of the repeats, the value written on it;
    a point that is not clean hatched with an X, one with no value an empty slot that says so."""
    data = data.sort_values(["series", "processes"]).reset_index(drop=True)
    for i, r in data.iterrows():
        value, color = r[col] / scale, palette[r["series"]]
        if not (pd.notna(value) and value > 0):
            ax.text(i, 0, " no value", rotation=90, ha="center", va="bottom", fontsize=8, color="dimgrey")
            continue
        clean = bool(r["clean"])
        ax.bar(i, value, color=color, alpha=0.85 if clean else 0.45, hatch=None if clean else "xx",
               edgecolor="black" if not clean else color)  # fmt: skip
        low, high = r[bounds[0]] / scale, r[bounds[1]] / scale
        if pd.notna(low) and pd.notna(high) and high > low:
            ax.errorbar(i, value, yerr=[[max(0.0, value - low)], [max(0.0, high - value)]], color="black", capsize=4)
        ax.annotate(fmt(value), (i, value), ha="center", va="bottom", xytext=(0, 3), textcoords="offset points",
                    fontsize=8)  # fmt: skip
    labels = [_point_label(r, data[data["series"] == r["series"]]) for _, r in data.iterrows()]
    ax.set_xticks(range(len(data)), labels, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(data) - 0.4)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)  # room for the values written on the bars
    ax.grid(True, axis="y", alpha=0.3)


_NOT_CLEAN_BAR = Patch(facecolor="lightgrey", edgecolor="black", hatch="xx",
                       label="not clean (errors, violations, starved): its value")  # fmt: skip


def _bar_figure(data: pd.DataFrame, panels: list[tuple[Any, ...]], palette: dict[str, str], title: str) -> Figure:
    """One level of callers: a bar chart per panel (``(column, bounds, scale, format, y label, title)``)."""
    fig = _figure(6.5 * len(panels), 5.0)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (col, bounds, scale, fmt, ylabel, panel_title) in zip(axes, panels, strict=True):
        _bars(ax, data, col, bounds, palette, scale, fmt)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, fmt=fmt: fmt(v) if v else "0"))
        ax.set_ylabel(ylabel)
        ax.set_title(panel_title)
    values = data[[p[0] for p in panels]]
    if (~data["clean"] & (values.notna() & (values > 0)).all(axis=1)).any():  # a hatched bar is drawn
        fig.legend(handles=[_NOT_CLEAN_BAR], loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def throughput(
    agg: pd.DataFrame, fits: Sequence[SeriesFit], palette: dict[str, str], shapes: dict[str, str]
) -> Figure | None:
    """Timestamps/s on a log axis; requests/s beside it only when a request asks for more than one.
    At one level of callers, a bar per series (a line through one dot says nothing)."""
    data = _closed(agg)
    if data.empty:
        return None
    if one_level(data):
        callers = int(data["total_callers"].iloc[0])
        panels: list[tuple[Any, ...]] = [
            ("tps", ("tps_min", "tps_max"), 1, _si, "timestamps per second", "Timestamps/s")
        ]
        if (data["count"].fillna(1) != 1).any():
            panels.append(("rps", ("rps_min", "rps_max"), 1, _si, "requests per second", "Requests/s"))
        return _bar_figure(
            data,
            panels,
            palette,
            f"Throughput at {callers} callers — closed loop, median of repeats, whiskers: min-max",
        )
    by_series = {f.series: f.fit for f in fits}
    both = (data["count"].fillna(1) != 1).any()
    fig = _figure(13 if both else 10, 5.5)
    axes = fig.subplots(1, 2) if both else [fig.subplots()]
    columns = (("tps", "timestamps"), ("rps", "requests"))[: len(axes)]
    for series, g in data.groupby("series", sort=True):
        for ax, (col, _) in zip(axes, columns, strict=True):
            style = (palette[series], shapes[series])
            _series_points(ax, g, col, (f"{col}_min", f"{col}_max"), style, role_label(series, g), 1)
        fit = by_series.get(series)
        if fit is not None:
            _usl_curve(axes[0], fit, palette[series])
    for ax, (_, what) in zip(axes, columns, strict=True):
        _callers_axis(ax, data["total_callers"])
        log_axis(ax, _si)
        ax.set_ylabel(f"{what} per second (log scale)")
    fitted = any(by_series.get(s) is not None for s in data["series"])
    usl = " (thin line: USL fit of one process, dashed beyond the measured range)" if fitted else ""
    axes[0].set_title(f"Timestamps/s{usl}")
    if both:
        axes[1].set_title("Requests/s")
    handles, _ = axes[0].get_legend_handles_labels()
    if fitted:
        handles.append(Line2D([], [], color="grey", linestyle="-", alpha=0.6, label="USL fit (measured range)"))
        handles.append(Line2D([], [], color="grey", linestyle="--", alpha=0.6, label="USL fit (extrapolated)"))
    _legend_outside(fig, handles, data)
    fig.suptitle("Throughput vs concurrency — closed loop, median of repeats, bars: min-max")
    fig.tight_layout()
    return fig


def latency(agg: pd.DataFrame, palette: dict[str, str], shapes: dict[str, str]) -> Figure | None:
    """p50 and p99 against concurrency (log); at one level of callers, a bar per series."""
    data = _closed(agg)
    if data.empty:
        return None
    if one_level(data):
        callers = int(data["total_callers"].iloc[0])
        panels: list[tuple[Any, ...]] = [
            (f"{k}_us", (f"{k}_min_us", f"{k}_max_us"), 1e3, lambda v: f"{v:.3g}", "latency (ms)", f"{k} latency")
            for k in ("p50", "p99")
        ]
        return _bar_figure(
            data, panels, palette, f"Latency at {callers} callers — merged HDR histograms, whiskers: min-max of runs"
        )
    fig = _figure(13, 5.5)
    axes = fig.subplots(1, 2, sharey=True)
    for series, g in data.groupby("series", sort=True):
        for ax, k in zip(axes, ("p50", "p99"), strict=True):
            bounds = (f"{k}_min_us", f"{k}_max_us")
            _series_points(ax, g, f"{k}_us", bounds, (palette[series], shapes[series]), role_label(series, g), 1e3)
    for ax, k in zip(axes, ("p50", "p99"), strict=True):
        _callers_axis(ax, data["total_callers"])
        log_axis(ax)
        ax.set_ylabel("latency (ms, log scale)")
        ax.set_title(f"{k} latency")
        ax.yaxis.set_tick_params(labelleft=True)
    handles, _ = axes[0].get_legend_handles_labels()
    _legend_outside(fig, handles, data, ("p50_us", "p99_us"))
    fig.suptitle("Latency vs concurrency — merged HDR histograms of repeats, bars: min-max of runs")
    fig.tight_layout()
    return fig


DODGE = 0.06  # log2 units between neighbouring series: a few percent of a doubling


def dodge(index: int, count: int) -> float:
    """The factor moving series ``index`` of ``count`` sideways on a log2 axis, centred on the true value."""
    return float(2 ** ((index - (count - 1) / 2) * DODGE))


def fairness(agg: pd.DataFrame, palette: dict[str, str], shapes: dict[str, str]) -> Figure | None:
    """Jain's index, and the least and most served caller against the mean, per strategy."""
    data = _closed(agg)
    data = data[data["jain"].notna()]
    if data.empty:
        return None
    fig = _figure(13, 5.5)
    ax_j, ax_r = fig.subplots(1, 2)
    names = sorted(set(data["series"]))
    for series, g in data.groupby("series", sort=True):
        g = g.sort_values(["total_callers", "processes"]).copy()
        # each series a little apart on the log axis, so equal values (a Jain's index of 1) do not hide each other
        g["x"] = g["total_callers"] * dodge(names.index(series), len(names))
        color, marker = palette[series], shapes[series]
        ax_j.plot(g["x"], g["jain"], color=color, marker=marker, label=role_label(series, g),
                  markerfacecolor="none", markersize=7, alpha=0.9)  # fmt: skip
        if not g["safe"].all():
            continue  # the negative control's callers crash: its spread would flatten every design into one line
        # completions count answered and failed requests alike, as min/max_per_caller do
        completions = g["requests_ok"] + g["requests_failed"].fillna(0)
        mean = completions / g["callers"].where(g["callers"] > 0, g["total_callers"])
        ax_r.plot(g["x"], g["min_per_caller"] / mean, color=color, marker=marker)
        ax_r.plot(g["x"], g["max_per_caller"] / mean, color=color, marker=marker, linestyle="--",
                  markerfacecolor="none")  # fmt: skip
        starved = g[g["starved_callers"].fillna(0) > 0]
        if len(starved):
            ax_r.scatter(starved["x"], [0] * len(starved), color=color, **NOT_CLEAN)
    for ax in (ax_j, ax_r):
        _callers_axis(ax, data["total_callers"])
        if one_level(data):
            ax.set_xlim(data["total_callers"].iloc[0] / 1.6, data["total_callers"].iloc[0] * 1.6)
        ax.set_xlabel("concurrent callers (concurrency x processes; series drawn a little apart)")
    ax_j.set_ylim(0, 1.05)
    ax_j.set_ylabel("Jain's index of completions per caller (1 = equal)")
    ax_j.set_title("Fairness between callers")
    ax_r.set_ylim(bottom=0)
    ax_r.axhline(1, color="grey", linewidth=0.8)
    ax_r.set_ylabel("completions per caller / mean")
    ax_r.set_title("Least (solid) and most (dashed) served caller; X at 0: starved (safe strategies)")
    handles, _ = ax_j.get_legend_handles_labels()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False)
    fig.suptitle("Fairness — completions per caller in the measured window")
    fig.tight_layout()
    return fig


def hockey_stick(agg: pd.DataFrame, palette: dict[str, str], shapes: dict[str, str]) -> Figure | None:
    data = agg[agg["open_loop"]]
    if data.empty:
        return None
    fig = _figure(12, 5.5)
    ax = fig.subplots()
    for (series, c, p), g in data.groupby(["series", "concurrency", "processes"], sort=True):
        g = g.sort_values("rate")
        color, marker = palette[series], shapes[series]
        label = f"{series} c={c:g}" + (f" p={p:g}" if p > 1 else "")
        ax.plot(g["tps"] / 1e3, g["p99_us"] / 1e3, color=color, marker=marker, label=f"{label}: p99")
        ax.plot(g["tps"] / 1e3, g["p50_us"] / 1e3, color=color, marker=marker, markerfacecolor="none",
                linestyle="--", label=f"{label}: p50")  # fmt: skip
        dirty = g[~g["clean"]]
        if len(dirty):
            ax.scatter(dirty["tps"] / 1e3, dirty["p99_us"] / 1e3, color=color, **NOT_CLEAN)
        for _, r in g.iterrows():
            ax.annotate(f"{r['rate']:g}/s", (r["tps"] / 1e3, r["p99_us"] / 1e3), fontsize=7, alpha=0.7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    log_axis(ax)
    ax.set_xlabel("achieved throughput (thousand timestamps/s)")
    ax.set_ylabel("latency (ms, log scale), from the intended send time")
    ax.set_xlim(left=0)
    handles, _ = ax.get_legend_handles_labels()
    if (~data["clean"]).any():
        handles.append(_NOT_CLEAN_HANDLE)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set_title("Latency vs throughput — open loop (Poisson arrivals), labels: offered rate")
    fig.tight_layout()
    return fig


def closed_tradeoff(agg: pd.DataFrame, palette: dict[str, str], shapes: dict[str, str]) -> Figure | None:
    """Closed loop, p99 against the throughput it bought: a point per concurrency, labelled with its callers,
    joined in order per series (one process); the designs' trade-off on one page."""
    data = _closed(agg)
    data = data[(data["tps"] > 0) & data["p99_us"].notna() & (data["p99_us"] > 0)]
    if data.empty:
        return None
    fig = _figure(12, 5.5)
    ax = fig.subplots()
    for series, g in data.groupby("series", sort=True):
        g = g.sort_values(["processes", "total_callers"])
        color, marker = palette[series], shapes[series]
        one = g[g["processes"] == 1]
        ax.plot(one["tps"], one["p99_us"] / 1e3, color=color, marker=marker, label=role_label(series, g))
        many = g[g["processes"] > 1]
        if len(many):
            ax.plot(many["tps"], many["p99_us"] / 1e3, color=color, marker=marker, linestyle="none",
                    markerfacecolor="none")  # fmt: skip
        dirty = g[~g["clean"]]
        if len(dirty):
            ax.scatter(dirty["tps"], dirty["p99_us"] / 1e3, color=color, **NOT_CLEAN)
        for _, r in g.iterrows():
            text = f"c={r['total_callers']:g}" + (f" (p={r['processes']:g})" if r["processes"] > 1 else "")
            ax.annotate(text, (r["tps"], r["p99_us"] / 1e3), fontsize=7, alpha=0.8, xytext=(4, 3),
                        textcoords="offset points", color=color)  # fmt: skip
    log_axis(ax, _si, which="x")
    log_axis(ax)
    ax.set_xlabel("throughput (timestamps/s, log scale)")
    ax.set_ylabel("p99 latency (ms, log scale)")
    handles, _ = ax.get_legend_handles_labels()
    if (~data["clean"]).any():
        handles.append(_NOT_CLEAN_HANDLE)
    if (data["processes"] > 1).any():
        handles.append(Line2D([], [], color="grey", marker="o", markerfacecolor="none", linestyle="",
                              label="> 1 client process"))  # fmt: skip
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set_title("p99 vs throughput — closed loop, a point per concurrency (labels: callers); lower right is better")
    fig.tight_layout()
    return fig


CDF_PERCENTILES = np.concatenate([np.linspace(0, 99, 199), 100 - np.logspace(0, -3, 40)[1:]])


def cdfs(agg: pd.DataFrame) -> Figure | None:
    """A panel per design: the latency CDF of all its requests at each concurrency (closed loop, merged
    histograms), a line per level coloured from few callers (light) to many (dark)."""
    data = _closed(agg)
    data = data[data["histogram"].notna() & (data["requests_ok"].fillna(0) > 0)]
    if data.empty:
        return None
    designs = sorted(set(data["series"]))
    levels = sorted({float(c) for c in data["total_callers"]})
    cmap = matplotlib.colormaps["viridis"]
    shade = {
        c: cmap(0.85 - 0.75 * i / (len(levels) - 1)) if len(levels) > 1 else cmap(0.35) for i, c in enumerate(levels)
    }
    columns = min(3, len(designs))
    rows = -(-len(designs) // columns)
    fig = _figure(5.2 * columns, 3.6 * rows + 1.2)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)).ravel()
    for ax, series in zip(axes, designs, strict=False):
        g = data[data["series"] == series].sort_values(["total_callers", "processes"])
        for _, r in g.iterrows():
            h = hdr.decode(r["histogram"])
            values = np.array([h.get_value_at_percentile(q) for q in CDF_PERCENTILES]) / 1e3
            style = "-" if r["processes"] == 1 else "--"
            ax.plot(values, CDF_PERCENTILES / 100, color=shade[float(r["total_callers"])], linestyle=style,
                    drawstyle="steps-post")  # fmt: skip
        ax.set_title(role_label(series, g) + ("" if g["clean"].all() else " (not clean)"), fontsize=10)
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[len(designs) :]:
        ax.set_visible(False)
    for ax in axes[::columns]:
        ax.set_ylabel("share of requests at or below")
    for i, ax in enumerate(axes[: len(designs)]):
        if i + columns >= len(designs):  # no panel below it: it carries the x axis
            ax.set_xlabel("latency (ms, log scale)")
            ax.xaxis.set_tick_params(labelbottom=True)
    log_axis(axes[0], which="x")
    axes[0].set_ylim(0, 1.01)
    handles = [Line2D([], [], color=shade[c], label=f"{c:g} callers") for c in levels]
    if (data["processes"] > 1).any():
        handles.append(Line2D([], [], color="grey", linestyle="--", label="> 1 client process"))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(6, len(handles)),
               frameon=False)  # fmt: skip
    fig.suptitle("Latency CDF per design — closed loop, every request of a point (merged histograms)")
    fig.tight_layout()
    return fig


def spectrum(agg: pd.DataFrame, concurrency: int, palette: dict[str, str]) -> Figure | None:
    data = _closed(agg)
    data = data[(data["concurrency"] == concurrency) & data["safe"] & data["clean"] & data["histogram"].notna()]
    if data.empty:
        return None
    fractions = 1 - np.logspace(0, -SPECTRUM_NINES, 400)  # 0 .. 99.99%
    fig = _figure(12, 5.5)
    ax = fig.subplots()
    for _, r in data.sort_values(["series", "processes"]).iterrows():
        h = hdr.decode(r["histogram"])
        shown = fractions[fractions <= 1 - 1 / h.get_total_count()]  # no percentile finer than the sample
        values = np.array([h.get_value_at_percentile(100 * f) for f in shown]) / 1e3
        label = role_label(r["series"], data[data["series"] == r["series"]])
        label += f" p={r['processes']:g}" if r["processes"] > 1 else ""
        label += f" ({h.get_total_count():,} requests)"
        style = "-" if r["processes"] == 1 else "--"
        ax.plot(1 / (1 - shown), values, color=palette[r["series"]], linestyle=style, label=label)
    ax.set_xscale("log")
    log_axis(ax)
    ticks = [10.0**k for k in range(SPECTRUM_NINES + 1)]
    ax.xaxis.set_major_locator(FixedLocator([1, 2, *ticks[1:]]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * (1 - 1 / v):.{max(0, len(str(int(v))) - 3)}f}%"))
    ax.set_xlim(1, ticks[-1])
    ax.set_xlabel("percentile (axis: 1 / (1 - p)); each line stops at 1 / its request count")
    ax.set_ylabel("latency (ms, log scale)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set_title(f"Latency by percentile at concurrency {concurrency} per process — safe strategies, closed loop")
    fig.tight_layout()
    return fig


VIOLATION_COLOR, CLEAN_COLOR = "#d6604d", "#1a9850"


def nothing_failed(by_series: pd.DataFrame) -> bool:
    """Every series clean, no failed request and no violation anywhere: a correctness figure would be an
    empty axis saying "clean" (a starved series fails nothing, yet its verdict is worth the figure)."""
    failed = by_series["requests_failed"].fillna(0).sum() + by_series["violations"].fillna(0).sum()
    errors = any(sum(e.values()) for e in by_series["errors"] if isinstance(e, dict))
    return bool(by_series["clean"].all() and failed == 0 and not errors)


def correctness(by_series: pd.DataFrame) -> Figure | None:
    """One row per series: failed requests as a share, stacked by error kind
    (every kind, thread crashes included), and the violations panel only when
    some series has violations.

    Colours mean error kinds here (not the series): the point is to see the
    negative control fail and everything else stay clean.
    """
    if by_series.empty or nothing_failed(by_series):
        return None
    data = by_series.sort_values("series", ascending=False)
    y = np.arange(len(data))
    total = (data["requests_ok"].fillna(0) + data["requests_failed"].fillna(0)).replace(0, np.nan)
    violations = data["violations"].fillna(0)
    kinds = sorted({k for e in data["errors"] for k in e}, key=lambda k: -sum(e.get(k, 0) for e in data["errors"]))
    kind_colors = matplotlib.colormaps["tab20"]
    show_violations = bool(violations.max() > 0)
    fig = _figure(13, 0.55 * len(data) + 2.5)
    axes = fig.subplots(1, 2, sharey=True) if show_violations else [fig.subplots()]
    ax_f = axes[0]
    left = np.zeros(len(data))
    for i, kind in enumerate(kinds):
        counts = np.array([e.get(kind, 0) for e in data["errors"]], dtype=float)
        share = np.nan_to_num(100 * counts / total.to_numpy())
        ax_f.barh(y, share, left=left, color=kind_colors(i % 20), label=f"{kind} ({int(counts.sum()):,})")
        left += share
    for i, (_, r) in enumerate(data.iterrows()):
        missed = r["clean"] and not r["safe"]  # the negative control did not fail: the checks missed it
        note = ("NOT CAUGHT: " if missed else "") + r["verdict_text"]
        color = VIOLATION_COLOR if missed else CLEAN_COLOR if r["clean"] else "dimgrey" if r["baseline"] else "black"
        ax_f.text(0.01, i, note if len(note) < 110 else note[:107] + "...", va="center", fontsize=8, color=color,
                  transform=ax_f.get_yaxis_transform())  # fmt: skip
    ax_f.set_ylim(-0.6, len(data) - 0.4)
    safe = data["safe"].tolist()
    role = [
        " (harness's ceiling)" if b else "" if ok else " (negative control)"
        for ok, b in zip(safe, data["baseline"], strict=True)
    ]
    labels = [s + r for s, r in zip(data["series"], role, strict=True)]
    ax_f.set_yticks(y, labels)
    for label, ok in zip(ax_f.get_yticklabels(), safe, strict=True):
        label.set_color("black" if ok else VIOLATION_COLOR)
    ax_f.set_xlim(0, 100)
    ax_f.set_xlabel("failed requests (% of requests), by error kind")
    ax_f.grid(True, axis="x", alpha=0.3)
    if kinds:
        ax_f.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False,
                    title="error kinds (total)")  # fmt: skip
    if show_violations:
        ax_v = axes[1]
        ax_v.barh(y, violations, color=VIOLATION_COLOR)
        for i, n in enumerate(violations):
            ax_v.text(0.01, i, f"{int(n):,} violations", va="center", fontsize=8,
                      color="black" if n else CLEAN_COLOR, transform=ax_v.get_yaxis_transform())  # fmt: skip
        ax_v.set_xscale("symlog", linthresh=1)
        ax_v.set_xlim(0, max(10, violations.max() * 10))
        ax_v.set_xlabel("correctness violations: duplicate + non-monotonic + mismatched (count, symlog)")
        ax_v.grid(True, axis="x", alpha=0.3)
    fig.suptitle("Correctness and errors per strategy: the unsafe negative control should fail, the rest stay clean")
    fig.tight_layout()
    return fig


def distance(agg: pd.DataFrame) -> Figure | None:
    """Requests/s against the round trip, one panel per load, a line per design; each design's bound
    (in flight / round trip) dashed in its colour. A bound in batches limits RPCs: those points are the
    hollow marks beside it."""
    data = agg[(agg["source"] == "tsobench") & ~agg["open_loop"] & agg["clean"] & (agg["rps"] > 0)].copy()
    # one x per distance, its points' median round trip: a loaded machine's noise moves no single point
    data["x"] = [round_trip_ms(r) for _, r in data.iterrows()]
    data = data[data["x"].notna()]
    data["x"] = data.groupby([distance_key(r) for _, r in data.iterrows()])["x"].transform("median")
    if data.empty:
        return None
    data["design"] = with_series(data, without=DISTANCE)["series"]
    data["load"] = [where(r) for _, r in data.iterrows()]
    loads = sorted(set(data["load"]), key=lambda w: (data.loc[data["load"] == w, "total_callers"].iloc[0], w))
    columns = min(len(loads), 3)
    rows = -(-len(loads) // columns)
    fig = _figure(6 * columns, 4.6 * rows + 1)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    colours = colors(sorted(set(data["design"])))
    marks = markers(sorted(set(data["design"])))
    span = np.geomspace(data["x"].min() * 0.8, data["x"].max() * 1.25, 50)
    for ax, load in zip(axes, loads, strict=False):
        for design, g in data[data["load"] == load].groupby("design", sort=True):
            g = g.sort_values("x")
            color, marker = colours[design], marks[design]
            ax.plot(g["x"], g["rps"], color=color, marker=marker, label=design)
            bound = next((b for b in map(bound_of, (r for _, r in g.iterrows())) if b is not None), None)
            if bound is None:
                continue
            ax.plot(span, bound.in_flight / (span / 1e3), color=color, linestyle="--", linewidth=1, alpha=0.7)
            if bound.unit == "batches":
                rpcs = [b.achieved if (b := bound_of(r)) else np.nan for _, r in g.iterrows()]
                ax.plot(g["x"], rpcs, color=color, marker=marker, markerfacecolor="none", linestyle=":")
        ax.set_title(load)
        ax.set_xlabel("round trip, ms (log; measured before the load, median of the distance's points)")
        log_axis(ax, which="x")
        log_axis(ax, _si)
        ax.set_ylabel("requests/s (log)")
    for ax in axes[len(loads) :]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colours[d], marker=marks[d], label=d) for d in sorted(colours)]
    handles += [
        Line2D([], [], color="grey", linestyle="--", label="its bound: in flight / round trip"),
        Line2D([], [], color="grey", marker="o", markerfacecolor="none", linestyle=":",
               label="RPCs/s of a design bounded in batches"),
    ]  # fmt: skip
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)
    fig.suptitle("Throughput against round trip, closed loop: how close each design comes to its bound")
    fig.tight_layout()
    return fig
