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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..results import SCHEMA_VERSION

PathLike = str | os.PathLike[str]
SKIP_DIRS = frozenset({"report"})  # our own output folder
SKIP_FILES = frozenset({"sweep.json"})  # sweep manifests

COLUMNS = (
    "source",
    "path",
    "run_id",
    "started_at",
    "strategy",
    "api",
    "concurrency",
    "processes",
    "total_callers",
    "rate",
    "open_loop",
    "count",
    "pool_size",
    "streams",
    "max_batch",
    "batch_wait_us",
    "max_inflight",
    "connections",
    "server_delay_ms",
    "server_jitter_ms",
    "server_fail_rate",
    "target",
    "duration_s",
    "status",
    "measured_s",
    "throughput_rps",
    "throughput_tps",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "max_us",
    "mean_us",
    "p99_uncorrected_us",
    "requests_ok",
    "requests_failed",
    "timestamps",
    "errors",
    "hung",
    "violations",
    "duplicates",
    "non_monotonic",
    "mismatched",
    "client_cpu_s",
    "cpu_per_1k_ts",
    "server_rpcs",
    "server_timestamps",
    "rpcs_per_ts",
    "mean_batch",
    "histogram",
    "histogram_uncorrected",
    "command",
    "python",
    "grpcio",
    "protobuf",
    "platform",
    "cpu_model",
    "cpu_count",
    "git_commit",
)
TEXT = frozenset(
    {
        "source",
        "path",
        "run_id",
        "started_at",
        "strategy",
        "api",
        "open_loop",
        "target",
        "status",
        "errors",
        "histogram",
        "histogram_uncorrected",
        "command",
        "python",
        "grpcio",
        "protobuf",
        "platform",
        "cpu_model",
        "git_commit",
    }
)
NUMERIC = tuple(c for c in COLUMNS if c not in TEXT)
INTEGER = frozenset(
    {
        "concurrency",
        "processes",
        "total_callers",
        "count",
        "pool_size",
        "streams",
        "max_batch",
        "batch_wait_us",
        "max_inflight",
        "connections",
        "requests_ok",
        "requests_failed",
        "timestamps",
        "hung",
        "violations",
        "duplicates",
        "non_monotonic",
        "mismatched",
        "server_rpcs",
        "server_timestamps",
        "cpu_count",
    }
)
LATENCY_KEYS = ("p50", "p90", "p99", "p999", "max", "mean")


def load(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """Everything the paths hold: tsobench results and pytest-benchmark runs.

    The ``source`` column says which ("tsobench" or "pytest-benchmark").
    """
    files = list(_json_files(paths))
    frames = [_frame(rows) for rows in (_results_rows(files), _benchmark_rows(files)) if rows]
    if not frames:
        raise ValueError(f"no tsobench results or pytest-benchmark files in {', '.join(map(str, _as_list(paths)))}")
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def load_results(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """tsobench results files, from files or folders (searched recursively).

    In folders, anything that is not a results file (sweep manifests, other
    JSON, the ``report/`` folder) is skipped; a file named explicitly must be one.
    """
    rows = _results_rows(list(_json_files(paths)), strict=True)
    if not rows:
        raise ValueError(f"no tsobench results files in {', '.join(map(str, _as_list(paths)))}")
    return _frame(rows)


def load_pytest_benchmark(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """pytest-benchmark JSON (``--benchmark-json`` output or a ``.benchmarks`` folder).

    Only entries whose ``extra_info`` carries throughput become rows: plain
    timing micro-benchmarks have nothing comparable to a run.
    """
    rows = _benchmark_rows(list(_json_files(paths)), strict=True)
    if not rows:
        raise ValueError(f"no pytest-benchmark scenario entries in {', '.join(map(str, _as_list(paths)))}")
    return _frame(rows)


# --- files ------------------------------------------------------------------


def _as_list(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    return [paths] if isinstance(paths, str | os.PathLike) else list(paths)


def _json_files(paths: PathLike | Iterable[PathLike]) -> Iterator[tuple[Path, bool, Any]]:
    """(path, named explicitly, parsed JSON) for every file to consider."""
    for p in map(Path, _as_list(paths)):
        if p.is_dir():
            for f in sorted(p.rglob("*.json")):
                rel = f.relative_to(p).parts
                if f.name in SKIP_FILES or SKIP_DIRS.intersection(rel[:-1]):
                    continue
                try:
                    yield f, False, json.loads(f.read_text())
                except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                    continue  # a folder may hold anything; only results count
        elif p.is_file():
            try:
                yield p, True, json.loads(p.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{p}: not a JSON file ({exc})") from None
        else:
            raise ValueError(f"{p}: no such file or folder")


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


def _results_rows(files: list[tuple[Path, bool, Any]], strict: bool = False) -> list[dict[str, Any]]:
    rows = []
    for path, explicit, data in files:
        if _is_results(data):
            if data["schema_version"] != SCHEMA_VERSION:
                raise ValueError(
                    f"{path}: results schema_version {data['schema_version']!r}, this tsobench reads {SCHEMA_VERSION}"
                )
            try:
                rows.append(results_row(data, path))
            except (KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"{path}: malformed results file (missing {exc})") from None
        elif explicit and (strict or not _is_benchmark(data)):
            raise ValueError(f"{path}: not a tsobench results file (no schema_version/metrics)")
    return rows


def results_row(data: dict[str, Any], path: PathLike | None = None) -> dict[str, Any]:
    """One results document as one flat row."""
    cfg, m, c, env = data["config"], data["metrics"], data["correctness"], data.get("environment") or {}
    lat = m["latency_us"]
    server = m.get("server") or {}
    histograms = data.get("histograms") or {}
    return {
        "source": "tsobench",
        "path": str(path) if path is not None else None,
        "run_id": data["run_id"],
        "started_at": data.get("started_at"),
        **{k: cfg.get(k) for k in CONFIG_FIELDS},
        "total_callers": cfg["concurrency"] * cfg["processes"],
        "server_delay_ms": cfg.get("server", {}).get("delay_ms"),
        "server_jitter_ms": cfg.get("server", {}).get("jitter_ms"),
        "server_fail_rate": cfg.get("server", {}).get("fail_rate"),
        "status": data.get("status"),
        "measured_s": m.get("measured_s"),
        "throughput_rps": m["throughput_rps"],
        "throughput_tps": m["throughput_tps"],
        **{f"{k}_us": lat.get(k) for k in LATENCY_KEYS},
        "p99_uncorrected_us": (m.get("latency_uncorrected_us") or {}).get("p99"),
        "requests_ok": m["requests_ok"],
        "requests_failed": m["requests_failed"],
        "timestamps": m.get("timestamps"),
        "errors": dict(m.get("errors") or {}),
        "hung": m.get("hung", 0),
        **{k: c.get(k, 0) for k in ("violations", "duplicates", "non_monotonic", "mismatched")},
        "client_cpu_s": m.get("client_cpu_s"),
        "cpu_per_1k_ts": _cpu_per_1k(m.get("client_cpu_s"), m.get("timestamps")),
        "server_rpcs": server.get("rpcs"),
        "server_timestamps": server.get("timestamps"),
        "rpcs_per_ts": _ratio(server.get("rpcs"), server.get("timestamps")),
        "mean_batch": server.get("mean_batch"),
        "histogram": histograms.get("latency"),
        "histogram_uncorrected": histograms.get("latency_uncorrected"),
        "command": shlex.join(data["command"]) if data.get("command") else None,
        **{k: env.get(k) for k in ENV_FIELDS},
    }


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


def _benchmark_rows(files: list[tuple[Path, bool, Any]], strict: bool = False) -> list[dict[str, Any]]:
    rows = []
    for path, explicit, data in files:
        if _is_benchmark(data):
            try:
                rows.extend(benchmark_rows(data, path))
            except (KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"{path}: malformed pytest-benchmark file ({exc})") from None
        elif explicit and strict:
            raise ValueError(f"{path}: not a pytest-benchmark file (no 'benchmarks' list)")
    return rows


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
            **env,
        }
        rows.append(row)  # no cpu_per_1k_ts: a round's wall time includes warm-up, so no timestamp count
    return rows
