"""Sweeps: the cross product of strategies x APIs x concurrency x processes x
rates x server delay x faults (x repeats), each point one ``tsobench run`` in its own
process, all into one folder with a ``sweep.json`` manifest.

Nothing is lost: each point's result file is written when it finishes and the
manifest is rewritten as every point starts and ends; a point that fails or hangs
is recorded and the sweep goes on. A sweep owns its folder (``sweep.lock``: one
sweep at a time), stops cleanly on SIGINT, SIGTERM and SIGHUP (its current point
saves what it measured) and ``--resume`` continues the plan its manifest recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from tsobench.bench.model import results
from tsobench.bench.model.config import ConfigError, RunConfig
from tsobench.bench.runs.stops import on_stop_signals
from tsobench.files import check_writable, write_atomically
from tsobench.options import Spec, axis_default, build, flatten, specs, to_argv, word, written
from tsobench.strategies.registry import unavailable

FALLBACK_SAVED = "saved to"  # how `tsobench run` names the fallback file its results went to
MANIFEST = "sweep.json"
MANIFEST_VERSION = 1
LOCK = "sweep.lock"  # flock()ed by the sweep that owns the folder; holds its pid
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
        _check_keys(data)
        return cls(
            axes={k: _parse(k, data[k]) for k in _axes() if k in data},
            settings={k: _parse(k, data[k]) for k in _shared() if k in data},
            repeat=data.get("repeat", 1),
        )

    def differences(self, given: Mapping[str, Any]) -> list[str]:
        """``key: recorded X, given Y`` for each key of ``given`` (a plan's keys) whose value is
        not this plan's: a resumed sweep must be the sweep it continues, not another one."""
        _check_keys(given)
        recorded = self.to_dict()
        out = []
        for key, value in given.items():
            mine = recorded[key] if key in recorded else _shared()[key].default  # a setting the plan left alone
            theirs = _parse(key, value)
            if mine != theirs:
                out.append(f"{key}: recorded {_shown(key, mine)}, given {_shown(key, theirs)}")
        return out

    def values(self, axis: str) -> tuple[Any, ...]:
        return self.axes.get(axis) or axis_default(_axes()[axis])

    def common(self) -> dict[str, Any]:
        """The options of every point: the plan's, over the sweep's own defaults."""
        defaults = {k: s.option.sweep_default for k, s in _shared().items() if s.option.sweep_default is not None}
        if "requests" in self.settings:
            defaults.pop("duration_s", None)  # a plan that counts requests does not also run for a time
        return {**defaults, **self.settings}

    def points(self) -> list[Point]:
        """Every point, its repeats beside it (the manifest's order; a sweep runs them round-robin)."""
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


def _check_keys(data: Mapping[str, Any]) -> None:
    axes, shared = _axes(), _shared()
    unknown = sorted(set(data) - axes.keys() - shared.keys() - {"repeat"})
    if unknown:
        valid = ", ".join(sorted([*axes, *shared, "repeat"]))
        raise ConfigError(f"unknown sweep setting {unknown[0]!r}; valid settings: {valid}")


def _parse(key: str, value: Any) -> Any:
    """One plan key's value as a plan holds it: an axis's tuple of values, a setting's value, the repeat count."""
    axes = _axes()
    if key in axes:
        return tuple(axes[key].parse_value(v) for v in _listed(value))
    return value if key == "repeat" else _shared()[key].parse(value)


def _shown(key: str, value: Any) -> str:
    """A plan key's value as a command line writes it (``1,4,16`` for an axis)."""
    axes = _axes()
    if key in axes:
        return ",".join(written(axes[key], v) for v in value)
    text = str(value) if key == "repeat" else written(_shared()[key], value)
    return text or "unset"


def _listed(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def plan_keys(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str | None]:
    """A TOML plan's keys (the sweep's, lists for the axes, and ``repeat``) and its
    ``output`` (the results folder), unchecked: ``SweepPlan.from_dict`` checks them."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read sweep plan {path}: {exc}") from None
    output = data.pop("output", None)
    return data, output


def read_plan(path: str | os.PathLike[str], **overrides: Any) -> tuple[SweepPlan, str | None]:
    """Read a TOML plan; ``overrides`` (the command line's) win."""
    data, output = plan_keys(path)
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
            if value == spec.default and (tag is None or not spec.option.key_default):
                continue  # an axis added later stays out of the key until a sweep varies it
            parts.append(written(spec, value) if value is None else f"{tag or ''}{word(value)}")
        return "-".join([*parts, f"rep{self.repeat}"]).replace(":", "-")  # a file name anywhere (faults' 2s:1s)

    def argv(self, out: str | os.PathLike[str]) -> list[str]:
        """The ``tsobench run`` command line of this point (its axes always named)."""
        flags = to_argv(self.config, always=lambda spec: spec.axis_key is not None)
        return ["tsobench", "run", *flags, "--output", str(out), "--quiet"]

    def measured_by(self, result: results.RunResult) -> bool:
        """Whether ``result`` measured this point: every option as planned, duration included
        (a file another plan left in the folder under the same key is not this point's)."""
        planned = json.loads(json.dumps(self.config.to_dict(), default=str))  # as a results file holds it
        return flatten(RunConfig, result.config) == flatten(RunConfig, planned)


@dataclass
class PointOutcome:
    key: str
    status: str  # pending | running | ok | dirty (errors/violations) | failed | interrupted | skipped
    result: str | None
    exit_code: int | None
    wall_s: float
    error: str | None = None  # what went wrong; for a skipped point without a result, why it was skipped
    summary: dict[str, Any] | None = None
    pid: int | None = None  # while running: its `tsobench run` process (a session of its own)


def _summary(r: results.RunResult) -> dict[str, Any]:
    m = r.metrics
    return {
        "throughput_tps": round(m["throughput_tps"], 1),
        "p99_us": m["latency_us"]["p99"],
        "requests_ok": m["requests_ok"],
        "violations": r.correctness["violations"],
        "requests_failed": m["requests_failed"],
        "measured_s": m["measured_s"],
        "verdict": r.judgement.verdict.value,  # the console names it (starved, errors, ...) rather than "dirty"
        "detail": r.judgement.detail,
    }


class FolderError(Exception):
    """The output folder cannot be this sweep's: not writable, full, or another sweep's."""


class FolderLock:
    """A sweep's hold on its output folder, so two sweeps never write one folder at once.

    An exclusive ``flock`` on ``sweep.lock`` in the folder, taken without waiting: the kernel
    drops it when the holder exits, however it exits, so a killed sweep never leaves the
    folder locked. The holder writes its pid into the file, for the message a second sweep
    gets. The file stays (removing it would let a third sweep lock a new file while a second
    still holds the old one)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def take(cls, folder: Path) -> FolderLock:
        """Check ``folder`` is writable with room, then lock it; FolderError says why not."""
        problem = check_writable(folder)
        if problem is not None:
            raise FolderError(problem)
        try:
            fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited: points never hold it
        except OSError as exc:
            raise FolderError(f"cannot lock {folder}/: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise FolderError(
                f"{folder}/ is in use by another sweep (pid {holder}); wait for it to end, or stop it "
                "and continue it with --resume"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd)

    def release(self) -> None:
        os.close(self._fd)  # closing the file drops the lock

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _process_argv(argv: list[str]) -> list[str]:
    """The argv that starts a point: its ``tsobench run`` under ``sweep_point``, which ties it to
    this process's life and passes a stop on exactly once (see that module for why)."""
    run = [sys.executable, "-P", "-m", "tsobench.bench", *argv[1:]]
    return [sys.executable, "-P", "-m", "tsobench.bench.sweeps.point", str(os.getpid()), *run]


class Sweep:
    """Runs a plan's points into ``out``; see the module docstring."""

    def __init__(self, plan: SweepPlan, out: Path, name: str, command: list[str], resuming: bool = False) -> None:
        self.plan, self.out, self.name, self.command, self.resuming = plan, out, name, command, resuming
        self.points = plan.points()
        self.outcomes: dict[str, PointOutcome] = {}
        self.interrupted = False
        self.stop_signal: str | None = None  # the signal that stopped the sweep (SIGINT, SIGTERM, SIGHUP)
        self._point: subprocess.Popen[bytes] | None = None  # the running point
        # what could not be written (a point's results, the manifest): the sweep stops at once, resumable
        self.write_failure: str | None = None

    @classmethod
    def resume(cls, out: Path, given: Mapping[str, Any], name: str | None = None) -> Sweep:
        """The sweep recorded in ``out``'s manifest, to continue: its plan, name and command.
        Plan keys ``given`` with ``--resume`` must be the recorded plan's (a ConfigError lists
        each difference); points whose result measured them are kept."""
        path = out / MANIFEST
        try:
            manifest = json.loads(path.read_text())
            if not isinstance(manifest, dict) or manifest.get("kind") != "tsobench-sweep":
                raise ValueError("not a tsobench sweep manifest")
            plan = SweepPlan.from_dict(manifest["plan"])
            recorded_name, command = str(manifest["name"]), list(manifest["command"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot resume from {path}: {exc}") from None
        differences = plan.differences(given)
        if name is not None and name != recorded_name:
            differences.append(f"name: recorded {recorded_name}, given {name}")
        if differences:
            raise ConfigError(
                f"--resume continues the plan recorded in {path}, and these options differ from it: "
                + "; ".join(differences)
                + " (give none of them, or start a new sweep in another folder)"
            )
        return cls(plan, out, recorded_name, command, resuming=True)

    def result_path(self, point: Point) -> Path:
        return self.out / f"{point.key}.json"

    def done(self, point: Point) -> results.RunResult | None:
        """The point's result when a completed run of exactly this point wrote it (for --resume)."""
        try:
            result = results.read(self.result_path(point))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return result if result.status == "completed" and point.measured_by(result) else None

    def write_manifest(self) -> None:
        manifest = {
            "schema_version": MANIFEST_VERSION,
            "kind": "tsobench-sweep",
            "name": self.name,
            "command": self.command,
            "plan": self.plan.to_dict(),
            "interrupted": self.interrupted,
            "stopped_by": self.stop_signal,
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

    def run(
        self, on_point: Callable[[Point, PointOutcome], None] = lambda point, outcome: None
    ) -> dict[str, PointOutcome]:
        """Run every point, round-robin over repeats (every point once, then every point again,
        so drift on the machine hits every point alike). SIGINT, SIGTERM or SIGHUP stop the
        sweep: the running point is told to stop and saves what it measured, the manifest
        records where the sweep stopped (``interrupted``), and ``run`` returns."""
        self.out.mkdir(parents=True, exist_ok=True)
        with on_stop_signals(self._on_signal):  # to the sweep alone or to its whole group
            self._manifest()
            for point in sorted(self.points, key=lambda p: p.repeat):  # stable: the plan's order per round
                if self.interrupted or self.write_failure is not None:
                    break
                outcome = self._outcome(point)
                self.outcomes[point.key] = outcome
                self._manifest()
                on_point(point, outcome)
            self._manifest()
        return self.outcomes

    def _manifest(self) -> None:
        """The manifest written, or the sweep stopped: a full disk ends it cleanly (``write_failure``), the
        last manifest written still whole (written atomically) for ``--resume``."""
        try:
            self.write_manifest()
        except OSError as exc:
            if self.write_failure is None:
                self.write_failure = f"could not write {self.out / MANIFEST}: {exc.strerror or exc}"

    def _outcome(self, point: Point) -> PointOutcome:
        done = self.done(point) if self.resuming else None
        if done is not None:
            return PointOutcome(point.key, "skipped", self.result_path(point).name, None, 0.0, summary=_summary(done))
        reason = unavailable(point.config.strategy, point.config.api)
        if reason is not None:
            return PointOutcome(point.key, "skipped", None, None, 0.0, error=reason)
        return self._run_point(point)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.interrupted:
            self.interrupted, self.stop_signal = True, signal.Signals(signum).name
        self._stop_point()

    def _stop_point(self) -> None:
        """Pass the stop on to the running point, which stops its load and saves what it
        measured; its ``sweep_point`` process makes any number of these one SIGINT to the run."""
        proc = self._point
        if proc is not None and self.interrupted:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)

    def _run_point(self, point: Point) -> PointOutcome:
        from tsobench.bench.model.exits import EXIT_DIRTY, EXIT_DISK, EXIT_INTERRUPTED, EXIT_OK

        path = self.result_path(point)
        if (problem := check_writable(self.out)) is not None:  # the disk filled since the last point
            self.write_failure = problem
            return PointOutcome(point.key, "failed", None, None, 0.0, error=problem)
        limit = point.config.hard_limit_s + SPAWN_SLACK_S
        started = time.monotonic()
        # stderr into a file of no name, not a pipe: a point outliving a killed sweep must not
        # fail writing to a reader that is gone, and nothing is left behind.
        with tempfile.TemporaryFile() as stderr:
            self._point = proc = subprocess.Popen(
                _process_argv(point.argv(path)), stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
            )
            try:
                self._stop_point()  # a stop that came while it started
                self.outcomes[point.key] = PointOutcome(point.key, "running", None, None, 0.0, pid=proc.pid)
                self._manifest()
                proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                error = f"killed after {limit:.0f}s (hung)"
                return PointOutcome(point.key, "failed", None, None, time.monotonic() - started, error=error)
            finally:
                self._point = None
            stderr.seek(0)
            lines = stderr.read().decode(errors="replace").strip().splitlines()
            tail = " | ".join(lines[-3:])
        wall = time.monotonic() - started
        if proc.returncode == EXIT_DISK:  # its results are not in the folder: stop here, resumable
            saved_to = next((line for line in lines if line.startswith(FALLBACK_SAVED)), "not saved anywhere")
            self.write_failure = f"could not write {path}: {saved_to}"
            return PointOutcome(point.key, "failed", None, proc.returncode, wall, error=tail or self.write_failure)
        saved = {EXIT_OK: "ok", EXIT_DIRTY: "dirty", EXIT_INTERRUPTED: "interrupted"}.get(proc.returncode)
        stopped = self.interrupted  # the sweep was stopped while this point ran: it is what it saved
        if saved is not None and path.exists():
            status = "interrupted" if stopped else saved
            return PointOutcome(
                point.key, status, path.name, proc.returncode, wall, summary=_summary(results.read(path))
            )
        status = "interrupted" if stopped else "failed"
        return PointOutcome(point.key, status, None, proc.returncode, wall, error=tail or "no result written")


def dirty_points(sweep: Sweep) -> list[str]:
    """``key: verdict`` of every point that makes the sweep exit 3: a safe
    strategy's point that was not clean (the verdict its results file stores), or that
    left no result at all. The negative control failing is what it is for; a point
    skipped because its strategy is unavailable here is not a result. Whether a strategy is the
    negative control is what its results recorded (``strategy.safe``), never the live registry: a point
    that left no result counts unless another point of its strategy recorded it unsafe."""
    dirty, unsafe, lost = [], set(), []
    for point in sweep.points:
        outcome = sweep.outcomes.get(point.key)
        if outcome is None or (outcome.status == "skipped" and outcome.result is None):
            continue
        if outcome.result is None:
            lost.append((point, outcome))
            continue
        try:
            result = results.read(sweep.out / outcome.result)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            dirty.append(f"{point.key}: unreadable result ({exc})")
            continue
        if result.strategy.get("safe") is False:
            unsafe.add(point.config.strategy)
        if result.judgement.dirty:
            dirty.append(f"{point.key}: {result.judgement}")
    for point, outcome in lost:
        if point.config.strategy not in unsafe:
            dirty.append(f"{point.key}: {outcome.status} ({outcome.error or 'no result'})")
    return _in_plan_order(sweep, dirty)


def _in_plan_order(sweep: Sweep, lines: list[str]) -> list[str]:
    order = {p.key: i for i, p in enumerate(sweep.points)}
    return sorted(lines, key=lambda line: order.get(line.partition(":")[0], len(order)))


def _pending(point: Point) -> PointOutcome:
    return PointOutcome(point.key, "pending", None, None, 0.0)


def estimate_s(plan: SweepPlan) -> float:
    """A guess of a sweep's wall time (load + about 2 s start-up per point)."""
    return sum(p.config.expected_seconds() + 2.0 for p in plan.points())
