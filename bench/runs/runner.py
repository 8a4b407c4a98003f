"""Runs a RunConfig: the server (embedded unless --target), P shards behind a
``ShardBackend`` (spawned processes, or Dask tasks with --scheduler), a start
barrier, faults on the embedded server, a hard time limit, then one RunResult
with its verdict.

A stop (Ctrl-C, SIGTERM, SIGHUP: the command line turns each into
KeyboardInterrupt) ends the load early: the shards close their window, fold
what they measured and report it, and the result says "interrupted". A second
stop gives up on shards that have not reported.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from tsobench import strategies
from tsobench.bench.measure import intervals, latency, recovery
from tsobench.bench.measure.checker import Correctness
from tsobench.bench.measure.fairness import fairness, littles_law_ratio
from tsobench.bench.measure.measures import ShardResult, metric_keys
from tsobench.bench.model import results
from tsobench.bench.model.config import RunConfig
from tsobench.bench.model.faults import Injected
from tsobench.bench.model.results import (
    Batching,
    FaultOutcome,
    Metrics,
    Network,
    Placement,
    RunResult,
    ServerSummary,
    ShardEntry,
    StrategyRecord,
    new_run_id,
    utc_now,
)
from tsobench.bench.runs import server_metrics
from tsobench.bench.runs.backend import RunError, ShardBackend
from tsobench.bench.runs.environment import environment
from tsobench.bench.runs.exporter import ClientExporter
from tsobench.bench.runs.injector import FaultInjector
from tsobench.bench.runs.network import network
from tsobench.server import ChildCluster, ChildServer, ServerConfig, ServerCounters
from tsobench.server.app import exposure
from tsobench.strategies.leader import NoLeader, channel_credentials, endpoints, find_leader

START_SLACK_S = 0.2  # from the go to the shared start instant: every shard is awake by then
POLL_S = 0.1


@dataclass(frozen=True)
class LiveInterval:
    """The last whole interval the shards reported, as the interval lines show it."""

    index: int  # from the measured window's start; negative: the warm-up
    start_s: float  # from the window's start (negative in the warm-up)
    end_s: float
    requests: int  # answered in it, all shards
    errors: int  # failed in it
    tps: float
    p50_us: int  # the largest of the shards' (exact with one process)
    p99_us: int

    @property
    def warmup(self) -> bool:
        return self.index < 0


@dataclass(frozen=True)
class Progress:
    phase: str  # starting | warmup | measuring | draining
    done: int  # requests finished so far, all shards
    elapsed_s: float
    expected_s: float
    interval: LiveInterval | None = None  # the last whole interval (all shards)

    @property
    def interval_tps(self) -> float | None:
        return None if self.interval is None else self.interval.tps

    @property
    def interval_p99_us(self) -> int | None:
        return None if self.interval is None else self.interval.p99_us


@dataclass
class _Load:
    """What happened while the shards ran."""

    t0: float  # the shared start instant, time.time()
    before: ServerCounters | None = None  # the server's counters when the window opened
    after: ServerCounters | None = None
    interrupted: bool = False
    injected: list[Injected] = field(default_factory=list)


@dataclass(frozen=True)
class Served:
    """What the load goes to: its address, a way to read its counters, and the embedded server (None: --target)."""

    address: str
    counters: Callable[[], ServerCounters | None]
    server: ChildServer | ChildCluster | None


def run(
    config: RunConfig,
    command: list[str] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    served: Served | None = None,
) -> RunResult:
    """Run and return the merged, judged result. A stop during the load still
    returns what was measured (status "interrupted"); one before it raises KeyboardInterrupt.
    ``served``: a server already running for this config (``serving``), shared by several runs."""
    config.runnable()
    started_at = utc_now()
    record = strategy_record(config)  # before the load: a plugin installed meanwhile changes nothing
    with contextlib.nullcontext(served) if served else serving(config) as s:
        cluster = _find_cluster(config, s.address)
        measured_network = network(config, cluster["leader"])
        shards = _backend(config, s.address)
        exporter = None
        try:
            exporter = _exporter(config, shards, cluster["leader"])
            load = _drive(config, shards, s.counters, s.server, on_progress)
            if exporter is not None:
                exporter.push()  # the final figures: every shard has published its last fold
        finally:
            if exporter is not None:
                exporter.close()
            shards.close()
    return _result(config, record, started_at, command or [], shards, load, cluster, measured_network).judged()


@contextlib.contextmanager
def serving(config: RunConfig) -> Iterator[Served]:
    """The ``--target``, or the embedded server with the config's knobs, started here and stopped after."""
    if config.target is not None:
        url = config.target_metrics
        if url:
            server_metrics.check(url, config)
        yield Served(config.target, (lambda: server_metrics.fetch(url, config)) if url else (lambda: None), None)
        return
    # The knobs pass through whole: a knob added to ServerKnobs reaches the embedded server by itself.
    # The admin (fault) service only when there are faults to inject, with a token only this process knows.
    server_config = ServerConfig(
        **vars(config.server), host=config.server_host or "127.0.0.1", seed=config.seed, admin=bool(config.faults)
    )
    if (exposed := exposure(server_config)) is not None:
        print(f"warning: the embedded server is {exposed}", file=sys.stderr, flush=True)
    # Its data dir lives in its own temp dir, which it removes itself if we are killed.
    server: ChildServer | ChildCluster
    if config.server_members > 1:
        server = ChildCluster(server_config, config.server_members, temporary_data=True)
    else:
        server = ChildServer(server_config, temporary_data=True)
    try:
        try:
            server.start()
        except Exception as exc:
            raise RunError(f"could not start the embedded server: {exc}") from exc
        yield Served(server.address, server.counters, server)
    finally:
        server.close()


def _exporter(config: RunConfig, shards: ShardBackend, leader: str) -> ClientExporter | None:
    """--metrics-port / --pushgateway: what the spawned shards publish, summed by this process."""
    read = getattr(shards, "client_metrics", None)
    if not config.client_metrics or read is None:
        return None
    try:
        return ClientExporter(config, read, f"{leader}-0").start()
    except OSError as exc:
        raise RunError(f"--metrics-port {config.metrics_port}: {exc.strerror or exc}") from None


def _find_cluster(config: RunConfig, target: str) -> dict[str, Any]:
    """Ask GetMembers before any load, as every client will (a wrong CA or an endpoint list
    nobody answers on fails here, with the reason); what it says goes into the results' config."""
    options = config.client_options(target)
    addresses = endpoints(target)
    try:
        credentials = channel_credentials(options.cacert, options.cert, options.key)
        leader = find_leader(addresses, credentials, options.timeout_s)
    except (NoLeader, OSError) as exc:
        raise RunError(f"could not start: {exc}") from None
    return {
        "endpoints": addresses,
        "tls": options.tls,
        "members": list(leader.members),
        "leader": leader.address,
    }


def _backend(config: RunConfig, target: str) -> ShardBackend:
    if config.scheduler is None:
        from tsobench.bench.runs.spawned import SpawnedShards

        return SpawnedShards(config, target)
    try:
        from tsobench.bench.runs.dask_shards import DaskShards
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in ("distributed", "dask"):
            raise
        raise RunError(f"--scheduler needs Dask distributed ({exc}): pip install 'tsobench[dask]'") from None
    return DaskShards(config, target)


def _safe_counters(read: Callable[[], ServerCounters | None]) -> ServerCounters | None:
    try:
        return read()
    except OSError:
        return None


def _drive(
    config: RunConfig,
    shards: ShardBackend,
    read_counters: Callable[[], ServerCounters | None],
    server: ChildServer | ChildCluster | None,
    on_progress: Callable[[Progress], None] | None,
) -> _Load:
    """Release the shards together, fire the faults, read the server's counters over the window,
    and wait for every shard's result (at most until the hard limit)."""
    shards.wait_ready()
    # Without warm-up the window opens with the load: read the counters first.
    before = (_safe_counters(read_counters) or ServerCounters()) if config.warmup_s == 0 else None
    load = _Load(t0=time.time() + START_SLACK_S, before=before)
    shards.go(load.t0)
    measure_from = load.t0 + config.warmup_s
    injector = None
    if config.faults and server is not None:  # an embedded server or cluster (checked by RunConfig)
        injector = FaultInjector(server, config.faults, measure_from).start()
    limit = load.t0 + config.hard_limit_s
    try:
        while True:
            try:
                if load.before is None and time.time() >= measure_from:
                    load.before = _safe_counters(read_counters) or ServerCounters()
                if shards.poll():
                    break
                if time.time() > limit:
                    shards.kill_stragglers()
                    break
                if on_progress:
                    on_progress(_progress(config, shards, load.t0))
                time.sleep(POLL_S)
            except KeyboardInterrupt:
                if load.interrupted:  # a second stop: stop waiting for shards
                    shards.kill_stragglers()
                    break
                load.interrupted = True
                shards.stop()
        load.after = _safe_counters(read_counters)
    finally:
        if injector:
            load.injected = injector.stop()
    return load


def _progress(config: RunConfig, shards: ShardBackend, t0: float) -> Progress:
    elapsed = time.time() - t0
    if elapsed < 0:
        phase = "starting"
    elif elapsed < config.warmup_s:
        phase = "warmup"
    elif config.window_s is None or elapsed < config.warmup_s + config.window_s:
        phase = "measuring"
    else:
        phase = "draining"
    return Progress(phase, shards.done(), max(0.0, elapsed), config.expected_seconds(), _live(config, shards))


def _live(config: RunConfig, shards: ShardBackend) -> LiveInterval | None:
    last = shards.last_interval()
    if last is None:
        return None
    index, ok, failed, p50, p99 = last
    start, end = intervals.span(index, config.interval_s, config.warmup_s, math.inf)
    tps = ok * config.count / (end - start) if end > start else 0.0
    return LiveInterval(index, start, end, ok, failed, tps, p50, p99)


def strategy_record(config: RunConfig) -> StrategyRecord:
    """What the strategy says of itself, for the results file (the analysis never asks the registry)."""
    record = strategies.get(config.strategy).record(config.client_options(""), config.concurrency)
    return cast(StrategyRecord, record)


def _result(
    config: RunConfig,
    record: StrategyRecord,
    started_at: str,
    command: list[str],
    shards: ShardBackend,
    load: _Load,
    cluster: dict[str, Any],
    measured_network: Network,
) -> RunResult:
    parts = [shards.results[i] for i in sorted(shards.results)]
    total = ShardResult.merge(parts)
    lost_callers = len(shards.failures) * config.concurrency
    merged_intervals = intervals.merge(total.intervals)
    run_rpcs = total.counters.get("rpcs") or (total.requests_ok + total.requests_failed)
    server = server_metrics.summary(config, load.before, load.after, total.measured_s, run_rpcs, total.timestamps)
    metrics = metrics_of(config, total, lost_callers, server)
    faults: list[FaultOutcome] = []
    if config.faults:
        trace = total.trace or recovery.Trace.join(())
        faults = recovery.outcomes(
            load.injected, trace, total.measured_s, config.recovery_horizon_s(record["overrun_s"])
        )
        metrics["unrecovered_callers"] = recovery.unrecovered_callers(faults, trace)
    histograms = {"latency": total.latency}
    if config.open_loop:
        histograms["latency_uncorrected"] = total.latency_uncorrected
    status = "failed" if not parts else ("interrupted" if load.interrupted or total.interrupted else "completed")
    return RunResult(
        run_id=new_run_id(config.strategy, config.api),
        started_at=started_at,
        finished_at=utc_now(),
        command=command,
        config={**config.to_dict(), "cluster": cluster},
        environment={**environment(), **shards.environment()},
        metrics=metrics,
        correctness=Correctness(
            checked=total.checked,
            duplicates=total.ranges.duplicates,
            non_monotonic=total.non_monotonic,
            non_monotonic_per_caller=total.non_monotonic_per_caller,
            mismatched=total.mismatched,
        ).to_dict(),
        histograms=histograms,
        shards=[_shard_entry(shards, p) for p in parts]
        + [ShardEntry(index=i, **_where(shards, i), error=why) for i, why in sorted(shards.failures.items())],
        status=status,
        strategy=record,
        timeline=intervals.timeline(
            merged_intervals, config.interval_s, config.warmup_s, total.measured_s, config.count
        ),
        faults=faults,
        network=measured_network,
        hlog=intervals.hlog(merged_intervals, config.interval_s, config.warmup_s, total.measured_s, load.t0),
    )


def metrics_of(
    config: RunConfig,
    total: ShardResult,
    lost_callers: int = 0,
    server: ServerSummary | None = None,
    declared: type = Metrics,
) -> Metrics:
    """The run's metrics: every shard figure that declares its metrics key (``measures.measure(metric=...)``)
    as merged, then what the run derives; a declared key produced by neither is an error."""
    values: dict[str, Any] = {key: getattr(total, name) for name, key in metric_keys(type(total)).items()}
    errors = Counter(total.errors)
    if lost_callers:
        errors["shard_failed"] += lost_callers
    measured_s, ok, timestamps = total.measured_s, total.requests_ok, total.timestamps
    callers = config.concurrency * config.processes
    summary = latency.summarize(latency.decode(total.latency))
    values |= {
        "requests_failed": total.requests_failed + lost_callers,
        "measured_s": round(measured_s, 6),
        "throughput_rps": ok / measured_s if measured_s else 0.0,
        "throughput_tps": timestamps / measured_s if measured_s else 0.0,
        "latency_us": summary,
        "errors": dict(errors),
        "callers": callers,
        "fairness": fairness(total.completions),  # callers of a lost shard count as shard_failed, not here
        "littles_law_ratio": None if config.open_loop else littles_law_ratio(total.answered_us, measured_s, callers),
        "reconnects": total.counters.get("reconnects", 0),
        "client_cpu_s": round(total.cpu_s, 4),
        "client_cpu_us_per_ts": round(total.cpu_s * 1e6 / timestamps, 3) if timestamps else None,
        "server": server,
        "batching": _batching(total.counters, summary["mean"], ok, measured_s),
    }
    if config.open_loop:
        values["latency_uncorrected_us"] = latency.summarize(latency.decode(total.latency_uncorrected))
    missing = results.required_keys(declared) - values.keys()
    if missing:  # a declared metric nobody produces: an error here, never a file without it
        raise RunError(f"no producer for the declared metrics {', '.join(sorted(missing))}")
    return cast(Metrics, values)


def _batching(counters: dict[str, int], latency_mean_us: float, ok: int, measured_s: float) -> Batching | None:
    """A batching strategy's RPCs in the window and, per request, its batch's RPC time and the wait before it."""
    rpcs, requests = counters.get("rpcs", 0), counters.get("batched_requests", 0)
    if not rpcs or not requests:
        return None
    rpc_us = counters.get("rpc_us_total", 0) / requests
    batching: Batching = {
        "rpcs": rpcs,
        "requests": requests,
        "mean_batch": round(requests / rpcs, 3),
        "rpcs_per_s": round(rpcs / measured_s, 1) if measured_s else 0.0,
        "rpc_us_mean": round(rpc_us, 1),
        "wait_us_mean": round(max(0.0, latency_mean_us - rpc_us), 1) if ok else 0.0,
    }
    # The client's own turn-around, where the strategy times it (the dispatcher: per batch)
    if sends := counters.get("sends_timed", 0):
        batching["send_gap_us_mean"] = round(counters.get("send_gap_us_total", 0) / sends, 1)
    if wakes := counters.get("wakes_timed", 0):
        batching["wake_us_mean"] = round(counters.get("wake_us_total", 0) / wakes, 1)
    return batching


def _where(shards: ShardBackend, index: int) -> Placement:
    """The shard's host and Dask worker (None: not known, or a spawned process)."""
    where = shards.placement.get(index, {})
    return Placement(host=where.get("host"), worker=where.get("worker"))


def _shard_entry(shards: ShardBackend, p: ShardResult) -> ShardEntry:
    return ShardEntry(
        index=p.index,
        **_where(shards, p.index),
        requests_ok=p.requests_ok,
        requests_failed=p.requests_failed,
        measured_s=round(p.measured_s, 6),
        cpu_s=round(p.cpu_s, 4),
        errors=p.errors,
        completions_per_caller=p.completions,
    )
