"""``tsobench report``: results into report.md, a self-contained report.html and PNGs.

The report is built once as a list of blocks (headings, text, tables, figures,
code) and rendered twice, to Markdown and to HTML, so the two never drift.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from tsobench.bench.analysis import plots, recovery_report
from tsobench.bench.analysis.aggregate import per_series, repeats, where
from tsobench.bench.analysis.distance import distance_key, round_trip_ms
from tsobench.bench.analysis.findings import Findings, find
from tsobench.bench.analysis.loader import ENV_FIELDS, RECORDS, PathLike, Skipped, load, skipped
from tsobench.bench.analysis.usl import SeriesFit, fit_cells, fit_series, littles_law
from tsobench.bench.measure.fairness import LITTLES_LAW_TOLERANCE
from tsobench.bench.model.verdict import error_list
from tsobench.files import write_atomically

REPORT_DIR = "report"
COMPARED_ENV = ("python", "grpcio", "protobuf", "cpu_model", "cpu_count")  # what changes the numbers


# --- blocks -----------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    wrap: bool = False  # its words wrap to the page (the findings); else a wide table scrolls in its own box


@dataclass(frozen=True)
class Image:
    name: str  # the PNG's file name
    caption: str
    data: bytes


@dataclass(frozen=True)
class Code:
    lines: tuple[str, ...]


Block = Heading | Text | Table | Image | Code


def to_markdown(blocks: Sequence[Block]) -> str:
    """Markdown with text from results files escaped as the HTML escapes it:
    no raw HTML from a file reaches a Markdown viewer."""
    out: list[str] = []
    for b in blocks:
        match b:
            case Heading(text, level):
                out.append(f"{'#' * level} {_md(text)}")
            case Text(text):
                out.append(_md_inline(text))
            case Table(header, rows):
                cells = [header, tuple("---" for _ in header), *rows]
                out.append("\n".join("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in cells))
            case Image(name, caption, _):
                out.append(f"![{_md(caption)}]({name})\n\n*{_md(caption)}*")
            case Code(lines):
                fence = "`" * max(3, 1 + max((len(r) for line in lines for r in re.findall("`+", line)), default=0))
                out.append(f"{fence}\n" + "\n".join(lines) + f"\n{fence}")  # code is shown literally
    return "\n\n".join(out) + "\n"


def _md(text: str) -> str:
    """HTML-escaped, and Markdown's own punctuation escaped."""
    return re.sub(r"([\\`*_\[\]])", r"\\\1", html.escape(text, quote=False))


def _md_cell(text: str) -> str:
    return _md(text).replace("|", r"\|")


def _md_inline(text: str) -> str:
    """Text whose `code` spans stay code (shown literally); the rest escaped.
    With unbalanced backticks everything is escaped."""
    parts = text.split("`")
    if len(parts) % 2 == 0:
        return _md(text)
    return "".join(f"`{p}`" if i % 2 else _md(p) for i, p in enumerate(parts))


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1300px; margin: 2em auto; padding: 0 1em; color: #222;
       box-sizing: border-box; overflow-wrap: break-word; }
.table { overflow-x: auto; width: fit-content; max-width: 100%; margin: 1em 0; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; white-space: nowrap; }
td.num { text-align: right; } td:last-child { white-space: normal; min-width: 18em; }
.table.wrap td { white-space: normal; min-width: 6em; } .table.wrap td.num { white-space: nowrap; min-width: 0; }
.table.wrap table { width: 100%; }
th { background: #f3f3f3; white-space: normal; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; } figcaption { font-style: italic; color: #555; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; max-width: 100%; white-space: pre; }
"""


def to_html(blocks: Sequence[Block], title: str) -> str:
    """One file: the PNGs are embedded as data URIs."""

    def e(text: str) -> str:
        return html.escape(text, quote=False)

    out = [f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{e(title)}</title>", f"<style>{STYLE}</style>"]
    out.append("</head><body>")
    for b in blocks:
        match b:
            case Heading(text, level):
                out.append(f"<h{level}>{e(text)}</h{level}>")
            case Text(text):
                out.append(f"<p>{_inline(text)}</p>")
            case Table(header, rows, wrap):
                head = "".join(f"<th>{e(h)}</th>" for h in header)
                body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
                table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                # a wide table scrolls in its own box, its cells do not wrap; the findings' words wrap
                out.append(f"<div class='table{' wrap' if wrap else ''}'>{table}</div>")
            case Image(_, caption, data):
                uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
                img = f"<img src='{uri}' alt='{html.escape(caption)}'>"
                out.append(f"<figure>{img}<figcaption>{e(caption)}</figcaption></figure>")
            case Code(lines):
                out.append(f"<pre>{e(chr(10).join(lines))}</pre>")
    out.append("</body></html>\n")
    return "\n".join(out)


NUMBER = re.compile(r"^(-|[-+]?[\d,.]+( \[.*\])?( \(.*\))?|[\d.]+x( \[.*\])?)$")  # "1,234 [1,100, 1,300]", "-"


def _cell(text: str) -> str:
    """A table cell; numbers (with their interval) right-aligned so their digits line up, words left."""
    cls = " class='num'" if NUMBER.match(text) else ""
    return f"<td{cls}>{html.escape(text, quote=False)}</td>"


def _inline(text: str) -> str:
    """The little Markdown the text blocks use: `code` spans."""
    parts = html.escape(text, quote=False).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


# --- numbers ----------------------------------------------------------------


def _num(value: float, digits: int = 0, scale: float = 1.0) -> str:
    if value is None or pd.isna(value):
        return "-"
    if np.isinf(value):
        return "∞"
    return f"{value / scale:,.{digits}f}"


def _int(value: float) -> str:
    return _num(value, 0)


def _flag(value: object) -> str:
    return {True: "yes", False: "no"}.get(value, "-") if isinstance(value, bool) else "-"


# --- sections ---------------------------------------------------------------


def runs_cell(r: pd.Series) -> str:
    """How many runs a point has, and what its interval was taken from: ``3``, ``1 (10 batches)``,
    ``1 (5 intervals, steadiness)``."""
    samples = r["samples"].tps
    if samples.source == "batches":
        return f"1 ({len(samples)} batches)"
    if samples.source == "steadiness":
        return f"1 ({len(samples)} intervals, steadiness)"
    return str(r["runs"])


def verdict_cell(r: pd.Series) -> str:
    """The verdict in a word; the details are in the correctness table."""
    if r["clean"]:
        return "clean"
    return r["verdict"] + (" (control)" if r["negative_control"] else " (harness)" if r["baseline"] else "")


def config_table(agg: pd.DataFrame) -> Table:
    """Per point: the medians of its samples with their 95 % intervals, and what they were taken from."""
    header = (
        "series",
        "load",
        "RTT ms",
        "runs",
        "ts/s [95 % CI]",
        "p50 ms",
        "p99 ms [95 % CI]",
        "CPU ms / 1k ts",
        "server RPCs / ts",
        "Jain",
        "starved",
        "harness-bound",
        "verdict",
    )
    rows = []
    for _, r in agg.iterrows():
        rtt = round_trip_ms(r)
        rows.append(
            (
                r["series"],
                where(r),
                "-" if rtt is None else f"{rtt:.2f}",
                runs_cell(r),
                r["tps_est"].format(",.0f"),
                _num(r["p50_us"], 2, 1e3),
                r["p99_est"].format(".2f", 1e-3),
                _num(r["cpu_per_1k_ts"], 0),
                _num(r["rpcs_per_ts"], 3),
                _num(r["jain"], 2),
                _int(r["starved_callers"]),
                _flag(r["harness_bound"]),
                verdict_cell(r),
            )
        )
    return Table(header, tuple(rows))


def fit_table(fits: Sequence[SeriesFit]) -> Table:
    header = ("series", "levels", "σ (contention)", "κ (crosstalk)", "λ (ts/s per caller)", "N*", "peak ts/s", "R²")
    rows = []
    for s in fits:
        if s.fit is None:
            rows.append((s.series, str(s.levels), s.no_ceiling_because, *["-"] * 5))
        else:
            c = fit_cells(s.fit)
            rows.append((s.series, str(s.levels), c["sigma"], c["kappa"], c["lambda"], c["n_star"], c["peak"], c["r2"]))
    return Table(header, tuple(rows))


def correctness_table(series: pd.DataFrame) -> Table:
    header = (
        "series",
        "runs",
        "requests ok",
        "failed",
        "duplicates",
        "non-monotonic",
        "mismatched",
        "errors",
        "verdict",
    )
    rows = []
    for _, r in series.iterrows():
        errors = error_list(r["errors"])
        rows.append(
            (
                r["series"],
                str(r["runs"]),
                _int(r["requests_ok"]),
                _int(r["requests_failed"]),
                _int(r["duplicates"]),
                _int(r["non_monotonic"]),
                _int(r["mismatched"]),
                errors,
                r["verdict_text"],
            )
        )
    return Table(header, tuple(rows))


def littles_section(df: pd.DataFrame) -> list[Block]:
    check = littles_law(df)
    if check.empty:
        return [Text("No clean closed-loop runs: nothing to check.")]
    bad = check[~check["ok"]]
    summary = (
        f"Closed loop, throughput × mean latency should equal the number of callers (L = λW). "
        f"Ratio over {len(check)} runs: median {check['ratio'].median():.3f}, "
        f"range {check['ratio'].min():.3f}–{check['ratio'].max():.3f}. "
    )
    if bad.empty:
        summary += f"All within ±{LITTLES_LAW_TOLERANCE:.0%}: the throughput and latency figures agree."
    else:
        summary += (
            f"{len(bad)} run(s) off by more than ±{LITTLES_LAW_TOLERANCE:.0%} (below 1: callers spend time "
            "outside the timed request, e.g. client CPU; above 1: the figures disagree)."
        )
    rows = tuple(
        (
            f"{r['strategy']}/{r['api']}",
            _int(r["total_callers"]),
            _int(r["throughput_rps"]),
            _num(r["mean_us"] / 1e3, 3),  # ms, the one unit of latency in human output
            _num(r["implied_callers"], 2),
            f"{r['ratio']:.3f}",
        )
        for _, r in check.sort_values(["strategy", "api", "total_callers"]).iterrows()
    )
    header = ("strategy/api", "callers", "req/s", "mean ms", "req/s × mean", "ratio")
    return [Text(summary), Table(header, rows)]


def environment_section(df: pd.DataFrame) -> list[Block]:
    env = df[list(ENV_FIELDS)].astype(object).where(df[list(ENV_FIELDS)].notna(), "-").astype(str)
    groups = env.value_counts(sort=False).reset_index(name="runs")
    rows = tuple(tuple(str(v) for v in r) for r in groups.itertuples(index=False))
    blocks: list[Block] = [Table((*ENV_FIELDS, "runs"), rows)]
    differ = [c for c in COMPARED_ENV if df[c].nunique() > 1]  # missing values are not a difference
    if df["git_commit"].dropna().str.removesuffix("-dirty").nunique() > 1:
        differ.append("git_commit")
    if differ:
        warning = f"Warning: the runs differ in {', '.join(differ)}; compare across rows with care."
        blocks.insert(0, Text(warning))
    return blocks


def commands_section(df: pd.DataFrame) -> list[Block]:
    ordered = df.sort_values("started_at", na_position="last")
    commands = tuple(dict.fromkeys(ordered["command"].dropna()))
    blocks: list[Block] = []
    if commands:
        blocks.append(Code(commands))
    bench_files = sorted(set(df.loc[df["source"] == "pytest-benchmark", "path"].dropna()))
    if bench_files:
        files = ", ".join(bench_files)
        blocks.append(Text(f"pytest-benchmark data (its JSON does not record the command): {files}"))
    return blocks or [Text("No command recorded.")]


def time_and_faults(runs: Sequence[recovery_report.Run]) -> list[Block]:
    """timeline.png, and with faults the recovery table (which design recovers fastest is a finding)."""
    fig = recovery_report.figure(runs)
    if fig is None and not runs:
        return [Text("No results with a timeline (`--interval`): no timeline plot.")]
    faults = any(r.faults for r in runs)
    caption = "Timestamps/s and p99 per interval, per strategy and API" + ("; fault spans shaded" if faults else "")
    blocks: list[Block] = [
        Image("timeline.png", caption, plots.png(fig))
        if fig is not None
        else Text(
            "Every run measured a single interval (its `--interval` as long as its window): a timeline of one "
            "value per run says nothing over time, so none is drawn (a shorter `--interval`, e.g. 250ms, draws one)."
        )
    ]
    header, rows = recovery_report.recovery_table(runs)
    if rows:
        blocks.append(
            Text(
                "Recovery per fault (medians over runs): failed requests from the fault's start until "
                "the recovery; first success: from the fault's end (a kill's end: the restarted server "
                "listens) to the first answer after its last failure; back to baseline: to the first 100 ms "
                "with no failure and a p99 within 2x of the p99 before the fault."
            )
        )
        blocks.append(Table(header, rows))
    return blocks


def distance_section(agg: pd.DataFrame) -> list[Block]:
    """distance.png when the points were measured at more than one distance; else why not."""
    keys = {distance_key(r) for _, r in agg[agg["source"] == "tsobench"].iterrows()}
    known = keys - {"unknown distance"}
    if len(known) < 2:
        where_ = "an unrecorded distance" if not known else f"one distance ({next(iter(known))})"
        return [
            Text(
                f"Every point was measured at {where_}: no throughput-against-round-trip plot (sweep "
                "`--server-rtt-ms 0,1,2` to draw one). The findings place each design against its bound."
            )
        ]
    fig = plots.distance(agg)
    if fig is None:
        return [Text("No clean closed-loop point with a known round trip: no throughput-against-round-trip plot.")]
    caption = (
        "Requests/s against the round trip measured before the load, per design and load; dashed: each design's "
        "bound (in flight / round trip); for a bound in batches, the hollow marks are RPCs/s, which it bounds"
    )
    return [Image("distance.png", caption, plots.png(fig))]


def default_concurrency(agg: pd.DataFrame) -> int | None:
    """The per-process concurrency measured for the most safe series (ties: the larger)."""
    data = agg[~agg["open_loop"] & agg["safe"] & agg["clean"] & agg["histogram"].notna()]
    if data.empty:
        return None
    counts = data.groupby("concurrency")["series"].nunique()
    return int(max(counts.index, key=lambda c: (counts[c], c)))


# --- the report -------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    blocks: tuple[Block, ...]
    title: str
    findings: Findings
    points: pd.DataFrame  # one row per point (``aggregate.repeats``): what points.csv holds

    @property
    def images(self) -> tuple[Image, ...]:
        return tuple(b for b in self.blocks if isinstance(b, Image))


def build(df: pd.DataFrame, concurrency: int | None = None, sources: Iterable[PathLike] = ()) -> Report:
    """The whole report from a loaded DataFrame (see ``loader.load``): findings first."""
    agg = repeats(df)
    found = find(df, agg, skipped(df))
    series = per_series(df)
    fits = fit_series(df)
    fitted = any(f.fit is not None for f in fits)
    palette = plots.colors(sorted(set(agg["series"])))
    shapes = plots.markers(sorted(set(agg["series"])))
    available = sorted({int(c) for c in agg.loc[~agg["open_loop"], "concurrency"].dropna()})
    if concurrency is not None and concurrency not in available:
        raise ValueError(f"no closed-loop runs at concurrency {concurrency}; measured: {available or 'none'}")
    spectrum_c = concurrency if concurrency is not None else default_concurrency(agg)

    def figure(name: str, fig, caption: str, missing: str) -> Block:
        return Image(name, caption, plots.png(fig)) if fig is not None else Text(missing)

    title = "tsobench report"
    n_bench = int((df["source"] == "pytest-benchmark").sum())
    blocks: list[Block] = [
        Heading(title, 1),
        Text(
            f"{len(df) - n_bench} tsobench runs"
            + (f" and {n_bench} pytest-benchmark entries" if n_bench else "")
            + f" from {df['path'].nunique()} files ({', '.join(map(str, sources))}); "
            f"{len(agg)} configurations, {len(series)} strategy/API series. "
            f"Generated {datetime.now(UTC).isoformat(timespec='seconds')}."
        ),
        *findings_section(found),
        Heading("How to read the rest"),
        Text(
            "A point is one configuration (every option but run length, seed and recording); its repeats fold "
            "into one row with the worst verdict any of them got, as `tsobench run` stored it. In the tables, ts/s "
            "and p99 are the medians of a point's samples with their 95 % bootstrap intervals: the samples are its "
            "repeats, or, with one run, that run's measured intervals (the runs column says how many), which show "
            "how steady the run was, not how much a rerun would differ. The plots show each point's own figures "
            "(the median of its repeats' throughput; percentiles of all its requests, from merged HDR histograms, "
            "never averaged), with the min–max of the repeats as bars. Concurrency on the x axes is the total "
            "number of callers (concurrency × processes). RTT is the round trip measured before the load."
        ),
        Heading("Throughput"),
        figure(
            "throughput.png",
            plots.throughput(agg, fits, palette, shapes),
            "Throughput vs concurrency (closed loop)" + (" with the fitted USL curves" if fitted else ""),
            "No closed-loop runs with throughput: no throughput plot.",
        ),
        Heading("Latency"),
        figure(
            "latency.png",
            plots.latency(agg, palette, shapes),
            "p50 and p99 latency vs concurrency, log scale",
            "No closed-loop runs with throughput: no latency plot.",
        ),
        Heading("Latency vs throughput (closed loop)"),
        figure(
            "tradeoff.png",
            plots.closed_tradeoff(agg, palette, shapes),
            "p99 against throughput, a point per concurrency level (closed loop)",
            "No closed-loop runs with answers: no latency-vs-throughput plot.",
        ),
        Heading("Latency CDF per design"),
        figure(
            "latency_cdf.png",
            plots.cdfs(agg),
            "Share of requests at or below each latency, a line per concurrency level, a panel per design",
            "No closed-loop runs with histograms: no latency CDFs.",
        ),
        Heading("Latency vs throughput (open loop)"),
        figure(
            "hockey_stick.png",
            plots.hockey_stick(agg, palette, shapes),
            "Latency vs achieved throughput for open-loop rate sweeps",
            "No open-loop runs (`tsobench run --rate`) in these results: no latency-vs-throughput plot.",
        ),
        Heading(f"Latency percentile spectrum at concurrency {spectrum_c}"),
        figure(
            "percentile_spectrum.png",
            plots.spectrum(agg, spectrum_c, palette) if spectrum_c is not None else None,
            f"Latency by percentile up to 99.99% at concurrency {spectrum_c} per process (merged histograms)",
            "No safe closed-loop runs with histograms: no percentile spectrum.",
        ),
        Heading("Throughput against round trip"),
        *distance_section(agg),
        Heading("Fairness"),
        figure(
            "fairness.png",
            plots.fairness(agg, palette, shapes),
            "Completions per caller in the measured window: range (min to max) and Jain's index; the negative "
            "control is drawn on the left only",
            "Fairness is not recorded in these results (older files): no fairness plot.",
        ),
        Heading("Correctness and errors"),
        figure(
            "correctness.png",
            plots.correctness(series),
            "Failed requests and correctness violations per strategy",
            "No request failed and no correctness violation was found in any run: nothing to draw "
            "(each strategy's verdict is in the table below).",
        ),
        correctness_table(series),
        Heading("Time and faults"),
        *time_and_faults(recovery_report.runs(df)),
        Heading("Results per configuration"),
        Text(
            "CPU ms / 1k ts: client CPU (all processes) per thousand timestamps. "
            "Server RPCs / ts: below 1 means requests were batched (count > 1). "
            "p50 comes from the merged histograms of the repeats. Verdict: the worst of the point's runs "
            "(details in the correctness table)."
        ),
        config_table(agg),
        Heading("Scalability: Universal Scalability Law fits"),
        Text(
            "X(N) = λN / (1 + σ(N−1) + κN(N−1)), fitted to every clean closed-loop run (± one standard error). "
            "N* = √((1−σ)/κ) is where throughput peaks; beyond the largest N measured it is an extrapolation."
        ),
        fit_table(fits),
        Heading("Sanity check: Little's law"),
        *littles_section(df),
        Heading("Environment"),
        *environment_section(df),
        Heading("Commands that produced the data"),
        *commands_section(df),
    ]
    return Report(tuple(blocks), title, found, agg)


def findings_section(found: Findings) -> list[Block]:
    blocks: list[Block] = [Heading("Findings"), *(Text(t) for t in found.summary)]
    if found.rows:
        blocks.append(Table(found.header, found.rows, wrap=True))
    for pairs in found.pairs:  # every design against every other
        blocks += [Heading(pairs.title, 3), Table(pairs.header, pairs.rows, wrap=True)]
    blocks += [Text(n) for n in found.notes]
    blocks += [Heading("Caveats", 3), *(Text(c) for c in found.caveats)]
    return blocks


def default_dir(paths: Sequence[PathLike]) -> Path:
    """``<results folder>/report/``: next to the first folder (or file) given."""
    first = Path(paths[0])
    return (first if first.is_dir() else first.parent) / REPORT_DIR


@dataclass(frozen=True)
class Written:
    paths: list[Path]  # report.md, report.html, the PNGs, runs.csv, points.csv
    skipped: list[Skipped]  # files that could not be read (left out of the report)
    findings: Findings

    @property
    def html(self) -> Path:
        return next(p for p in self.paths if p.suffix == ".html")


def write_report(paths: Sequence[PathLike], out_dir: PathLike | None = None, concurrency: int | None = None) -> Written:
    """Load, build and write the report; unreadable files are left out and listed."""
    if not paths:
        raise ValueError("give at least one results file or folder")
    df = load(paths)
    report = build(df, concurrency, sources=paths)
    out = Path(out_dir) if out_dir is not None else default_dir(paths)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for image in report.images:
        written.append(write_atomically(out / image.name, image.data))
    written.append(write_atomically(out / "report.md", to_markdown(report.blocks).encode()))
    written.append(write_atomically(out / "report.html", to_html(report.blocks, report.title).encode()))
    written.append(write_atomically(out / "runs.csv", runs_csv(df).encode()))
    written.append(write_atomically(out / "points.csv", points_csv(report.points).encode()))
    return Written(written, skipped(df), report.findings)


def runs_csv(df: pd.DataFrame) -> str:
    """One row per run, the loader's columns (``strategy``, ``throughput_tps``, ``p99_us``, ...) but the
    recorded dicts and lists (histograms, config, timeline), which a spreadsheet cannot hold."""
    return df[[c for c in df.columns if c not in RECORDS]].to_csv(index=False)


POINT_ESTIMATES = {"tps_est": "tps", "p99_est": "p99_us"}  # PointEstimates fields -> the CSV's column stem


def points_csv(agg: pd.DataFrame) -> str:
    """One row per point: its axes, runs, verdict, the medians with their min-max spread and the
    confidence interval of throughput and p99 (``tps_low``/``tps_high``, ``p99_us_low``/``p99_us_high``;
    empty where the samples were too few to give one); no histograms, no sample lists."""
    rows = agg.drop(columns=[c for c in ("samples", "histogram", "tps_est", "p99_est") if c in agg.columns])
    for column, stem in POINT_ESTIMATES.items():
        if column in agg.columns:
            rows[f"{stem}_low"] = [e.low for e in agg[column]]
            rows[f"{stem}_high"] = [e.high for e in agg[column]]
            rows[f"{stem}_confidence"] = [e.confidence if e.known else None for e in agg[column]]
    return rows.to_csv(index=False)
