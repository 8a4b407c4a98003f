"""The results file: one versioned JSON document per run.

Top level: schema_version, run_id, started_at, finished_at, command, config,
environment, metrics, correctness, histograms, shards, status, timeline, faults.
Readers check schema_version; anything added later is additive. Next to it,
``<name>.hlog`` holds the timeline's histograms as an HdrHistogram interval log.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, Required, TypedDict

from tsobench.files import write_atomically

from .verdict import Judgement, judge

if TYPE_CHECKING:
    from .fairness import Fairness

SCHEMA_VERSION = 1
DEFAULT_DIR = Path("results")


class LatencySummary(TypedDict):
    """``latency_us`` (and ``latency_uncorrected_us``): percentiles of the merged histogram, µs."""

    p50: int
    p90: int
    p99: int
    p999: int
    max: int
    mean: float


class ServerSummary(TypedDict):
    """``metrics.server``: the server's counters over the measured window (None when unknown)."""

    rpcs: int
    timestamps: int
    streams: int
    mean_batch: float
    errors: int


class Metrics(TypedDict):
    """``metrics``: what was measured, over the measured window of every shard."""

    requests_ok: int
    requests_failed: int
    timestamps: int
    measured_s: float
    throughput_rps: float
    throughput_tps: float
    latency_us: LatencySummary
    latency_uncorrected_us: NotRequired[LatencySummary]  # open loop only
    errors: dict[str, int]  # by kind (see bench/errors.py)
    hung: int
    callers: int  # concurrency x processes
    fairness: Fairness  # completions per caller in the window
    in_flight_at_end: int
    censored: int  # requests still waiting at the close; their waits so far are in the latency
    littles_law_ratio: float | None  # closed loop only
    reconnects: int
    streams_opened: int
    client_cpu_s: float
    client_cpu_us_per_ts: float | None
    server: ServerSummary | None  # None too after a kill fault (a restarted server counts from zero)
    unrecovered_callers: NotRequired[int]  # with faults: callers with no answer after the last recovery


class IntervalEntry(TypedDict):
    """One of ``timeline``: what completed in one ``--interval``."""

    t_s: float  # its start, s from the measured window's start (negative: warm-up)
    ok: int
    failed: int
    tps: float
    p50_us: int | None  # None: no answer in it
    p99_us: int | None
    max_us: int | None
    warmup: bool


class FaultOutcome(TypedDict):
    """One of ``faults``: a fault as it happened and how the callers recovered (see ``recovery``)."""

    kind: str
    spec: str
    at_s: float
    duration_s: float
    started_s: float  # as it happened, s from the measured window's start
    ended_s: float  # a kill: when the restarted server listens
    failed_requests: int
    first_success_after_s: float | None  # from ended_s
    recovered: bool
    p99_during_us: int | None
    p99_before_us: int | None
    time_to_baseline_s: float | None
    error: str | None  # the fault could not be done (or was cut short)


class CorrectnessCounts(TypedDict):
    """``correctness``: what checking every timestamp found (see ``checker.Correctness``)."""

    checked: int
    duplicates: int
    non_monotonic: int
    mismatched: int
    violations: int
    non_monotonic_per_caller: int


class Placement(TypedDict):
    """Where a shard ran."""

    host: str | None  # None: not known
    worker: str | None  # its Dask worker (None: a spawned process)


class ShardEntry(TypedDict, total=False):
    """One of ``shards``: a client process's own figures, or why it gave none."""

    index: Required[int]
    host: str | None  # where it ran (None: not known)
    worker: str | None  # its Dask worker (None: a spawned process)
    requests_ok: int
    requests_failed: int
    measured_s: float
    cpu_s: float
    errors: dict[str, int]
    completions_per_caller: list[int]
    error: str  # only when the shard produced no result (files before it said "failure")


class StrategyRecord(TypedDict, total=False):
    """``strategy`` (absent from files written before it was recorded)."""

    name: str
    safe: bool  # False: the negative control
    baseline: bool


def new_run_id(strategy: str, api: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{strategy}-{api}-{secrets.token_hex(3)}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunResult:
    run_id: str
    started_at: str
    finished_at: str
    command: list[str]
    config: dict[str, Any]  # the RunConfig, as RunConfig.to_dict() gives it
    environment: dict[str, Any]
    metrics: Metrics
    correctness: CorrectnessCounts
    histograms: dict[str, str]  # name -> encoded HDR histogram
    shards: list[ShardEntry] = field(default_factory=list)
    status: str = "completed"  # completed | interrupted | failed
    strategy: StrategyRecord = field(default_factory=StrategyRecord)
    timeline: list[IntervalEntry] = field(default_factory=list)  # per interval, warm-up marked
    faults: list[FaultOutcome] = field(default_factory=list)  # per fault: what it did, the recovery
    schema_version: int = SCHEMA_VERSION
    hlog: str = field(default="", repr=False)  # the interval log, written next to the file (not in it)

    @property
    def judgement(self) -> Judgement:
        return judge(self.to_dict())

    @property
    def clean(self) -> bool:
        return self.judgement.clean

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "strategy": self.strategy,
            "command": self.command,
            "config": self.config,
            "environment": self.environment,
            "metrics": self.metrics,
            "correctness": self.correctness,
            "histograms": self.histograms,
            "shards": self.shards,
            "timeline": self.timeline,
            "faults": self.faults,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported results schema_version {version!r} (this tsobench reads {SCHEMA_VERSION})")
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def write(result: RunResult, path: str | os.PathLike[str]) -> Path:
    """Write atomically: a reader (or a resumed sweep) never sees half a file.
    The interval log goes first, so a results file always has its log."""
    if result.hlog:
        write_atomically(hlog_path(path), result.hlog)
    return write_atomically(path, json.dumps(result.to_dict(), indent=1) + "\n")


def hlog_path(path: str | os.PathLike[str]) -> Path:
    """``run.json`` → ``run.hlog``."""
    return Path(path).with_suffix(".hlog")


def read(path: str | os.PathLike[str]) -> RunResult:
    return RunResult.from_dict(json.loads(Path(path).read_text()))


def default_path(run_id: str) -> Path:
    return DEFAULT_DIR / f"{run_id}.json"
