"""Results files (and pytest-benchmark JSON) into one pandas DataFrame.

One row per run, flat columns, so a notebook can do its own analysis::

    from tsobench.bench.analysis.loader import load
    df = load(["results/my-sweep"])
    df.groupby(["strategy", "api", "concurrency"]).throughput_tps.median()

The columns come from the declarations, never from a list kept here: every run
option (``options.flatten``: nested ones flat, ``server_delay_ms``; options a
file predates at their default), every measured field (``results.columns``:
``latency_us.p99`` is ``p99_us``), then the few figures the analysis derives
(``DERIVED``). What makes two runs the same point is ``POINT``: the source and
every option of ``options.point_keys`` (all but run length, seed and recording).

Each file is read once: what the figures need later (its timeline, faults, the
strategy's record) is kept in the row. The verdict is the one the file stores
(``verdict.stored``). The analysis reads only results: a file written before
``strategy`` was recorded falls back to the name rules (``unsafe-shared`` is the
negative control, ``null`` the harness's ceiling), never to the live registry.

Latencies are in microseconds (``*_us``); histograms stay encoded strings so
percentiles of several runs can be computed by merging them
(``tsobench.bench.measure.latency.merge``), never by averaging percentiles.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import shlex
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from tsobench.bench.analysis import harness, validation
from tsobench.bench.measure import latency
from tsobench.bench.model import results
from tsobench.bench.model.config import RunConfig
from tsobench.bench.model.results import MEDIAN, SAME, SERVER_RPCS, SERVER_TIMESTAMPS, Role
from tsobench.bench.model.verdict import judge, stored
from tsobench.errors import one_line
from tsobench.options import Spec, flatten, point_keys, specs, word, written

PathLike = str | os.PathLike[str]
SKIP_DIRS = frozenset({"report"})  # our own output folder
SKIP_FILES = frozenset({"sweep.json", "slo.json"})  # manifests

BY_KEY: dict[str, Spec] = {s.key: s for s in specs(RunConfig)}
POINT = ("source", *point_keys(RunConfig))  # what makes two runs the same point (repeats fold into one row)
# The load axes: a series (one line in a plot, one USL fit) is a point without them. pool_size is one
# because its default follows the concurrency (min(concurrency, 8)).
LOAD = ("concurrency", "processes", "pool_size", "rate")
# The options that set the distance to the server (declared by the server's knobs): the throughput-vs-round-trip
# figure draws a series across them.
DISTANCE = tuple(k for k in ("server_rtt_ms", "server_rtt_jitter_ms") if k in BY_KEY)
SERIES = tuple(k for k in POINT if k not in LOAD)
BASELINE_MATCH = tuple(k for k in POINT if k != "strategy")  # a null run measures the harness at the same point
LATENCY_KEYS = tuple(typing.get_type_hints(results.LatencySummary))  # p50 ... mean: columns f"{k}_us"

IDENTITY = {"source": "text", "path": "text", "run_id": "text", "started_at": "text", "status": "text"}
CONFIG = {s.key: "text" if s.multiple else results.KIND_WORDS.get(s.kind, "text") for s in specs(RunConfig)}
MEASURED = {column: kind for column, (kind, _) in results.columns().items()}


class Derived(NamedTuple):
    """A column the analysis derives from a file (not a declared results field): its kind, what it is,
    and its role when repeats fold (``results.Role``; None: the aggregate folds it its own way)."""

    kind: str
    help: str
    role: Role | None = None


DERIVED: dict[str, Derived] = {  # column: its kind, what it is, its role in the aggregate
    "total_callers": Derived("int", "concurrency x processes", SAME),
    "open_loop": Derived("flag", "a --rate was given", SAME),
    "cpu_per_1k_ts": Derived("float", "client CPU ms per 1,000 timestamps", MEDIAN),
    "rpcs_per_ts": Derived("float", "server RPCs per timestamp (below 1: batched)", MEDIAN),
    "rtt_ms": Derived("float", "the round trip measured before the load, median (network.rtt_ms)", MEDIAN),
    "rtt_min_ms": Derived("float", "the same, the shortest"),
    "rtt_emulated_ms": Derived("float", "the embedded server's emulated round trip (network.emulated)", SAME),
    "loopback": Derived("flag", "the target was on this machine", SAME),
    "safe": Derived("flag", "False: the negative control", SAME),
    "baseline": Derived("flag", "the harness's own ceiling (null)", SAME),
    "reference": Derived("flag", "a production client, shown for reference, never ranked", SAME),
    "settings": Derived("text", "the options that matter to the strategy, as it says", SAME),
    "bound_in_flight": Derived("int", "requests or batches the strategy can have in flight per process", SAME),
    "bound_unit": Derived("text", "requests | batches", SAME),
    "bound_why": Derived("text", "the bound's mechanism, in words", SAME),
    "verdict": Derived("text", "the stored verdict (verdict.stored)"),
    "verdict_detail": Derived("text", "the numbers behind it"),
    "clean": Derived("flag", "verdict clean"),
    "dirty": Derived("flag", "not clean where clean was expected"),
    "negative_control": Derived("flag", "failing is what it is for"),
    "harness_bound": Derived("flag", "at least half of the null strategy's throughput at the same point"),
    "harness_ceiling_tps": Derived("float", "the null strategy's throughput at the same point"),
}
RECORDS = ("histogram", "histogram_uncorrected", "config", "strategy_record", "timeline", "fault_outcomes", "command")
ENV_FIELDS = ("python", "grpcio", "protobuf", "tsobench", "platform", "cpu_model", "cpu_count", "git_commit")

# Every column of the runs table and its kind: text, flag (True/False, or None when unknown),
# int (an integer when every run has it) or float. The order is the table's.
COLUMN_KINDS: dict[str, str] = {
    **IDENTITY,
    **CONFIG,
    **MEASURED,
    **{c: d.kind for c, d in DERIVED.items()},
    **dict.fromkeys(RECORDS, "text"),  # the recorded dicts and lists, kept for the figures (no re-reading)
    **{k: "int" if k == "cpu_count" else "text" for k in ENV_FIELDS},
}
COLUMNS = tuple(COLUMN_KINDS)
NUMERIC = tuple(c for c, k in COLUMN_KINDS.items() if k in ("int", "float"))
INTEGER = frozenset(c for c, k in COLUMN_KINDS.items() if k == "int")
# cells that must be a str (or None) and a bool (or None) for the table's group-bys and filters
TEXT = tuple(
    c for c, k in COLUMN_KINDS.items() if k == "text" and c not in (*RECORDS, *MEASURED, "settings")
)  # measured "text" columns are the recorded dicts (errors by kind)
FLAGS = tuple(c for c, k in COLUMN_KINDS.items() if k == "flag" and c != "open_loop")


@dataclass(frozen=True)
class Skipped:
    """A file that could not be read: left out of the analysis, never fatal."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.path}: {self.reason}"


def skipped(df: pd.DataFrame) -> list[Skipped]:
    """The files the loader left out (``df.attrs["skipped"]``)."""
    return list(df.attrs.get("skipped", []))


def load(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """Everything the paths hold: tsobench results and pytest-benchmark runs.

    The ``source`` column says which ("tsobench" or "pytest-benchmark"). Files
    that cannot be read are left out and listed by ``skipped(df)``.
    """
    files, bad = _json_files(paths)
    runs, bad_results = _results_rows(files)
    benchmarks, bad_benchmarks = _benchmark_rows(files)
    return _frame_of(
        [runs, benchmarks], [*bad, *bad_results, *bad_benchmarks], "tsobench results or pytest-benchmark files", paths
    )


def load_results(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """tsobench results files, from files or folders (searched recursively).

    In folders, JSON that is not a results file (sweep manifests, other JSON,
    the ``report/`` folder) is ignored; a file named explicitly must be one.
    """
    files, bad = _json_files(paths)
    rows, bad_rows = _results_rows(files, strict=True)
    return _frame_of([rows], [*bad, *bad_rows], "tsobench results files", paths)


def load_pytest_benchmark(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """pytest-benchmark JSON (``--benchmark-json`` output or a ``.benchmarks`` folder).

    Only entries whose ``extra_info`` carries throughput become rows: plain
    timing micro-benchmarks have nothing comparable to a run.
    """
    files, bad = _json_files(paths)
    rows, bad_rows = _benchmark_rows(files, strict=True)
    return _frame_of([rows], [*bad, *bad_rows], "pytest-benchmark scenario entries", paths)


def _frame_of(
    parts: list[list[dict[str, Any]]], bad: list[Skipped], what: str, paths: PathLike | Iterable[PathLike]
) -> pd.DataFrame:
    frames = [_frame(rows) for rows in parts if rows]
    if not frames:
        reasons = "".join(f"; {b}" for b in bad)
        raise ValueError(f"no {what} in {', '.join(map(str, _as_list(paths)))}{reasons}")
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df = harness.mark(df, "throughput_tps", BASELINE_MATCH)  # computed here, never written back into files
    df.attrs["skipped"] = bad
    return df


# --- files ------------------------------------------------------------------


def _as_list(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    return [paths] if isinstance(paths, str | os.PathLike) else list(paths)


def _json_files(paths: PathLike | Iterable[PathLike]) -> tuple[list[tuple[Path, bool, Any]], list[Skipped]]:
    """(path, named explicitly, parsed JSON) for every file to consider, and the files left out
    (``validation.read_json``: regular files of a bounded size only). A path named that does not exist,
    or is not a file or folder (``/dev/null``, a pipe), is an error."""
    found, bad = [], []
    for p in map(Path, _as_list(paths)):
        if p.is_dir():
            candidates = [
                (f, False)
                for f in sorted(p.rglob("*.json"))
                if f.name not in SKIP_FILES and not SKIP_DIRS.intersection(f.relative_to(p).parts[:-1])
            ]
        elif os.path.lexists(p):
            problem = validation.regular(p)
            if problem is not None:
                raise ValueError(f"{p}: {problem}")
            candidates = [(p, True)]
        else:
            raise ValueError(f"{p}: no such file or folder")
        for f, explicit in candidates:
            try:
                found.append((f, explicit, validation.read_json(f)))
            except validation.Untrusted as exc:
                bad.append(Skipped(str(f), str(exc)))
    return found, bad


def _is_results(data: Any) -> bool:
    return isinstance(data, dict) and "schema_version" in data and "metrics" in data


def _is_benchmark(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("benchmarks"), list)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        if col in INTEGER and df[col].notna().all():
            df[col] = df[col].astype("int64")  # counts print as counts when nothing is missing
    df["open_loop"] = df["rate"].notna()
    return df


def _numbers(row: dict[str, Any]) -> dict[str, Any]:
    """Numeric cells as floats, each finite, integral where its column is, and not negative where it is
    measured or derived: a number too large for one (10**400), an infinite concurrency or a negative
    throughput fails here (``validation.Untrusted``), for this file only, never the table's int64 cast."""
    for col in NUMERIC:
        if row.get(col) is None:
            continue
        value = row[col]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise validation.Untrusted(f"{col} is {value!r}, not a number")
        try:
            row[col] = float(value)
        except OverflowError:
            raise validation.Untrusted(f"{col} has {len(str(value))} digits, beyond a number") from None
        if not math.isfinite(row[col]):
            raise validation.Untrusted(f"{col} is {row[col]}, not a finite number")
        if col in INTEGER and (not row[col].is_integer() or abs(row[col]) >= validation.INT64):
            raise validation.Untrusted(f"{col} is {value}, not a whole number within 64 bits")
        if row[col] < 0 and (col in MEASURED or col in DERIVED):
            raise validation.Untrusted(f"{col} is {value}, below zero")
    for col in TEXT:  # a list where text belongs would break every group-by of the table
        if row.get(col) is not None and not isinstance(row[col], str):
            raise validation.Untrusted(f"{col} is {_shown(row[col])}, not text")
    for col in FLAGS:
        if row.get(col) is not None and not isinstance(row[col], bool):
            raise validation.Untrusted(f"{col} is {_shown(row[col])}, not true or false")
    return row


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- the name rules, for files that predate their strategy's record -----------------------------

NEGATIVE_CONTROL, HARNESS_BASELINE = "unsafe-shared", "null"


def name_rules(name: str) -> dict[str, Any]:
    """What a file that predates ``strategy`` can say of its strategy: only what its name tells."""
    return {"name": name, "safe": name != NEGATIVE_CONTROL, "baseline": name == HARNESS_BASELINE, "reference": False}


def strategy_record(data: Mapping[str, Any]) -> dict[str, Any]:
    """The file's ``strategy`` record, with what it lacks (an empty or older record) from the name rules."""
    recorded = data.get("strategy")
    recorded = recorded if isinstance(recorded, Mapping) else {}
    fallback = name_rules(str(recorded.get("name") or (data.get("config") or {}).get("strategy")))
    return {**fallback, **{k: v for k, v in recorded.items() if v is not None or k not in fallback}}


# --- tsobench results -------------------------------------------------------


def _results_rows(
    files: list[tuple[Path, bool, Any]], strict: bool = False
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    rows, bad = [], []
    for path, explicit, data in files:
        if _is_results(data):
            try:
                data = results.upgrade(data)  # every version it reads, as the current schema
            except results.UnsupportedVersion as exc:
                bad.append(Skipped(str(path), str(exc)))
                continue
            try:
                validation.check_results(data)
            except validation.Untrusted as exc:
                bad.append(Skipped(str(path), str(exc)))
                continue
            try:
                rows.append(results_row(data, path))
            except validation.Untrusted as exc:
                bad.append(Skipped(str(path), str(exc)))
            except Exception as exc:  # whatever is wrong with one file, the others still count
                bad.append(Skipped(str(path), f"malformed results file ({one_line(exc)})"))
        elif explicit and (strict or not _is_benchmark(data)):
            raise ValueError(f"{path}: not a tsobench results file (no schema_version/metrics)")
    return rows, bad


def config_values(recorded: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded config by flat key, as cells: a repeatable option (faults) as its words joined by
    ``+`` (None when empty), so runs with the same options compare equal."""
    out = {}
    for key, value in flatten(RunConfig, recorded).items():
        spec = BY_KEY[key]
        if spec.multiple:
            items = [spec.kind(**v) if isinstance(v, Mapping) else v for v in value or ()]
            value = "+".join(word(v) for v in items) or None
        out[key] = value
    return out


def results_row(
    data: dict[str, Any], path: PathLike | None = None, sections: Mapping[str, type] | None = None
) -> dict[str, Any]:
    """One results document as one flat row; raises on anything it cannot read (an older
    version's document is read as the current schema: ``results.upgrade``).

    Latency is None (shown as "-") when nothing was answered; fields that older
    files lack are None too.
    """
    data = results.upgrade(data)
    cfg, m = data["config"], data["metrics"]
    env, network = data.get("environment") or {}, data.get("network") or {}
    histograms = data.get("histograms") or {}
    for text in histograms.values():
        latency.decode(text)  # a corrupt histogram fails here, not halfway through a report
    answered = bool(m["requests_ok"])
    # nothing answered: no latency ("-"), never the 0 a histogram of nothing reports
    measured = results.row(data if answered else {**data, "metrics": _without_latency(m)}, sections)
    record = strategy_record(data)
    judgement = stored({**data, "strategy": record})  # a file without a stored verdict is judged once, whole
    # the harness's own ceiling never makes a point dirty, whatever an older stored verdict says
    judgement = dataclasses.replace(judgement, baseline=judgement.baseline or bool(record["baseline"]))
    config = config_values(cfg)
    rtt, emulated = network.get("rtt_ms") or {}, network.get("emulated") or {}
    bound = record.get("bound") or {}
    row = {
        "source": "tsobench",
        "path": str(path) if path is not None else None,
        "run_id": str(data["run_id"]),
        "started_at": data.get("started_at"),
        "status": data.get("status"),
        **config,
        **measured,
        "errors": {str(k): int(v) for k, v in (m.get("errors") or {}).items()},
        "hung": m.get("hung", 0),
        **{k: measured[k] or 0 for k in ("violations", "duplicates", "non_monotonic", "mismatched")},
        "total_callers": config["concurrency"] * config["processes"],
        "cpu_per_1k_ts": _per_1k(m.get("client_cpu_s"), m.get("timestamps")),
        "rpcs_per_ts": _ratio(measured[SERVER_RPCS], measured[SERVER_TIMESTAMPS]),
        "rtt_ms": rtt.get("median"),
        "rtt_min_ms": rtt.get("min"),
        "rtt_emulated_ms": emulated.get("rtt_ms"),
        "loopback": network.get("loopback"),
        "safe": bool(record["safe"]),
        "baseline": bool(record["baseline"]),
        "reference": bool(record.get("reference")),
        "settings": tuple(record.get("settings") or ()),
        "bound_in_flight": bound.get("in_flight"),
        "bound_unit": bound.get("unit"),
        "bound_why": bound.get("why"),
        **_verdict_cells(judgement),
        "histogram": histograms.get("latency"),
        "histogram_uncorrected": histograms.get("latency_uncorrected"),
        "config": cfg,
        "strategy_record": record,
        "timeline": data.get("timeline"),
        "fault_outcomes": tuple(data.get("faults") or ()),
        "command": shlex.join(map(str, data["command"])) if data.get("command") else None,
        **{k: env.get(k) for k in ENV_FIELDS},
    }
    return _numbers(row)


def _without_latency(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in ("latency_us", "latency_uncorrected_us")}


def _verdict_cells(judgement: Any) -> dict[str, Any]:
    return {
        "verdict": judgement.verdict.value,
        "verdict_detail": judgement.detail,
        "clean": judgement.clean,
        "dirty": judgement.dirty,
        "negative_control": judgement.negative_control,
    }


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def _per_1k(cpu_s: float | None, timestamps: float | None) -> float | None:
    """Client CPU milliseconds spent per 1,000 timestamps."""
    per_ts = _ratio(cpu_s, timestamps)
    return per_ts * 1e6 if per_ts is not None else None


def number(value: Any) -> float | None:
    """A number cell as a float: None when it is not a finite number (None, NaN, a flag, text)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def flag(value: Any) -> bool:
    """A flag cell as a bool: True only when it says so (None, NaN: not known, so not True); a frame's
    bools may be numpy's, which ``is True`` would miss."""
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and bool(value)


def named(key: str, value: Any) -> str:
    """An option's value in a label, as a sweep names it: its key tag (``c16``, ``r500``), else ``key=value``."""
    spec = BY_KEY[key]
    if isinstance(value, float) and value.is_integer() and spec.kind is int:
        value = int(value)  # a table's cells are floats: pool_size 4.0 is 4
    if isinstance(value, list):  # a repeatable option; elements recorded as dicts are values of its type
        value = tuple(spec.kind(**v) if isinstance(v, dict) else v for v in value)
    text = written(spec, value)
    if value is None or spec.option.key_tag is None:
        return text if value is None and spec.option.none else f"{key}={text or '-'}"
    return f"{spec.option.key_tag}{text}"


# --- pytest-benchmark -------------------------------------------------------


def _benchmark_rows(
    files: list[tuple[Path, bool, Any]], strict: bool = False
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    rows, bad = [], []
    for path, explicit, data in files:
        if _is_benchmark(data):
            try:
                rows.extend(benchmark_rows(data, path))
            except validation.Untrusted as exc:
                bad.append(Skipped(str(path), str(exc)))
            except Exception as exc:  # one bad file does not stop the others
                reason = f"malformed pytest-benchmark file ({one_line(exc)})"
                bad.append(Skipped(str(path), reason))
        elif explicit and strict:
            raise ValueError(f"{path}: not a pytest-benchmark file (no 'benchmarks' list)")
    return rows, bad


def benchmark_rows(data: dict[str, Any], path: PathLike | None = None) -> list[dict[str, Any]]:
    """The scenario entries of one pytest-benchmark document, as flat rows.

    ``params`` give the configuration (options it does not name at their default),
    ``extra_info`` the harness's figures; ``errors`` there is either a count or a
    {kind: count} dict. An entry stores no verdict: it is judged once, here, as the
    whole of what it recorded.
    """
    machine = data.get("machine_info") or {}
    commit = data.get("commit_info") or {}
    env = {
        "python": machine.get("python_version"),
        "platform": " ".join(filter(None, (machine.get("system"), machine.get("release"), machine.get("machine")))),
        "cpu_model": (machine.get("cpu") or {}).get("brand_raw"),
        "cpu_count": (machine.get("cpu") or {}).get("count"),
        "git_commit": (commit.get("id", "") + ("-dirty" if commit.get("dirty") else "")) or None,
    }
    rows = []
    for b in data["benchmarks"]:
        info, params = b.get("extra_info") or {}, b.get("params") or {}
        if "throughput_tps" not in info and "throughput_rps" not in info:
            continue
        lat = info.get("latency_us") or {}
        kinds = info.get("error_kinds") or {}
        errors = info.get("errors", 0)
        if isinstance(errors, dict):
            kinds, errors = errors, sum(errors.values())
        config = config_values({k: v for k, v in params.items() if k in BY_KEY})
        record = name_rules(str(params.get("strategy")))
        entry = {
            "status": "completed",
            "strategy": record,
            "metrics": {"requests_failed": errors, "errors": kinds},
            "correctness": {"violations": info.get("violations", 0)},
        }
        row = {
            "source": "pytest-benchmark",
            "path": str(path) if path is not None else None,
            "run_id": b.get("fullname") or b.get("name"),
            "started_at": data.get("datetime"),
            "status": "completed",
            **config,
            "total_callers": config["concurrency"] * config["processes"],
            "throughput_rps": info.get("throughput_rps"),
            "throughput_tps": info.get("throughput_tps", info.get("throughput_rps")),
            **{f"{k}_us": lat.get(k) for k in LATENCY_KEYS},
            "requests_failed": errors,
            "errors": dict(kinds),
            "violations": info.get("violations", 0),
            "client_cpu_s": info.get("client_cpu_s"),
            "histogram": info.get("histogram"),
            "safe": record["safe"],
            "baseline": record["baseline"],
            "reference": False,
            "settings": (),
            **_verdict_cells(judge(entry)),
            **env,
        }
        rows.append(_numbers(row))  # no cpu_per_1k_ts: a round's wall time includes warm-up, so no timestamp count
    return rows
