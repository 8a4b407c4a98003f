"""Sweeps: the cross product of strategies x APIs x concurrency x processes x
rates x server delay x faults (x repeats), each point one ``tsobench run`` in its own
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
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tsobench.files import write_atomically
from tsobench.options import Spec, axis_default, build, specs, to_argv, word, written

from . import results
from .config import ConfigError, RunConfig

MANIFEST = "sweep.json"
MANIFEST_VERSION = 1
SPAWN_SLACK_S = 30.0  # interpreter, server and shard start-up on top of the run's own limit


def _axes() -> dict[str, Spec]:
    """The options a sweep can vary, by plan key (``concurrency``, ``rates``, ``server_delay_ms``...)."""
    return {s.axis_key: s for s in specs(RunConfig) if s.axis_key is not None}


def _shared() -> dict[str, Spec]:
    """The options every point of a sweep shares, by plan key."""
    return {s.key: s for s in specs(RunConfig) if s.axis_key is None}


@dataclass(frozen=True)
class SweepPlan:
    """The values of each axis (those not given take their sweep default) and
    the options every point shares, all by plan key (the TOML keys)."""

    axes: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    repeat: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.repeat, int) or self.repeat < 1:
            raise ConfigError(f"repeat must be at least 1 (got {self.repeat!r})")
        self.points()  # every point is a valid RunConfig, or the plan is not made

    @classmethod
    def of(cls, **keys: Any) -> SweepPlan:
        """``SweepPlan.of(concurrency=(1, 8), duration_s=1.5)``: the same keys as a TOML plan."""
        return cls.from_dict(keys)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepPlan:
        axes, shared = _axes(), _shared()
        unknown = sorted(set(data) - axes.keys() - shared.keys() - {"repeat"})
        if unknown:
            valid = ", ".join(sorted([*axes, *shared, "repeat"]))
            raise ConfigError(f"unknown sweep setting {unknown[0]!r}; valid settings: {valid}")
        return cls(
            axes={k: tuple(axes[k].parse_value(v) for v in _listed(data[k])) for k in axes if k in data},
            settings={k: shared[k].parse(data[k]) for k in shared if k in data},
            repeat=data.get("repeat", 1),
        )

    def values(self, axis: str) -> tuple[Any, ...]:
        return self.axes.get(axis) or axis_default(_axes()[axis])

    def common(self) -> dict[str, Any]:
        """The options of every point: the plan's, over the sweep's own defaults."""
        defaults = {k: s.option.sweep_default for k, s in _shared().items() if s.option.sweep_default is not None}
        if "requests" in self.settings:
            defaults.pop("duration_s", None)  # a plan that counts requests does not also run for a time
        return {**defaults, **self.settings}

    def points(self) -> list[Point]:
        axes = _axes()
        common = self.common()
        points = []
        for values in itertools.product(*(self.values(a) for a in axes), range(self.repeat)):
            *chosen, rep = values
            options = {**common, **{s.key: v for s, v in zip(axes.values(), chosen, strict=True)}}
            options["seed"] = common.get("seed", 0) + rep  # repeats differ in seed
            points.append(Point(build(RunConfig, options), rep))
        return points

    def to_dict(self) -> dict[str, Any]:
        return {**{a: self.values(a) for a in _axes()}, "repeat": self.repeat, **self.common()}


def _listed(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def read_plan(path: str | os.PathLike[str], **overrides: Any) -> tuple[SweepPlan, str | None]:
    """Read a TOML plan: the sweep's keys (lists for the axes), ``repeat`` and
    ``output`` (the results folder); ``overrides`` (the command line's) win."""
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
        """A stable name (its result file's): each axis's value, tagged (c16, p1, r500 or closed, d0)."""
        parts = []
        for spec in _axes().values():
            value, tag = spec.get(self.config), spec.option.key_tag
            if tag is None and value == spec.default:
                continue  # an axis added later stays out of the key until a sweep varies it
            parts.append(written(spec, value) if value is None else f"{tag or ''}{word(value)}")
        return "-".join([*parts, f"rep{self.repeat}"]).replace(":", "-")  # a file name anywhere (faults' 2s:1s)

    def argv(self, out: str | os.PathLike[str]) -> list[str]:
        """The ``tsobench run`` command line of this point (its axes always named)."""
        flags = to_argv(self.config, always=lambda spec: spec.axis_key is not None)
        return ["tsobench", "run", *flags, "--output", str(out), "--quiet"]


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
        write_atomically(self.out / MANIFEST, json.dumps(manifest, indent=1, default=str) + "\n")  # Fault: its spec

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
        limit = point.config.hard_limit_s + SPAWN_SLACK_S
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
