"""Results files (and pytest-benchmark JSON) into one pandas DataFrame.

One row per run, flat columns, so a notebook can do its own analysis::

    from tsobench.bench.analysis.loader import load
    df = load(["results/my-sweep"])
    df.groupby(["strategy", "api", "concurrency"]).throughput_tps.median()

Latencies are in microseconds (``*_us``); histograms stay encoded strings so
percentiles of several runs can be computed by merging them
(``tsobench.bench.latency.merge``), never by averaging percentiles.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import latency
from ..results import SCHEMA_VERSION
from ..verdict import judge

PathLike = str | os.PathLike[str]
SKIP_DIRS = frozenset({"report"})  # our own output folder
SKIP_FILES = frozenset({"sweep.json"})  # sweep manifests

# Every column of the runs table and its kind: text, flag (True/False, or None when unknown),
# int (an integer when every run has it) or float. The order is the table's.
COLUMN_KINDS: dict[str, str] = {
    "source": "text",
    "path": "text",
    "run_id": "text",
    "started_at": "text",
    "strategy": "text",
    "api": "text",
    "concurrency": "int",
    "processes": "int",
    "total_callers": "int",
    "rate": "float",
    "open_loop": "text",
    "count": "int",
    "pool_size": "int",
    "streams": "int",
    "max_batch": "int",
    "batch_wait_us": "int",
    "max_inflight": "int",
    "connections": "int",
    "server_delay_ms": "float",
    "server_jitter_ms": "float",
    "server_fail_rate": "float",
    "target": "text",
    "faults": "text",
    "duration_s": "float",
    "status": "text",
    "measured_s": "float",
    "throughput_rps": "float",
    "throughput_tps": "float",
    "p50_us": "float",
    "p90_us": "float",
    "p99_us": "float",
    "p999_us": "float",
    "max_us": "float",
    "mean_us": "float",
    "p99_uncorrected_us": "float",
    "requests_ok": "int",
    "requests_failed": "int",
    "timestamps": "int",
    "errors": "text",
    "hung": "int",
    "checked": "int",
    "violations": "int",
    "duplicates": "int",
    "non_monotonic": "int",
    "mismatched": "int",
    "client_cpu_s": "float",
    "cpu_per_1k_ts": "float",
    "server_rpcs": "int",
    "server_timestamps": "int",
    "rpcs_per_ts": "float",
    "mean_batch": "float",
    "server_cpu_s": "float",
    "server_cpu_share": "float",
    "server_cpu_us_per_rpc": "float",
    "server_cpu_us_per_ts": "float",
    "server_threads": "int",
    "callers": "int",
    "jain": "float",
    "min_per_caller": "int",
    "max_per_caller": "int",
    "starved_callers": "int",
    "in_flight_at_end": "int",
    "censored": "int",
    "littles_law_ratio": "float",
    "harness_bound": "flag",
    "harness_ceiling_tps": "float",
    "safe": "flag",
    "baseline": "flag",
    "verdict": "text",
    "verdict_detail": "text",
    "dirty": "flag",
    "histogram": "text",
    "histogram_uncorrected": "text",
    "config": "text",  # the recorded config as a dict: what makes a point (``options.flatten``)
    "timeline": "text",  # the recorded timeline (a list): the intervals ``stats`` samples a single run by
    "command": "text",
    "python": "text",
    "grpcio": "text",
    "protobuf": "text",
    "platform": "text",
    "cpu_model": "text",
    "cpu_count": "int",
    "git_commit": "text",
}
COLUMNS = tuple(COLUMN_KINDS)
TEXT = frozenset(c for c, k in COLUMN_KINDS.items() if k == "text")
FLAGS = frozenset(c for c, k in COLUMN_KINDS.items() if k == "flag")
NUMERIC = tuple(c for c, k in COLUMN_KINDS.items() if k in ("int", "float"))
INTEGER = frozenset(c for c, k in COLUMN_KINDS.items() if k == "int")
LATENCY_KEYS = ("p50", "p90", "p99", "p999", "max", "mean")


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
    results, bad_results = _results_rows(files)
    benchmarks, bad_benchmarks = _benchmark_rows(files)
    skipped = [*bad, *bad_results, *bad_benchmarks]
    return _frame_of([results, benchmarks], skipped, "tsobench results or pytest-benchmark files", paths)


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
    df.attrs["skipped"] = bad
    return df


# --- files ------------------------------------------------------------------


def _as_list(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    return [paths] if isinstance(paths, str | os.PathLike) else list(paths)


def _json_files(paths: PathLike | Iterable[PathLike]) -> tuple[list[tuple[Path, bool, Any]], list[Skipped]]:
    """(path, named explicitly, parsed JSON) for every file to consider, and the
    files that could not be parsed. A path that does not exist is an error."""
    found, bad = [], []
    for p in map(Path, _as_list(paths)):
        if p.is_dir():
            candidates = [
                (f, False)
                for f in sorted(p.rglob("*.json"))
                if f.name not in SKIP_FILES and not SKIP_DIRS.intersection(f.relative_to(p).parts[:-1])
            ]
        elif p.is_file():
            candidates = [(p, True)]
        else:
            raise ValueError(f"{p}: no such file or folder")
        for f, explicit in candidates:
            try:
                found.append((f, explicit, json.loads(f.read_text())))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                bad.append(Skipped(str(f), f"not a JSON file ({_one_line(exc)})"))
            except RecursionError:
                bad.append(Skipped(str(f), "not a JSON file (nested too deeply)"))
    return found, bad


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


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


# --- tsobench results -------------------------------------------------------


def _results_rows(
    files: list[tuple[Path, bool, Any]], strict: bool = False
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    rows, bad = [], []
    for path, explicit, data in files:
        if _is_results(data):
            if data["schema_version"] != SCHEMA_VERSION:
                reason = f"results schema_version {data['schema_version']!r}, this tsobench reads {SCHEMA_VERSION}"
                bad.append(Skipped(str(path), reason))
                continue
            try:
                rows.append(results_row(data, path))
            except Exception as exc:  # whatever is wrong with one file, the others still count
                bad.append(Skipped(str(path), f"malformed results file ({type(exc).__name__}: {_one_line(exc)})"))
        elif explicit and (strict or not _is_benchmark(data)):
            raise ValueError(f"{path}: not a tsobench results file (no schema_version/metrics)")
    return rows, bad


def results_row(data: dict[str, Any], path: PathLike | None = None) -> dict[str, Any]:
    """One results document as one flat row; raises on anything it cannot read.

    Latency is None (shown as "-") when nothing was answered; fields that older
    files lack are None too.
    """
    cfg, m, c, env = data["config"], data["metrics"], data["correctness"], data.get("environment") or {}
    server = m.get("server") or {}
    histograms = data.get("histograms") or {}
    for text in histograms.values():
        latency.decode(text)  # a corrupt histogram fails here, not halfway through a report
    answered = bool(m["requests_ok"])
    lat = m["latency_us"] if answered else {}
    fairness = m.get("fairness") or {}
    name = cfg["strategy"]
    safe = strategy_safe(data)
    baseline = strategy_baseline(data)
    judgement = judge({**data, "strategy": {"name": name, "safe": safe}})
    row = {
        "source": "tsobench",
        "path": str(path) if path is not None else None,
        "run_id": str(data["run_id"]),
        "started_at": data.get("started_at"),
        **{k: cfg.get(k) for k in CONFIG_FIELDS},
        "total_callers": cfg["concurrency"] * cfg["processes"],
        "server_delay_ms": cfg.get("server", {}).get("delay_ms"),
        "server_jitter_ms": cfg.get("server", {}).get("jitter_ms"),
        "server_fail_rate": cfg.get("server", {}).get("fail_rate"),
        "faults": "+".join(f["spec"] for f in data.get("faults") or ()) or None,  # kill@2s:1s+abort@4s
        "status": data.get("status"),
        "measured_s": m.get("measured_s"),
        "throughput_rps": m["throughput_rps"],
        "throughput_tps": m["throughput_tps"],
        **{f"{k}_us": lat.get(k) for k in LATENCY_KEYS},
        "p99_uncorrected_us": (m.get("latency_uncorrected_us") or {}).get("p99") if answered else None,
        "requests_ok": m["requests_ok"],
        "requests_failed": m["requests_failed"],
        "timestamps": m.get("timestamps"),
        "errors": {str(k): int(v) for k, v in (m.get("errors") or {}).items()},
        "hung": m.get("hung", 0),
        **{k: c.get(k, 0) for k in ("violations", "duplicates", "non_monotonic", "mismatched")},
        "checked": c.get("checked"),
        "client_cpu_s": m.get("client_cpu_s"),
        "cpu_per_1k_ts": _cpu_per_1k(m.get("client_cpu_s"), m.get("timestamps")),
        "server_rpcs": server.get("rpcs"),
        "server_timestamps": server.get("timestamps"),
        "rpcs_per_ts": _ratio(server.get("rpcs"), server.get("timestamps")),
        "mean_batch": server.get("mean_batch"),
        **{f"server_{k}": server.get(k) for k in ("cpu_s", "cpu_share", "cpu_us_per_rpc", "cpu_us_per_ts", "threads")},
        "callers": m.get("callers"),
        "jain": fairness.get("jain"),
        "min_per_caller": fairness.get("min_per_caller"),
        "max_per_caller": fairness.get("max_per_caller"),
        "starved_callers": fairness.get("starved_callers"),
        "in_flight_at_end": m.get("in_flight_at_end"),
        "censored": m.get("censored"),
        "littles_law_ratio": m.get("littles_law_ratio"),
        "harness_bound": m.get("harness_bound"),
        "harness_ceiling_tps": m.get("harness_ceiling_tps"),
        "safe": safe,
        "baseline": baseline,
        "verdict": judgement.verdict.value,
        "verdict_detail": judgement.detail,
        "dirty": judgement.dirty,
        "histogram": histograms.get("latency"),
        "histogram_uncorrected": histograms.get("latency_uncorrected"),
        "config": cfg,
        "timeline": data.get("timeline"),
        "command": shlex.join(map(str, data["command"])) if data.get("command") else None,
        **{k: env.get(k) for k in ENV_FIELDS},
    }
    for col in NUMERIC:
        if row.get(col) is not None:
            row[col] = float(row[col])  # a number too large for a float (10**400) fails here, for this file only
    return row


def strategy_safe(data: dict[str, Any]) -> bool:
    """Whether the run's strategy is safe: as the file records it, else as the
    registry knows it (files older than ``strategy.safe``), else by the one
    negative control that existed before either."""
    return _strategy_flag(data, "safe", lambda name: name != "unsafe-shared")


def strategy_baseline(data: dict[str, Any]) -> bool:
    """Whether the run measured the harness's own ceiling (``strategy.baseline``, the null strategy)."""
    return _strategy_flag(data, "baseline", lambda name: name == "null")


def _strategy_flag(data: dict[str, Any], flag: str, last_resort) -> bool:
    recorded = data.get("strategy")
    if isinstance(recorded, dict) and isinstance(recorded.get(flag), bool):
        return recorded[flag]
    return registered(str((data.get("config") or {}).get("strategy")), flag, last_resort)


def registered(name: str, flag: str, last_resort) -> bool:
    """A flag of a strategy as the registry (built-ins and plugins) knows it."""
    from tsobench.strategies.registry import all_strategies

    known = all_strategies().get(name)
    return bool(getattr(known, flag)) if known is not None else last_resort(name)


CONFIG_FIELDS = (
    "strategy",
    "api",
    "concurrency",
    "processes",
    "rate",
    "count",
    "pool_size",
    "streams",
    "max_batch",
    "batch_wait_us",
    "max_inflight",
    "connections",
    "target",
    "duration_s",
)
ENV_FIELDS = ("python", "grpcio", "protobuf", "platform", "cpu_model", "cpu_count", "git_commit")


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def _cpu_per_1k(cpu_s: float | None, timestamps: float | None) -> float | None:
    """Client CPU milliseconds spent per 1,000 timestamps."""
    per_ts = _ratio(cpu_s, timestamps)
    return per_ts * 1e6 if per_ts is not None else None


# --- pytest-benchmark -------------------------------------------------------


def _benchmark_rows(
    files: list[tuple[Path, bool, Any]], strict: bool = False
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    rows, bad = [], []
    for path, explicit, data in files:
        if _is_benchmark(data):
            try:
                rows.extend(benchmark_rows(data, path))
            except Exception as exc:  # one bad file does not stop the others
                reason = f"malformed pytest-benchmark file ({type(exc).__name__}: {_one_line(exc)})"
                bad.append(Skipped(str(path), reason))
        elif explicit and strict:
            raise ValueError(f"{path}: not a pytest-benchmark file (no 'benchmarks' list)")
    return rows, bad


def benchmark_rows(data: dict[str, Any], path: PathLike | None = None) -> list[dict[str, Any]]:
    """The scenario entries of one pytest-benchmark document, as flat rows.

    ``params`` give the configuration, ``extra_info`` the harness's figures;
    ``errors`` there is either a count or a {kind: count} dict.
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
        concurrency, processes = params.get("concurrency"), params.get("processes", 1)
        safe = registered(str(params.get("strategy")), "safe", lambda name: name != "unsafe-shared")
        judgement = judge(
            {
                "status": "completed",
                "strategy": {"safe": safe},
                "metrics": {"requests_failed": errors, "errors": kinds},
                "correctness": {"violations": info.get("violations", 0)},
            }
        )
        row = {
            "source": "pytest-benchmark",
            "path": str(path) if path is not None else None,
            "run_id": b.get("fullname") or b.get("name"),
            "started_at": data.get("datetime"),
            **{k: params.get(k) for k in CONFIG_FIELDS},
            "processes": processes,
            "count": params.get("count", 1),
            "total_callers": concurrency * processes if concurrency is not None else None,
            "status": "completed",
            "throughput_rps": info.get("throughput_rps"),
            "throughput_tps": info.get("throughput_tps", info.get("throughput_rps")),
            **{f"{k}_us": lat.get(k) for k in LATENCY_KEYS},
            "requests_failed": errors,
            "errors": dict(kinds),
            "violations": info.get("violations", 0),
            "client_cpu_s": info.get("client_cpu_s"),
            "histogram": info.get("histogram"),
            "command": None,
            "safe": safe,
            "baseline": registered(str(params.get("strategy")), "baseline", lambda name: name == "null"),
            "verdict": judgement.verdict.value,
            "verdict_detail": judgement.detail,
            "dirty": judgement.dirty,
            **env,
        }
        for col in NUMERIC:
            if row.get(col) is not None:
                row[col] = float(row[col])
        rows.append(row)  # no cpu_per_1k_ts: a round's wall time includes warm-up, so no timestamp count
    return rows
