"""Sweeps: the cross product of strategies x APIs x concurrency x processes x
rates x server delay (x repeats), each point one ``tsobench run`` in its own
process, all into one folder with a ``sweep.json`` manifest.

Nothing is lost: each point's result file is written when it finishes and the
manifest is rewritten after every point; ``--resume`` skips points that already
have a completed result; a point that fails or hangs is recorded and the sweep
goes on.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tsobench.files import write_atomically

from . import results
from .config import ConfigError, RunConfig, ServerKnobs
from .runner import hard_limit_s

MANIFEST = "sweep.json"
MANIFEST_VERSION = 1
SPAWN_SLACK_S = 30.0  # interpreter, server and shard start-up on top of the run's own limit


@dataclass(frozen=True)
class SweepPlan:
    """The axes of a sweep plus the options every point shares."""

    strategies: tuple[str, ...] = ("per-request", "locked", "pool", "dispatcher", "unsafe-shared")
    apis: tuple[str, ...] = ("thread", "asyncio")
    concurrency: tuple[int, ...] = (1, 16, 64)
    processes: tuple[int, ...] = (1,)
    rates: tuple[float | None, ...] = (None,)  # None: closed loop
    server_delay_ms: tuple[float, ...] = (0.0,)
    repeat: int = 1
    duration_s: float = 5.0
    warmup_s: float = 1.0
    count: int = 1
    seed: int = 0
    target: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # any other RunConfig field, for every point

    def points(self) -> list[Point]:
        axes = itertools.product(
            self.strategies,
            self.apis,
            self.concurrency,
            self.processes,
            self.rates,
            self.server_delay_ms,
            range(self.repeat),
        )
        return [Point(self._config(s, a, c, p, r, d, rep), rep) for s, a, c, p, r, d, rep in axes]

    def _config(self, strategy: str, api: str, c: int, p: int, rate: float | None, delay: float, rep: int) -> RunConfig:
        return RunConfig(
            strategy=strategy,
            api=api,
            concurrency=c,
            processes=p,
            rate=rate,
            duration_s=self.duration_s,
            warmup_s=self.warmup_s,
            count=self.count,
            seed=self.seed + rep,
            target=self.target,
            server=ServerKnobs(delay_ms=delay),
            **self.options,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepPlan:
        known = {f.name for f in fields(cls)}
        run_fields = {f.name for f in fields(RunConfig)}
        options = dict(data.pop("options", {}))
        for key in [k for k in data if k not in known]:
            if key not in run_fields:
                raise ConfigError(f"unknown sweep setting {key!r}")
            options[key] = data.pop(key)
        axes = {"strategies", "apis", "concurrency", "processes", "rates", "server_delay_ms"}
        for key in axes & data.keys():
            value = data[key]
            data[key] = tuple(value) if isinstance(value, list | tuple) else (value,)
        if "rates" in data:  # TOML has no null: 0 (or "closed") means closed loop
            data["rates"] = tuple(None if r in (0, "closed", None) else float(r) for r in data["rates"])
        return cls(**data, options=options)


def read_plan(path: str | os.PathLike[str], **overrides: Any) -> tuple[SweepPlan, str | None]:
    """Read a TOML plan: keys named like the plan's fields (lists for the axes),
    other RunConfig fields for every point, and ``output`` (the results folder)."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read sweep plan {path}: {exc}") from None
    output = data.pop("output", None)
    return SweepPlan.from_dict({**data, **overrides}), output


@dataclass(frozen=True)
class Point:
    config: RunConfig
    repeat: int

    @property
    def key(self) -> str:
        c = self.config
        load = f"r{c.rate:g}" if c.rate else "closed"
        return f"{c.strategy}-{c.api}-c{c.concurrency}-p{c.processes}-{load}-d{c.server.delay_ms:g}-rep{self.repeat}"

    def argv(self, out: Path) -> list[str]:
        """The ``tsobench run`` command line of this point."""
        c = self.config
        argv = [
            "tsobench",
            "run",
            "--strategy",
            c.strategy,
            "--api",
            c.api,
            "--concurrency",
            str(c.concurrency),
            "--processes",
            str(c.processes),
            "--duration",
            f"{c.duration_s:g}",
            "--warmup",
            f"{c.warmup_s:g}",
            "--count",
            str(c.count),
            "--seed",
            str(c.seed),
            "--output",
            str(out),
            "--quiet",
        ]
        defaults = RunConfig(strategy=c.strategy)
        for name, flag in (
            ("rate", "--rate"),
            ("target", "--target"),
            ("pool_size", "--pool-size"),
            ("streams", "--streams"),
            ("max_batch", "--max-batch"),
            ("batch_wait_us", "--batch-wait-us"),
            ("max_inflight", "--max-inflight"),
            ("connections", "--connections"),
            ("timeout_s", "--timeout"),
            ("cluster_id", "--cluster-id"),
            ("target_metrics", "--target-metrics"),
            ("scheduler", "--scheduler"),
            ("server_host", "--server-host"),
        ):
            value = getattr(c, name)
            if value is not None and value != getattr(defaults, name):
                argv += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        for name in ("delay_ms", "jitter_ms", "fail_rate"):
            value = getattr(c.server, name)
            if value:
                argv += [f"--server-{name.replace('_', '-')}", f"{value:g}"]
        return argv


@dataclass
class PointOutcome:
    key: str
    status: str  # ok | dirty (errors/violations) | failed | interrupted | skipped
    result: str | None
    exit_code: int | None
    wall_s: float
    error: str | None = None
    summary: dict[str, Any] | None = None


def _summary(r: results.RunResult) -> dict[str, Any]:
    m = r.metrics
    return {
        "throughput_tps": round(m["throughput_tps"], 1),
        "p99_us": m["latency_us"]["p99"],
        "requests_ok": m["requests_ok"],
        "violations": r.correctness["violations"],
        "requests_failed": m["requests_failed"],
    }


class Sweep:
    """Runs a plan's points into ``out``; see the module docstring."""

    def __init__(self, plan: SweepPlan, out: Path, name: str, command: list[str]) -> None:
        self.plan, self.out, self.name, self.command = plan, out, name, command
        self.points = plan.points()
        self.outcomes: dict[str, PointOutcome] = {}
        self.interrupted = False

    def result_path(self, point: Point) -> Path:
        return self.out / f"{point.key}.json"

    def completed(self, point: Point) -> results.RunResult | None:
        """The point's result when a finished run already wrote it (for --resume)."""
        try:
            result = results.read(self.result_path(point))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return result if result.status == "completed" else None

    def write_manifest(self) -> None:
        manifest = {
            "schema_version": MANIFEST_VERSION,
            "kind": "tsobench-sweep",
            "name": self.name,
            "command": self.command,
            "plan": self.plan.to_dict(),
            "interrupted": self.interrupted,
            "points": [
                {
                    "key": p.key,
                    "repeat": p.repeat,
                    "command": p.argv(self.result_path(p)),
                    "config": p.config.to_dict(),
                    **asdict(self.outcomes.get(p.key, _pending(p))),
                }
                for p in self.points
            ],
        }
        write_atomically(self.out / MANIFEST, json.dumps(manifest, indent=1) + "\n")

    def run(self, resume: bool, on_point: Callable[[Point, PointOutcome], None]) -> dict[str, PointOutcome]:
        self.out.mkdir(parents=True, exist_ok=True)
        for point in self.points:
            done = self.completed(point) if resume else None
            if done is not None:
                outcome = PointOutcome(
                    point.key, "skipped", self.result_path(point).name, None, 0.0, summary=_summary(done)
                )
            else:
                outcome = self._run_point(point)
            self.outcomes[point.key] = outcome
            self.write_manifest()
            on_point(point, outcome)
            if self.interrupted:
                break
        self.write_manifest()
        return self.outcomes

    def _run_point(self, point: Point) -> PointOutcome:
        path = self.result_path(point)
        argv = [sys.executable, "-P", "-m", "tsobench.bench", *point.argv(path)[1:]]
        limit = hard_limit_s(point.config) + SPAWN_SLACK_S
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            _, stderr = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return PointOutcome(
                point.key, "failed", None, None, time.monotonic() - started, error=f"killed after {limit:.0f}s (hung)"
            )
        except KeyboardInterrupt:
            # Ask the run to stop early and save what it measured, then stop the sweep.
            self.interrupted = True
            os.killpg(proc.pid, signal.SIGINT)
            try:
                _, stderr = proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                stderr = ""
            return PointOutcome(
                point.key,
                "interrupted",
                path.name if path.exists() else None,
                proc.returncode,
                time.monotonic() - started,
            )
        wall = time.monotonic() - started
        if proc.returncode in (0, 3) and path.exists():
            status = "ok" if proc.returncode == 0 else "dirty"
            return PointOutcome(
                point.key, status, path.name, proc.returncode, wall, summary=_summary(results.read(path))
            )
        tail = " | ".join((stderr or "").strip().splitlines()[-3:])
        return PointOutcome(point.key, "failed", None, proc.returncode, wall, error=tail or "no result written")


def dirty_points(sweep: Sweep) -> list[str]:
    """``key: verdict`` of every point that makes the sweep exit 3: a safe
    strategy's point that was not clean (``verdict.judge``), or that left no
    result at all. The negative control failing is what it is for."""
    from tsobench.strategies.registry import get

    dirty = []
    for point in sweep.points:
        outcome = sweep.outcomes.get(point.key)
        if outcome is None:
            continue
        if outcome.result is None:
            if get(point.config.strategy).safe:
                dirty.append(f"{point.key}: {outcome.status} ({outcome.error or 'no result'})")
            continue
        try:
            judgement = results.read(sweep.out / outcome.result).judgement
        except (OSError, ValueError, KeyError, TypeError) as exc:
            dirty.append(f"{point.key}: unreadable result ({exc})")
            continue
        if judgement.dirty:
            dirty.append(f"{point.key}: {judgement}")
    return dirty


def _pending(point: Point) -> PointOutcome:
    return PointOutcome(point.key, "pending", None, None, 0.0)


def estimate_s(plan: SweepPlan) -> float:
    """A guess of a sweep's wall time (load + about 2 s start-up per point)."""
    return sum(p.config.expected_seconds() + 2.0 for p in plan.points())
