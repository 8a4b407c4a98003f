"""Time and faults in the report: ``timeline.png`` (timestamps/s and p99 per interval,
fault spans shaded, one panel per strategy x API), the recovery table and the
finding on which design recovers fastest, from the results' ``timeline`` and ``faults``
as the loader kept them (no file is read again).

Why a design recovers as it does is the strategy's own knowledge, recorded in each
results file (``strategy.recovery`` per fault kind, ``strategy.fewest_failures``):
a plugin that states it is explained like a built-in, and a file without it gets
no explanation rather than a wrong one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from tsobench.bench.analysis.plots import log_axis

SAME_S = 0.05  # designs whose first successes are this close recovered alike ...
BACKOFF_S = 0.5  # ... or this close after failures: a reconnect waits out a backoff of up to 500 ms, by chance


@dataclass(frozen=True)
class Run:
    """One run's timeline and faults, and what its strategy says of its recovery."""

    strategy: str
    api: str
    concurrency: int
    processes: int
    interval_s: float
    measured_s: float  # the measured window: where the last interval ends
    timeline: tuple[dict[str, Any], ...]
    faults: tuple[dict[str, Any], ...]
    clean: bool
    safe: bool = True  # False: the negative control, whose failing is what it is for
    recovery: Mapping[str, str] = field(default_factory=dict, hash=False)  # fault kind: why it recovers so
    fewest_failures: str | None = None

    @property
    def series(self) -> str:
        return f"{self.strategy}/{self.api}"

    @property
    def callers(self) -> int:
        return self.concurrency * self.processes

    def label(self, faults: bool) -> str:
        """``c=64``; with ``faults`` (some run of the figure had one) its faults first: ``kill@1s:200ms, c=4``."""
        if not faults:
            return f"c={self.callers}"
        return f"{' + '.join(f['spec'] for f in self.faults) or 'no fault'}, c={self.callers}"


def runs(df: pd.DataFrame) -> list[Run]:
    """The runs of a loaded DataFrame (``loader.load``) that carry a timeline, from what the loader kept."""
    out = []
    for _, r in df[df["source"] == "tsobench"].iterrows():
        timeline = r["timeline"] if isinstance(r["timeline"], list) else []
        measured = tuple(t for t in timeline if not t.get("warmup"))
        if not measured:
            continue  # written before timelines existed
        record = r["strategy_record"] if isinstance(r["strategy_record"], Mapping) else {}
        interval = float(r["interval_s"]) if pd.notna(r["interval_s"]) else 1.0
        last = measured[-1]["t_s"]
        window = float(r["measured_s"]) if pd.notna(r["measured_s"]) and r["measured_s"] > last else last + interval
        out.append(
            Run(
                str(r["strategy"]),
                str(r["api"]),
                int(r["concurrency"]),
                int(r["processes"]),
                interval,
                window,
                measured,
                tuple(r["fault_outcomes"] or ()),
                bool(r["clean"]),
                bool(r["safe"]),
                dict(record.get("recovery") or {}),
                record.get("fewest_failures"),
            )
        )
    return sorted(out, key=lambda r: (r.strategy, r.api, r.callers, r.label(True)))


# --- the figure -------------------------------------------------------------


def figure(data: Sequence[Run]) -> Figure | None:
    """Per strategy x API, timestamps/s above and p99 below, one line per run. Each run's
    faults are shaded lightly across both and drawn in its own lane along the top, where
    the wait from a fault's end to the first success is hatched."""
    if not data or all(len(r.timeline) < 2 for r in data):
        return None  # one interval a run: a flat line across the panel, which says nothing over time
    series = sorted({r.series for r in data})
    faults = any(r.faults for r in data)
    labels = list(dict.fromkeys(r.label(faults) for r in sorted(data, key=lambda r: (r.callers, r.label(faults)))))
    cmap = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    colour = {label: cmap(i % cmap.N) for i, label in enumerate(labels)}
    columns = 2 if len(series) > 1 else 1
    rows = -(-len(series) // columns)
    height = 4.2 * rows + 1.0
    fig = Figure(figsize=(7 * columns, height))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows, columns, top=1 - 0.7 / height, bottom=0.6 / height, hspace=0.3, wspace=0.18)
    window = max(r.measured_s for r in data)  # the measured window, not the last interval's nominal end
    for i, name in enumerate(series):
        cell = grid[i // columns, i % columns].subgridspec(2, 1, hspace=0.05)
        ax_tps = fig.add_subplot(cell[0])
        ax_p99 = fig.add_subplot(cell[1], sharex=ax_tps)
        ax_tps.tick_params(labelbottom=False)
        ax_tps.set_xlim(0, window)
        for lane, run in enumerate(r for r in data if r.series == name):
            _draw(run, ax_tps, ax_p99, colour[run.label(faults)], lane, instant=window / 100)
        ax_tps.set_title(name + _state([r for r in data if r.series == name]))
        ax_tps.set_ylabel("thousand ts/s")
        ax_tps.set_ylim(0, ax_tps.get_ylim()[1] * 1.3)  # room for the fault lanes
        log_axis(ax_p99)
        ax_p99.set_ylabel("p99 ms (log)")
        ax_p99.set_xlabel("seconds from the measured window's start")
        for ax in (ax_tps, ax_p99):
            ax.grid(True, which="major", alpha=0.3)
    handles: list[Any] = [Line2D([], [], color=colour[label], label=label) for label in labels]
    if faults:  # the fault marks are explained only where a fault ran
        handles += [
            Patch(facecolor="grey", alpha=0.8, label="fault (a kill: until the server listens again)"),
            Patch(facecolor="none", edgecolor="grey", hatch="////", label="then until the first success"),
        ]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)
    fig.suptitle("Timestamps/s and p99 latency per interval (answered requests; gaps: no answer)", y=1 - 0.15 / height)
    return fig


def _state(runs: Sequence[Run]) -> str:
    """A panel's title note: the negative control failing is what it is for; anything else not clean is news."""
    if all(r.clean for r in runs):
        return ""
    return " (negative control)" if not any(r.safe for r in runs) else " (NOT CLEAN)"


LANE = 0.06  # height of a run's fault lane, as a fraction of the axes


def _draw(run: Run, ax_tps, ax_p99, colour, lane: int, instant: float) -> None:
    if len(run.timeline) == 1:  # beside runs with a timeline: its one value as a mark mid-window, not a line
        (e,) = run.timeline
        middle = min(e["t_s"] + run.interval_s, run.measured_s) / 2 + e["t_s"] / 2
        ax_tps.plot([middle], [e["tps"] / 1e3], color=colour, marker="o")
        if e["p99_us"] is not None:
            ax_p99.plot([middle], [e["p99_us"] / 1e3], color=colour, marker="o")
    else:
        t = [e["t_s"] for e in run.timeline]
        end = max(t[-1], min(t[-1] + run.interval_s, run.measured_s))  # a short last interval ends with the window
        x = np.array([*t, end])  # steps: each value holds for its interval
        tps = np.array([e["tps"] for e in run.timeline] + [run.timeline[-1]["tps"]]) / 1e3
        p99 = np.array([np.nan if e["p99_us"] is None else e["p99_us"] for e in run.timeline] + [np.nan]) / 1e3
        p99[-1] = p99[-2]
        ax_tps.step(x, tps, where="post", color=colour, linewidth=1.4)
        ax_p99.step(x, p99, where="post", color=colour, linewidth=1.4)
    top, bottom = 1 - lane * LANE, 1 - (lane + 1) * LANE + 0.01
    for f in run.faults:
        start, end = f["started_s"], max(f["ended_s"], f["started_s"] + instant)  # an abort is an instant
        for ax in (ax_tps, ax_p99):
            ax.axvspan(start, end, color=colour, alpha=0.08, linewidth=0)
        ax_tps.axvspan(start, end, bottom, top, color=colour, alpha=0.8, linewidth=0)
        if f["first_success_after_s"]:
            recovered = f["ended_s"] + f["first_success_after_s"]
            ax_tps.axvspan(end, recovered, bottom, top, facecolor="none", edgecolor=colour, hatch="////", linewidth=0)


# --- the recovery table and the finding ---------------------------------------


@dataclass(frozen=True)
class Recovery:
    """One strategy/API/concurrency's faults of one kind, over its runs."""

    strategy: str
    api: str
    callers: int
    kind: str
    faults: int
    recovered: int
    failed: float  # medians over the faults
    first_success_s: float | None
    baseline_s: float | None
    p99_during_us: float | None
    p99_before_us: float | None
    why: str | None = None  # the strategy's own sentence for this kind of fault (strategy.recovery)
    fewest_failures: str | None = None  # the strategy's own sentence for failing the fewest


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return median(known) if known else None


def recoveries(data: Sequence[Run]) -> list[Recovery]:
    groups: dict[tuple[str, str, int, str], list[dict[str, Any]]] = defaultdict(list)
    said: dict[tuple[str, str, int, str], Run] = {}
    for run in data:
        for f in run.faults:
            key = (run.strategy, run.api, run.concurrency * run.processes, f["kind"])
            groups[key].append(f)
            said.setdefault(key, run)
    # Kinds in the order the results first recorded them (runs hold their faults in time order): read
    # from the files, never from the live list of kinds.
    rank = {kind: i for i, kind in enumerate(dict.fromkeys(f["kind"] for run in data for f in run.faults))}
    return [
        Recovery(
            *key,
            faults=len(fs),
            recovered=sum(f["recovered"] for f in fs),
            failed=median(f["failed_requests"] for f in fs),
            first_success_s=_median([f["first_success_after_s"] for f in fs]),
            baseline_s=_median([f["time_to_baseline_s"] for f in fs]),
            p99_during_us=_median([f["p99_during_us"] for f in fs]),
            p99_before_us=_median([f["p99_before_us"] for f in fs]),
            why=said[key].recovery.get(key[3]),
            fewest_failures=said[key].fewest_failures,
        )
        for key, fs in sorted(groups.items(), key=lambda kv: (rank.get(kv[0][3], 99), kv[0]))
    ]


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e3:,.1f}"


def recovery_table(data: Sequence[Run]) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """(header, rows) of the recovery table: medians over the runs of each row."""
    header = (
        "fault",
        "strategy",
        "api",
        "callers",
        "recovered",
        "failed requests",
        "first success s",
        "back to baseline s",
        "p99 during ms",
        "p99 before ms",
    )
    rows = tuple(
        (
            r.kind,
            r.strategy,
            r.api,
            str(r.callers),
            f"{r.recovered}/{r.faults}",
            f"{r.failed:,.0f}",
            _s(r.first_success_s),
            _s(r.baseline_s),
            _ms(r.p99_during_us),
            _ms(r.p99_before_us),
        )
        for r in recoveries(data)
    )
    return header, rows


def recovery_finding(data: Sequence[Run]) -> str | None:
    """Which design recovers fastest from each kind of fault, and why (None without faults)."""
    by_kind: dict[str, list[Recovery]] = defaultdict(list)
    for r in recoveries(data):
        by_kind[r.kind].append(r)
    return " ".join(_finding(kind, group) for kind, group in by_kind.items()) or None


def _finding(kind: str, group: list[Recovery]) -> str:
    a = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} fault"
    done = sorted(
        ((r.first_success_s, r) for r in group if r.recovered == r.faults and r.first_success_s is not None),
        key=lambda pair: (pair[0], pair[1].failed),
    )
    if not done:
        return f"After {a}, no design recovered in every run."
    (fast, best), (slow, worst) = done[0], done[-1]
    fewest = min((r for _, r in done), key=lambda r: (r.failed, r.first_success_s))
    alike = slow - fast < (BACKOFF_S if any(r.failed for _, r in done) else SAME_S)
    why: str | None = None
    if alike:
        text = f"After {a}, every design answered again within {slow * 1e3:.0f} ms of its end"
        if not any(r.failed for _, r in done):
            text += " and none failed a request"
    else:
        text = (
            f"After {a}, {best.strategy}/{best.api} recovered fastest (first success "
            f"{fast:.2f} s after the fault's end, {best.failed:,.0f} failed requests; slowest "
            f"{worst.strategy}/{worst.api}, {slow:.2f} s)"
        )
        why = best.why
    if why:
        text += f": {why}"
    if fewest.failed < max(r.failed for _, r in done) and (alike or fewest is not best):
        text += f"; {fewest.strategy}/{fewest.api} failed the fewest requests ({fewest.failed:,.0f})"
        if fewest.fewest_failures:
            text += f", {fewest.fewest_failures}"
        if fewest.p99_during_us is not None:
            text += f" (p99 during {_ms(fewest.p99_during_us)} ms)"
    return text + "."
