"""Runs a RunConfig: server (embedded unless --target), P shards (spawned
processes, or Dask tasks with --scheduler), a start barrier, faults on the
embedded server, hard time limits, then one merged RunResult."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tsobench import strategies
from tsobench.server import ChildCluster, ChildServer, ServerConfig, ServerCounters
from tsobench.server.embedded import fetch_counters
from tsobench.strategies.leader import NoLeader, channel_credentials, endpoints, find_leader

from . import intervals, latency, recovery
from .backend import READY_TIMEOUT_S, RunError, ShardBackend
from .checker import Correctness
from .config import RunConfig, ShardConfig
from .environment import environment, host_facts, hosts_section
from .fairness import fairness, littles_law_ratio
from .faults import FaultInjector, Injected
from .results import (
    FaultOutcome,
    Metrics,
    Placement,
    RunResult,
    ServerSummary,
    ShardEntry,
    StrategyRecord,
    new_run_id,
    utc_now,
)
from .shard import ShardResult
from .worker import main as worker_main

START_SLACK_S = 0.2
NO_INTERVAL = -(1 << 62)


@dataclass(frozen=True)
class Progress:
    phase: str  # starting | warmup | measuring | draining
    done: int  # requests finished so far, all shards
    elapsed_s: float
    expected_s: float
    interval_tps: float | None = None  # the last whole interval (all shards)
    interval_p99_us: int | None = None  # the largest of the shards' p99 in it


@contextlib.contextmanager
def _server_for(
    config: RunConfig,
) -> Iterator[tuple[str, Callable[[], ServerCounters | None], ChildServer | ChildCluster | None]]:
    """The target address, a way to read its counters, and the embedded server (None with --target)."""
    if config.target is not None:
        url = config.target_metrics
        yield config.target, (lambda: fetch_counters(url)) if url else (lambda: None), None
        return
    knobs = config.server
    server_config = ServerConfig(
        host=config.server_host or "127.0.0.1",
        delay_ms=knobs.delay_ms,
        jitter_ms=knobs.jitter_ms,
        fail_rate=knobs.fail_rate,
        seed=config.seed,
        admin=True,  # faults are injected through it
    )
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
        yield server.address, server.counters, server
    finally:
        server.close()


def _find_cluster(config: RunConfig, target: str) -> dict[str, Any]:
    """Ask GetMembers before any load, as every client will (a wrong CA or an endpoint list
    nobody answers on fails here, with the reason); what it says goes into the results' config."""
    options = config.client_options(target)
    try:
        credentials = channel_credentials(options.cacert, options.cert, options.key)
        leader = find_leader(endpoints(target), credentials, options.timeout_s)
    except (NoLeader, OSError) as exc:
        raise RunError(f"could not start: {exc}") from None
    return {
        "endpoints": endpoints(target),
        "tls": options.tls,
        "members": list(leader.members),
        "leader": leader.address,
    }


def _safe_counters(read: Callable[[], ServerCounters | None]) -> ServerCounters | None:
    try:
        return read()
    except OSError:
        return None


class _Shards:
    """The spawned shard processes and their pipes (a ShardBackend)."""

    def __init__(self, config: RunConfig, target: str) -> None:
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        self.progress: list[Any] = []
        self.intervals: list[Any] = []  # per shard: [index, answered, p99_us] of its last whole interval
        for i in range(config.processes):
            parent, child = ctx.Pipe()
            counter = ctx.Value("q", 0, lock=False)
            interval = ctx.Array("q", [NO_INTERVAL, 0, 0], lock=False)
            proc = ctx.Process(
                target=worker_main,
                args=(ShardConfig(config, i, target), child, counter, self._stop, interval),
                name=f"tsobench-shard-{i}",
                daemon=True,
            )
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
            self.progress.append(counter)
            self.intervals.append(interval)
        self.results: dict[int, ShardResult] = {}
        self.failures: dict[int, str] = {}
        self.placement = {i: {"host": socket.gethostname(), "worker": None} for i in range(config.processes)}

    def done(self) -> int:
        return sum(c.value for c in self.progress)

    def last_interval(self) -> tuple[int, int, int] | None:
        """(index, answered, p99 µs) of the latest interval every shard has reported (p99: the shards' largest)."""
        reported = [tuple(a[:]) for a in self.intervals]
        index = min(r[0] for r in reported)
        if index == NO_INTERVAL:
            return None
        latest = [r for r in reported if r[0] == index]
        return index, sum(r[1] for r in latest), max(r[2] for r in latest)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        for i, conn in enumerate(self.conns):
            while not conn.poll(0.05):
                if not self.procs[i].is_alive() or time.monotonic() > deadline:
                    raise RunError(f"client process {i} did not start")
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                kind, payload = "error", f"exited with {self.procs[i].exitcode}"
            if kind != "ready":
                raise RunError(f"client process {i} could not start: {payload}")

    def go(self, start_at: float) -> None:
        for conn in self.conns:
            conn.send(("go", start_at))

    def stop(self) -> None:
        self._stop.set()

    def poll(self) -> bool:
        """Collect whatever has arrived; True when every shard has answered."""
        for i, conn in enumerate(self.conns):
            if i in self.results or i in self.failures:
                continue
            try:
                if conn.poll():
                    kind, payload = conn.recv()
                    if kind == "result":
                        self.results[i] = payload
                    else:
                        self.failures[i] = payload
                elif not self.procs[i].is_alive():
                    self.failures[i] = f"client process exited with {self.procs[i].exitcode} and no result"
            except (EOFError, OSError):
                self.failures[i] = "client process closed its pipe without a result"
        return len(self.results) + len(self.failures) == len(self.conns)

    def kill_stragglers(self) -> None:
        for i, proc in enumerate(self.procs):
            if i not in self.results and i not in self.failures:
                self.failures[i] = "killed at the hard time limit (hung)"
            if proc.is_alive():
                proc.kill()
            proc.join(5)

    def close(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
        for conn in self.conns:
            conn.close()

    def environment(self) -> dict[str, Any]:
        return hosts_section(None, {socket.gethostname(): host_facts()})


def _shards_for(config: RunConfig, target: str) -> ShardBackend:
    if config.scheduler is None:
        return _Shards(config, target)
    try:
        from .dask_shards import DaskShards
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in ("distributed", "dask"):
            raise
        raise RunError(f'--scheduler needs Dask distributed ({exc}): pip install "tsobench[dask]"') from None
    return DaskShards(config, target)


def run(
    config: RunConfig,
    command: list[str] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunResult:
    """Run and return the merged result. Ctrl-C stops the load early; what was
    measured so far is still merged and returned (status "interrupted")."""
    started_at = utc_now()
    run_id = new_run_id(config.strategy, config.api)
    with _server_for(config) as (target, read_counters, server):
        cluster = _find_cluster(config, target)
        shards = _shards_for(config, target)
        interrupted = False
        injector = None
        try:
            shards.wait_ready()
            # Without warm-up the window opens with the load: read the counters first.
            before = (_safe_counters(read_counters) or ServerCounters()) if config.warmup_s == 0 else None
            t0 = time.time() + START_SLACK_S
            shards.go(t0)
            measure_from = t0 + config.warmup_s
            if config.faults and server is not None:  # an embedded server or cluster (checked by RunConfig)
                injector = FaultInjector(server, config.faults, measure_from).start()
            limit = t0 + config.hard_limit_s
            while True:
                try:
                    if before is None and time.time() >= measure_from:
                        before = _safe_counters(read_counters) or ServerCounters()
                    if shards.poll():
                        break
                    if time.time() > limit:
                        shards.kill_stragglers()
                        break
                    if on_progress:
                        on_progress(_progress(config, shards, t0))
                    time.sleep(0.1)
                except KeyboardInterrupt:
                    if interrupted:  # a second Ctrl-C: stop waiting for shards
                        shards.kill_stragglers()
                        break
                    interrupted = True
                    shards.stop()
            after = _safe_counters(read_counters)
        finally:
            if injector:
                injector.stop()
            shards.close()
    injected = injector.injected if injector else []
    restarted = any(f.kind == "kill" for f in config.faults)  # a restarted server counts from zero again
    counters = (after - before) if (after is not None and before is not None and not restarted) else None
    return _merge(config, run_id, started_at, command or [], shards, counters, interrupted, cluster, injected, t0)


def _progress(config: RunConfig, shards: ShardBackend, t0: float) -> Progress:
    elapsed = time.time() - t0
    if elapsed < 0:
        phase = "starting"
    elif elapsed < config.warmup_s:
        phase = "warmup"
    elif config.duration_s is None or elapsed < config.warmup_s + config.duration_s:
        phase = "measuring"
    else:
        phase = "draining"
    last = shards.last_interval()
    tps, p99 = (last[1] * config.count / config.interval_s, last[2]) if last else (None, None)
    return Progress(phase, shards.done(), max(0.0, elapsed), config.expected_seconds(), tps, p99)


def _merge(
    config: RunConfig,
    run_id: str,
    started_at: str,
    command: list[str],
    shards: ShardBackend,
    server: ServerCounters | None,
    interrupted: bool,
    cluster: dict[str, Any],
    injected: list[Injected],
    t0: float,
) -> RunResult:
    parts = [shards.results[i] for i in sorted(shards.results)]
    total = ShardResult.merge(parts)
    errors = Counter(total.errors)
    lost_callers = len(shards.failures) * config.concurrency
    if shards.failures:
        errors["shard_failed"] += lost_callers
    correctness = Correctness(
        checked=total.checked,
        duplicates=total.ranges.duplicates,
        non_monotonic=total.non_monotonic,
        non_monotonic_per_caller=total.non_monotonic_per_caller,
        mismatched=total.mismatched,
    )
    merged = latency.decode(total.latency)
    uncorrected = latency.decode(total.latency_uncorrected)
    measured_s, ok, timestamps, cpu_s = total.measured_s, total.requests_ok, total.timestamps, total.cpu_s
    callers = config.concurrency * config.processes
    metrics: Metrics = {
        "requests_ok": ok,
        "requests_failed": total.requests_failed + lost_callers,
        "timestamps": timestamps,
        "measured_s": round(measured_s, 6),
        "throughput_rps": ok / measured_s if measured_s else 0.0,
        "throughput_tps": timestamps / measured_s if measured_s else 0.0,
        "latency_us": latency.summarize(merged),
        "errors": dict(errors),
        "hung": total.hung,
        "callers": callers,
        "fairness": fairness(total.completions),  # callers of a lost shard count as shard_failed, not here
        "in_flight_at_end": total.in_flight_at_end,
        "censored": total.censored,
        "littles_law_ratio": None if config.open_loop else littles_law_ratio(total.answered_us, measured_s, callers),
        "reconnects": total.reconnects,
        "streams_opened": total.streams_opened,
        "client_cpu_s": round(cpu_s, 4),
        "client_cpu_us_per_ts": round(cpu_s * 1e6 / timestamps, 3) if timestamps else None,
        "server": _server_metrics(server),
    }
    histograms = {"latency": latency.encode(merged)}
    if config.open_loop:
        metrics["latency_uncorrected_us"] = latency.summarize(uncorrected)
        histograms["latency_uncorrected"] = latency.encode(uncorrected)
    status = "interrupted" if interrupted or total.interrupted else "completed"
    if not parts:
        status = "failed"
    merged_intervals = intervals.merge(part for p in parts for part in p.intervals)
    faults: list[FaultOutcome] = []
    if config.faults:
        trace = _trace(parts, t0)
        faults = recovery.outcomes(injected, trace, measured_s, config.recovery_horizon_s)
        metrics["unrecovered_callers"] = recovery.unrecovered_callers(faults, trace)
    return RunResult(
        run_id=run_id,
        started_at=started_at,
        finished_at=utc_now(),
        command=command,
        config={**config.to_dict(), "cluster": cluster},
        environment={**environment(), **shards.environment()},
        metrics=metrics,
        correctness=correctness.to_dict(),
        histograms=histograms,
        shards=[
            ShardEntry(
                index=p.index,
                **_where(shards, p.index),
                requests_ok=p.requests_ok,
                requests_failed=p.requests_failed,
                measured_s=round(p.measured_s, 6),
                cpu_s=round(p.cpu_s, 4),
                errors=p.errors,
                completions_per_caller=p.completions,
            )
            for p in parts
        ]
        + [ShardEntry(index=i, **_where(shards, i), error=why) for i, why in sorted(shards.failures.items())],
        status=status,
        strategy=_strategy_record(config.strategy),
        timeline=intervals.timeline(merged_intervals, config.interval_s, config.warmup_s, measured_s, config.count),
        faults=faults,
        hlog=intervals.hlog(merged_intervals, config.interval_s, config.warmup_s, measured_s, t0),
    )


def _trace(parts: list[ShardResult], t0: float) -> recovery.Trace:
    """Every shard's requests on the parent's clock (a shard that started late is shifted)."""
    return recovery.Trace.join(
        p.trace.shifted(round((p.started_wall_s - t0) * 1e6)) for p in parts if p.trace is not None
    )


def _where(shards: ShardBackend, index: int) -> Placement:
    """The shard's host and Dask worker (None: not known, or a spawned process)."""
    where = shards.placement.get(index, {})
    return Placement(host=where.get("host"), worker=where.get("worker"))


def _server_metrics(c: ServerCounters | None) -> ServerSummary | None:
    if c is None:
        return None
    return {
        "rpcs": c.rpcs,
        "timestamps": c.timestamps,
        "streams": c.streams_opened,
        "mean_batch": round(c.mean_batch, 3),
        "errors": c.errors,
    }


def _strategy_record(name: str) -> StrategyRecord:
    s = strategies.get(name)
    return {"name": s.name, "safe": s.safe, "baseline": s.baseline}
