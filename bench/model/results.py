"""The results file: one versioned JSON document per run.

Top level: schema_version, run_id, started_at, finished_at, status, verdict,
strategy, command, config, environment, network, metrics, correctness,
histograms, shards, timeline, faults. Readers check schema_version; anything
added later is additive. Next to it, ``<name>.hlog`` holds the timeline's
histograms as an HdrHistogram interval log.

Each field of a section is declared once, here, with what it means (``Doc``):
the analysis's columns (``columns``, ``row``) and the field tables of
results/README.md (``field_tables``) come from these declarations.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NotRequired, Required, TypedDict

from tsobench.bench.model.verdict import Judgement, VerdictRecord, judge, stored
from tsobench.files import write_atomically

SCHEMA_VERSION = 1  # the version this tsobench writes
DEFAULT_DIR = Path("results")


class Role(Enum):
    """A column's part when repeats of one point fold into one row (``analysis/aggregate.py``)."""

    MEDIAN = "median"  # compared across repeats: the point reports the median of its runs
    SAME = "same"  # the same for every run of the point: the first run's


@dataclass(frozen=True)
class Doc:
    """What a results field means, its column in the analysis's runs table and its role there.

    ``column`` names the column (``{key}`` is the field's name); for a field that
    holds a section (a TypedDict), it is the template of its fields' columns
    (``{key}_us`` makes ``latency_us.p99`` the column ``p99_us``). None: no column.
    ``role``: how repeats of a point fold it (None: the aggregate folds it its own way, or not at all).
    """

    help: str
    column: str | None = "{key}"
    role: Role | None = None


MEDIAN, SAME = Role.MEDIAN, Role.SAME


class LatencySummary(TypedDict):
    """Percentiles of a merged histogram, µs."""

    p50: Annotated[int, Doc("median")]
    p90: Annotated[int, Doc("90th percentile")]
    p99: Annotated[int, Doc("99th percentile")]
    p999: Annotated[int, Doc("99.9th percentile")]
    max: Annotated[int, Doc("the longest")]
    mean: Annotated[float, Doc("mean", role=MEDIAN)]


class ServerSummary(TypedDict):
    """The server's counters over the measured window (read by the parent when the warm-up ends and after the load)."""

    rpcs: Annotated[int, Doc("Tso requests answered")]
    timestamps: Annotated[int | None, Doc("timestamps handed out; null when neither the server nor the run can tell")]
    streams: Annotated[int, Doc("Tso streams opened")]
    mean_batch: Annotated[float, Doc("timestamps per request", role=MEDIAN)]
    errors: Annotated[int, Doc("requests refused or aborted")]
    cpu_s: Annotated[float | None, Doc("the server process's CPU (user+sys), s; null when it does not say")]
    cpu_share: Annotated[float | None, Doc("cpu_s / measured_s: cores the server kept busy", role=MEDIAN)]
    cpu_us_per_rpc: Annotated[float | None, Doc("server CPU per request, µs")]
    cpu_us_per_ts: Annotated[float | None, Doc("server CPU per timestamp, µs", role=MEDIAN)]
    threads: Annotated[
        int | None, Doc("cores the server can use at most (1: the asyncio server); null: unknown", role=MEDIAN)
    ]
    metrics_source: NotRequired[
        Annotated[str, Doc("the names the counters were read from: tsobench, pd v26, pd v8.5, pd tso microservice")]
    ]
    timestamps_from: NotRequired[
        Annotated[
            str,
            Doc(
                "server: its own count; run: the run's own count stood in (a v8.5 PD or the TSO microservice has no "
                "batch-size histogram), as the run was its only client; unknown: others' load too"
            ),
        ]
    ]
    others_rpcs: NotRequired[
        Annotated[
            int | None,
            Doc(
                "RPCs the server answered in the window beyond the run's own, where more than 5 % (plus two per "
                "caller): others' load, which its CPU figures include; null: within the margin",
                role=MEDIAN,
            ),
        ]
    ]


class Batching(TypedDict):
    """What a batching strategy reported (the dispatcher): its RPCs and how long requests waited for them."""

    rpcs: Annotated[int, Doc("Tso requests it sent in the window")]
    requests: Annotated[int, Doc("callers' requests those carried")]
    mean_batch: Annotated[float, Doc("callers' requests per RPC", role=MEDIAN)]
    rpcs_per_s: Annotated[float, Doc("RPCs per second of the window", role=MEDIAN)]
    rpc_us_mean: Annotated[float, Doc("per request, the mean time its batch's RPC took, µs", role=MEDIAN)]
    wait_us_mean: Annotated[
        float, Doc("per request, the mean wait for its batch to leave: latency mean - RPC mean, µs", role=MEDIAN)
    ]
    send_gap_us_mean: NotRequired[
        Annotated[
            float,
            Doc(
                "per RPC, the client's own turn-around before it: from when its batch could leave (the reply "
                "that freed its slot, its first caller, the end of its collection) to its send, µs"
            ),
        ]
    ]
    wake_us_mean: NotRequired[
        Annotated[
            float,
            Doc(
                "per RPC, the client's own turn-around after it: from its reply's arrival to its last caller "
                "running again, µs"
            ),
        ]
    ]


class Fairness(TypedDict):
    """Completions per caller in the window (see ``fairness``)."""

    jain: Annotated[float | None, Doc("Jain's index: 1 when every caller completed as many (null: nobody did)")]
    min_per_caller: Annotated[int, Doc("the fewest completions of a caller")]
    max_per_caller: Annotated[int, Doc("the most")]
    starved_callers: Annotated[int, Doc("callers that completed nothing: never clean")]


class Metrics(TypedDict):
    """What was measured, over the measured window of every shard."""

    requests_ok: Annotated[int, Doc("answered in the window")]
    requests_failed: Annotated[int, Doc("failed in the window (hung callers included)")]
    timestamps: Annotated[int, Doc("timestamps answered in the window")]
    measured_s: Annotated[float, Doc("the measured window, s", role=MEDIAN)]
    throughput_rps: Annotated[float, Doc("requests answered per second")]
    throughput_tps: Annotated[float, Doc("timestamps answered per second")]
    latency_us: Annotated[
        LatencySummary, Doc("from each request's intended start, censored waits included", "{key}_us")
    ]
    latency_uncorrected_us: NotRequired[
        Annotated[LatencySummary, Doc("open loop: from each actual send", "{key}_uncorrected_us")]
    ]
    errors: Annotated[dict[str, int], Doc("failed requests and incidents by kind (see bench/measure/errors.py)")]
    error_samples: Annotated[dict[str, dict[str, str]], Doc("per kind, the first `message` and `where`", None)]
    crashes: Annotated[int, Doc("callers or background threads that died: never clean")]
    hung: Annotated[int, Doc("callers still waiting well past their deadline: the strategy enforced none")]
    callers: Annotated[int, Doc("concurrency x processes")]
    fairness: Annotated[Fairness, Doc("completions per caller in the window", "{key}")]
    censored: Annotated[int, Doc("requests in flight when the window closed; their waits so far are in the latency")]
    littles_law_ratio: Annotated[float | None, Doc("closed loop: throughput x mean latency / callers", role=MEDIAN)]
    reconnects: Annotated[int, Doc("streams reopened after a failure (the strategy's count)")]
    streams_opened: Annotated[int, Doc("Tso streams the clients opened")]
    client_cpu_s: Annotated[float, Doc("client processes' CPU (user+sys), s", role=MEDIAN)]
    client_cpu_us_per_ts: Annotated[float | None, Doc("client CPU per timestamp, µs")]
    server: Annotated[ServerSummary | None, Doc("null when unknown, or after a kill fault", "server_{key}")]
    batching: Annotated[Batching | None, Doc("null unless the strategy batches and says so", "batch_{key}")]
    unrecovered_callers: NotRequired[Annotated[int, Doc("with faults: callers with no answer after the last")]]


class IntervalEntry(TypedDict):
    """One of ``timeline``: what completed in one ``--interval``."""

    t_s: Annotated[float, Doc("its start, s from the measured window's start (negative: warm-up)")]
    ok: Annotated[int, Doc("answered in it")]
    failed: Annotated[int, Doc("failed in it")]
    tps: Annotated[float, Doc("timestamps/s")]
    p50_us: Annotated[int | None, Doc("median latency, µs (null: no answer in it)")]
    p99_us: Annotated[int | None, Doc("99th percentile, µs")]
    max_us: Annotated[int | None, Doc("the longest, µs")]
    warmup: Annotated[bool, Doc("in the warm-up (tagged `warmup` in the .hlog)")]


class FaultOutcome(TypedDict):
    """One of ``faults``: a fault as it happened and how the callers recovered (see ``recovery``)."""

    kind: Annotated[str, Doc("its kind's word (`bench/model/faults.py` FAULT_KINDS: kill, abort, stall, ...)")]
    spec: Annotated[str, Doc("as given to --fault")]
    at_s: Annotated[float, Doc("when it was meant to start, s from the window's start")]
    duration_s: Annotated[float, Doc("as given")]
    started_s: Annotated[float, Doc("as it happened")]
    ended_s: Annotated[
        float, Doc("a kill: when the restarted server listens; a leader fault: a new leader holds the lease")
    ]
    failed_requests: Annotated[int, Doc("from its start until the recovery")]
    first_success_after_s: Annotated[float | None, Doc("from ended_s to the first answer after its last failure")]
    recovered: Annotated[bool, Doc("answered again after it, within its region")]
    p99_during_us: Annotated[int | None, Doc("requests in flight between its start and the recovery")]
    p99_before_us: Annotated[int | None, Doc("the baseline before it")]
    time_to_baseline_s: Annotated[
        float | None, Doc("to the first 100 ms with no failure and p99 within 2x the baseline")
    ]
    error: Annotated[str | None, Doc("the fault could not be done, or was cut short")]


class CorrectnessCounts(TypedDict):
    """What checking every timestamp found (see ``checker``)."""

    checked: Annotated[int, Doc("timestamps checked, warm-up included")]
    duplicates: Annotated[int, Doc("handed out more than once, across all callers and processes")]
    non_monotonic: Annotated[int, Doc("not above a timestamp its process held when the request was sent")]
    mismatched: Annotated[int, Doc("replies whose count is not the request's")]
    violations: Annotated[int, Doc("the sum of those three")]
    non_monotonic_per_caller: Annotated[int, Doc("the part of non_monotonic below the caller's own")]


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


class BoundRecord(TypedDict):
    """How many requests (or batches) a strategy can have in flight for its options."""

    in_flight: int
    unit: str  # requests | batches
    why: str


class StrategyRecord(TypedDict, total=False):
    """``strategy``: what the strategy says of itself, taken before the load (absent from old files)."""

    name: str
    safe: bool  # False: the negative control
    baseline: bool  # True: the harness's own ceiling (null)
    reference: bool  # True: a production client, shown for reference
    summary: str
    settings: list[str]  # the option keys that matter to it
    bound: BoundRecord | None
    recovery: dict[str, str]  # per fault kind: why it recovers as it does
    fewest_failures: str | None
    benchmark: bool  # the benchmark suite runs it
    overrun_s: float  # the longest a request may wait past its deadline (backoff + watchdog), as it states


class Rtt(TypedDict):
    min: float
    median: float
    samples: int


class Network(TypedDict):
    """``network``: the distance the run was measured at."""

    rtt_ms: Rtt | None  # GetMembers round trips to the leader before the load; null: could not be measured
    emulated: dict[str, float] | None  # the embedded server's --rtt-ms and --rtt-jitter-ms, when set
    loopback: bool  # the target is on this machine


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
    verdict: VerdictRecord | None = None  # None: written before verdicts were stored (judge the whole file)
    network: Network | None = None
    schema_version: int = SCHEMA_VERSION
    hlog: str = field(default="", repr=False)  # the interval log, written next to the file (not in it)

    @property
    def judgement(self) -> Judgement:
        return stored(self.to_dict())

    def judged(self) -> RunResult:
        """The same result with its verdict stored, as ``tsobench run`` writes it."""
        return dataclasses.replace(self, verdict=judge(self.to_dict()).to_dict())

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
            "verdict": self.verdict,
            "strategy": self.strategy,
            "command": self.command,
            "config": self.config,
            "environment": self.environment,
            "network": self.network,
            "metrics": self.metrics,
            "correctness": self.correctness,
            "histograms": self.histograms,
            "shards": self.shards,
            "timeline": self.timeline,
            "faults": self.faults,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        """A document of any version this tsobench reads (``upgrade``), as the current schema."""
        data = upgrade(data)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


# ---------------------------------------------------------------- the versions it reads


class UnsupportedVersion(ValueError):
    """A results file of a schema version this tsobench cannot read (a newer one, or not a version)."""


def _version_1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 grew by additions: what an earlier file of it lacks or named otherwise, as it is now."""
    for key, empty in (("strategy", dict), ("timeline", list), ("faults", list), ("shards", list)):
        if data.get(key) is None:
            data[key] = empty()
    for key in ("verdict", "network"):  # None: written before it was recorded
        data.setdefault(key, None)
    data.setdefault("status", "completed")
    data.setdefault("histograms", {})
    metrics = data.get("metrics")
    if isinstance(metrics, dict) and "censored" not in metrics and "in_flight_at_end" in metrics:
        data["metrics"] = {**metrics, "censored": metrics["in_flight_at_end"]}  # its name before
    if isinstance(data["shards"], list):  # anything else is for the reader's validation to refuse
        data["shards"] = [
            {**{k: v for k, v in s.items() if k != "failure"}, "error": s["failure"]}
            if isinstance(s, dict) and "failure" in s and "error" not in s
            else s
            for s in data["shards"]
        ]
    return data


# Every schema version this tsobench reads, and how a document of it becomes the current schema (the way
# pyperf's loader upgrades its older formats): readers see one shape, with no fallbacks of their own. A new
# version adds its reader here, and the older ones chain into it.
READERS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _version_1}


def upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """A results document as the current schema; ``UnsupportedVersion`` for a version not in ``READERS``."""
    version = data.get("schema_version")
    reader = READERS.get(version) if type(version) is int else None
    if reader is None:
        known = ", ".join(map(str, READERS))
        raise UnsupportedVersion(f"unsupported results schema_version {version!r} (this tsobench reads {known})")
    return reader(dict(data))


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


# ---------------------------------------------------------------- the declarations, read back

SECTIONS: dict[str, type] = {"metrics": Metrics, "correctness": CorrectnessCounts}  # one value per run
ENTRIES: dict[str, type] = {"timeline": IntervalEntry, "faults": FaultOutcome}  # a list per run
KIND_WORDS = {int: "int", float: "float", bool: "flag", str: "text"}  # a column's kind, by its type


def _declared(section: type) -> list[tuple[str, Any, Doc]]:
    """(name, type, Doc) of each field of a TypedDict section, NotRequired and None unwrapped."""
    out = []
    for name, hint in typing.get_type_hints(section, include_extras=True).items():
        while typing.get_origin(hint) in (NotRequired, Required):
            (hint,) = typing.get_args(hint)
        if typing.get_origin(hint) is not Annotated:
            continue
        inner, doc = typing.get_args(hint)[:2]
        if isinstance(inner, types.UnionType) or typing.get_origin(inner) is typing.Union:
            inner = next(a for a in typing.get_args(inner) if a is not type(None))
        out.append((name, inner, doc))
    return out


def required_keys(section: type) -> frozenset[str]:
    """The keys every document of a TypedDict section holds (NotRequired ones aside; read from the hints,
    as ``__required_keys__`` misses NotRequired under postponed annotations)."""
    hints = typing.get_type_hints(section, include_extras=True)
    return frozenset(k for k, hint in hints.items() if typing.get_origin(hint) is not NotRequired)


def _is_section(kind: Any) -> bool:
    return isinstance(kind, type) and typing.is_typeddict(kind)


def _walk(section: type, template: str, prefix: str) -> list[tuple[str, str, Any, Doc]]:
    """(column, dotted path, type, Doc) of every field with a column, sections flattened."""
    out = []
    for name, kind, doc in _declared(section):
        if doc.column is None:
            continue
        if _is_section(kind):
            out += _walk(kind, doc.column, f"{prefix}{name}.")
        else:
            out.append((template.format(key=name), f"{prefix}{name}", kind, doc))
    return out


def columns(sections: Mapping[str, type] | None = None) -> dict[str, tuple[str, str]]:
    """The measured columns of the analysis's runs table: column -> (kind, help), from the declarations
    (``sections``: SECTIONS, or an extension of it)."""
    out = {}
    for name, section in (sections or SECTIONS).items():
        for column, _, kind, doc in _walk(section, "{key}", f"{name}."):
            out[column] = (KIND_WORDS.get(kind, "text"), doc.help)
    return out


def roles(sections: Mapping[str, type] | None = None) -> dict[str, Role]:
    """The measured columns that declare a role in the aggregate, column -> role."""
    out = {}
    for name, section in (sections or SECTIONS).items():
        for column, _, _, doc in _walk(section, "{key}", f"{name}."):
            if doc.role is not None:
                out[column] = doc.role
    return out


def column(path: str) -> str:
    """The analysis's column of a declared results field (``metrics.batching.rpcs_per_s`` ->
    ``batch_rpcs_per_s``): the analysis imports names made here, never joins them by hand; a path
    nothing declares fails where it is written."""
    section_name = path.partition(".")[0]
    for c, p, _, _ in _walk(SECTIONS.get(section_name, dict), "{key}", f"{section_name}."):
        if p == path:
            return c
    raise KeyError(f"{path!r} is no declared results field with a column")


def row(data: dict[str, Any], sections: Mapping[str, type] | None = None) -> dict[str, Any]:
    """One results document's measured values by column (None where the file has no such field)."""
    out = {}
    for name, section in (sections or SECTIONS).items():
        for column, path, _, _ in _walk(section, "{key}", f"{name}."):
            value: Any = data
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            out[column] = value
    return out


# The columns the analysis names (from the declarations above: renaming a field renames them).
BATCH_RPCS_PER_S = column("metrics.batching.rpcs_per_s")
BATCH_RPC_US_MEAN = column("metrics.batching.rpc_us_mean")
BATCH_WAIT_US_MEAN = column("metrics.batching.wait_us_mean")
SERVER_RPCS = column("metrics.server.rpcs")
SERVER_TIMESTAMPS = column("metrics.server.timestamps")
MEASURED_S = column("metrics.measured_s")
MEAN_US = column("metrics.latency_us.mean")


def field_tables(sections: Mapping[str, type] | None = None) -> str:
    """The field tables of results/README.md, from the declarations (a test keeps the README in step)."""
    lines = []
    for name, section in {**(sections or SECTIONS), **ENTRIES}.items():
        lines += [
            f"`{name}`{' (one entry each)' if name in ENTRIES else ''}:",
            "",
            "| field | type | what |",
            "|---|---|---|",
        ]
        lines += _table_rows(section, "")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _table_rows(section: type, prefix: str) -> list[str]:
    rows = []
    for name, kind, doc in _declared(section):
        if _is_section(kind):
            rows.append(f"| `{prefix}{name}` | object | {doc.help} |")
            rows += _table_rows(kind, f"{prefix}{name}.")
        else:
            rows.append(f"| `{prefix}{name}` | {KIND_WORDS.get(kind, 'object')} | {doc.help} |")
    return rows


if __name__ == "__main__":  # python -m tsobench.bench.model.results: the README's field tables
    print(field_tables(), end="")
