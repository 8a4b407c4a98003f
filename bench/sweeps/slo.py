"""``tsobench slo``: the highest open-loop rate a design sustains with its p99 within a target and no errors.

What capacity planners ask for is not the most a design can push (a closed
loop's throughput, paid for with queueing) but the most it sustains at a
latency objective. The search offers load at a rate, as clients would (open
loop, Poisson arrivals, latency from each request's intended start), and
judges each step by its p99 and its verdict: doubling from the first rate
while steps pass (halving while they fail), then bisecting between the highest
passing and the lowest failing rate until they are within the resolution.

Every step of every design runs against ONE server: an embedded one started
once for the whole search, with the run's server knobs (or the ``--target``),
so steps differ only in their rate, not in a fresh server's warm-up. Steps run
through the Python API (``tsobench.bench.run``) in this process, which spawns
their client processes as ``tsobench run`` does; Ctrl-C stops the load of the
step in flight, which is saved as interrupted, and ends the search with what
was measured. Each step's results file and a manifest (``slo.json``, rewritten
after every step) go to the output folder.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsobench.bench.model import results
from tsobench.bench.model.config import RunConfig
from tsobench.bench.model.results import RunResult
from tsobench.bench.model.verdict import Verdict
from tsobench.files import write_atomically
from tsobench.options import ConfigError, Spec, build, click_option, specs, word

if TYPE_CHECKING:
    from tsobench.bench.runs.runner import Progress

MANIFEST = "slo.json"
MANIFEST_VERSION = 1
START_RATE = 1000.0  # requests/s: the first step when --rate is not given
STEP_S = 3.0  # measured seconds per step when neither --duration nor --requests is given
MIN_RATE = 10.0
MAX_RATE = 10_000_000.0
RESOLUTION = 0.1  # stop when the lowest failing rate is within 10 % of the highest passing one
MAX_STEPS = 20
RUNNING, INTERRUPTED = "running", "interrupted"  # a search's state while a step runs, and after a Ctrl-C
SIGNIFICANT = 3  # digits a bisection's rate is rounded to: 4,375.0/s rather than 4,371.09375/s


@dataclass(frozen=True)
class Search:
    """What is searched and how far."""

    p99_ms: float
    start: float = START_RATE
    min_rate: float = MIN_RATE
    max_rate: float = MAX_RATE
    resolution: float = RESOLUTION
    max_steps: int = MAX_STEPS

    def __post_init__(self) -> None:
        if not (self.p99_ms > 0 and math.isfinite(self.p99_ms)):
            raise ConfigError(f"p99-ms must be a positive number (got {self.p99_ms:g})")
        if not 0 < self.min_rate <= self.max_rate:
            raise ConfigError(
                f"min-rate must be positive and at most max-rate (got {self.min_rate:g}, {self.max_rate:g})"
            )
        if not self.min_rate <= self.start <= self.max_rate:
            raise ConfigError(
                f"the first rate ({self.start:g}/s, --rate) must be within [{self.min_rate:g}, {self.max_rate:g}] "
                "(--min-rate, --max-rate)"
            )
        if not 0 < self.resolution < 1:
            raise ConfigError(f"resolution must be within (0, 1) (got {self.resolution:g})")
        if self.max_steps < 1:
            raise ConfigError(f"max-steps must be at least 1 (got {self.max_steps})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Step:
    """One short run at one rate, and whether it met the objective."""

    rate: float  # offered, requests/s
    passed: bool
    interrupted: bool  # stopped early: neither passed nor failed, and the search ends
    why: str
    tps: float  # measured timestamps/s
    rps: float  # measured requests/s
    p99_ms: float | None  # None: nothing answered
    verdict: str
    result: str | None  # its results file, relative to the output folder


def judge_step(result: RunResult, rate: float, p99_ms: float, path: str | None) -> Step:
    """Passed: a clean verdict and a p99 within the target."""
    m, judgement = result.metrics, result.judgement
    p99 = m["latency_us"]["p99"] / 1e3 if m["requests_ok"] else None
    interrupted = result.status == "interrupted"
    if interrupted:
        passed, why = False, "interrupted: not judged"
    elif not judgement.clean:
        passed, why = False, str(judgement) + _few_per_caller(result, rate)
    elif p99 is None:
        passed, why = False, "nothing answered"
    elif p99 > p99_ms:
        passed, why = False, f"p99 {p99:,.2f} ms > {p99_ms:g} ms"
    else:
        passed, why = True, f"p99 {p99:,.2f} ms <= {p99_ms:g} ms, clean"
    return Step(
        rate=rate,
        passed=passed,
        interrupted=interrupted,
        why=why,
        tps=m["throughput_tps"],
        rps=m["throughput_rps"],
        p99_ms=p99,
        verdict=judgement.verdict.value,
        result=path,
    )


FEW_PER_CALLER = 5.0  # requests a caller expects in a step's window below which its Poisson schedule may give none


def _few_per_caller(result: RunResult, rate: float) -> str:
    """Why an open-loop step may call callers starved that simply had nothing scheduled in its window."""
    if result.judgement.verdict is not Verdict.STARVED:
        return ""
    callers, window = result.metrics.get("callers") or 0, result.metrics["measured_s"]
    expected = rate * window / callers if callers else 0.0
    if expected >= FEW_PER_CALLER:
        return ""
    return (
        f" (each of the {callers} callers expected {expected:.1f} requests in the {window:.1f} s window, so "
        "some had none scheduled: lengthen --duration or lower --concurrency)"
    )


def _rounded(rate: float) -> float:
    return float(f"{rate:.{SIGNIFICANT}g}")


def bracket(measure: Callable[[float], Step], search: Search) -> tuple[list[Step], str]:
    """Run steps until the sustainable rate is bracketed; the steps and why the search stopped.

    Invariant: every passing rate so far lies below every failing one (doubling only
    past passes, halving only below failures, bisecting between the two)."""
    steps: list[Step] = []
    rate = search.start
    while True:
        step = measure(rate)
        steps.append(step)
        if step.interrupted:
            return steps, INTERRUPTED
        passing = max((s.rate for s in steps if s.passed), default=None)
        failing = min((s.rate for s in steps if not s.passed), default=None)
        if failing is None:
            assert passing is not None
            if passing >= search.max_rate:
                return steps, f"passes at --max-rate {search.max_rate:g}/s: the sustainable rate is at least that"
            rate = min(passing * 2, search.max_rate)
        elif passing is None:
            if failing <= search.min_rate:
                return steps, f"misses the target even at --min-rate {search.min_rate:g}/s"
            rate = max(failing / 2, search.min_rate)
        else:
            middle = _rounded((passing + failing) / 2)
            if failing / passing - 1 <= search.resolution or not passing < middle < failing:
                return steps, f"bracketed within {failing / passing - 1:.0%} (resolution {search.resolution:.0%})"
            rate = middle
        if len(steps) >= search.max_steps:
            return steps, f"--max-steps {search.max_steps} reached"


@dataclass(frozen=True)
class Outcome:
    """One design's search."""

    strategy: str
    api: str
    p99_ms: float
    steps: tuple[Step, ...]
    stopped: str

    @property
    def best(self) -> Step | None:
        """The highest passing step: the sustainable rate (None: even the lowest missed)."""
        return max((s for s in self.steps if s.passed), key=lambda s: s.rate, default=None)

    @property
    def lowest_failing(self) -> Step | None:
        return min((s for s in self.steps if not s.passed and not s.interrupted), key=lambda s: s.rate, default=None)

    @property
    def interrupted(self) -> bool:
        return self.stopped == INTERRUPTED

    @property
    def design(self) -> str:
        return f"{self.strategy}/{self.api}"

    def bracket_text(self) -> str:
        """``[4,000, 4,400)``: the highest passing rate and the lowest failing one (``-``: none)."""
        low, high = self.best, self.lowest_failing
        return f"[{f'{low.rate:,.0f}' if low else '-'}, {f'{high.rate:,.0f}' if high else '-'})"

    def line(self) -> str:
        best = self.best
        if best is None:
            return f"{self.design}: no rate meets p99 <= {self.p99_ms:g} ms ({self.stopped})"
        return (
            f"{self.design}: sustainable {best.tps:,.0f} ts/s ({best.rate:,.0f} requests/s offered) at p99 <= "
            f"{self.p99_ms:g} ms (p99 {best.p99_ms:,.2f} ms); bracket {self.bracket_text()} requests/s; {self.stopped}"
        )

    def to_dict(self) -> dict[str, Any]:
        best, failing = self.best, self.lowest_failing
        return {
            "strategy": self.strategy,
            "api": self.api,
            "found": best is not None,
            "sustainable_rate": best.rate if best else None,
            "sustainable_tps": best.tps if best else None,
            "p99_ms_at_it": best.p99_ms if best else None,
            "bracket": {"passing": best.rate if best else None, "failing": failing.rate if failing else None},
            "stopped": self.stopped,
            "interrupted": self.interrupted,
            "steps": [dataclasses.asdict(s) for s in self.steps],
        }


OnStep = Callable[[str, int, Step], None]  # design, step number, the step
OnStart = Callable[[str, int, float], None]  # design, step number, rate


def run_searches(
    designs: Sequence[RunConfig],
    search: Search,
    out: Path,
    command: list[str],
    on_start: OnStart | None = None,
    on_step: OnStep | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> list[Outcome]:
    """One search per design, in turn, against one server; the manifest is rewritten after every step.
    Ctrl-C ends the search with what was measured (the last outcome says "interrupted")."""
    from tsobench.bench.runs.runner import RunError, run, serving

    manifest = _Manifest(out / MANIFEST, designs[0], search, command)
    outcomes: list[Outcome] = []
    with serving(designs[0]) as served:  # one server for every step of every design
        manifest.server["address"] = served.address

        def measure(config: RunConfig, steps: list[Step], rate: float) -> Step:
            design = f"{config.strategy}/{config.api}"
            if on_start:
                on_start(design, len(steps) + 1, rate)
            result = run(dataclasses.replace(config, rate=rate), command, on_progress, served=served)
            name = f"{config.strategy}-{config.api}/step{len(steps) + 1:02d}-r{word(rate)}.json"
            results.write(result, out / name)
            steps.append(judge_step(result, rate, search.p99_ms, name))
            manifest.write([*outcomes, Outcome(config.strategy, config.api, search.p99_ms, tuple(steps), RUNNING)])
            if on_step:
                on_step(design, len(steps), steps[-1])
            return steps[-1]

        for config in designs:
            steps: list[Step] = []
            try:
                _, stopped = bracket(functools.partial(measure, config, steps), search)
            except KeyboardInterrupt:  # outside a step's load (a step's own Ctrl-C ends it as interrupted)
                stopped = INTERRUPTED
            except RunError:
                manifest.write(outcomes, status="failed")
                raise
            outcomes.append(Outcome(config.strategy, config.api, search.p99_ms, tuple(steps), stopped))
            if stopped == INTERRUPTED:
                break
    manifest.write(outcomes, status=INTERRUPTED if outcomes and outcomes[-1].interrupted else "completed")
    return outcomes


class _Manifest:
    """``slo.json``: the search, the server, and every design's steps so far."""

    def __init__(self, path: Path, config: RunConfig, search: Search, command: list[str]) -> None:
        self.path = path
        self.head: dict[str, Any] = {"slo_version": MANIFEST_VERSION, "command": command, "search": search.to_dict()}
        knobs = None if config.target is not None else dataclasses.asdict(config.server)
        self.server: dict[str, Any] = {"target": config.target, "embedded": knobs, "address": None}
        if config.target is None:
            self.server["members"] = config.server_members

    def write(self, outcomes: Sequence[Outcome], status: str = "running") -> None:
        doc = {**self.head, "status": status, "server": self.server, "designs": [o.to_dict() for o in outcomes]}
        write_atomically(self.path, json.dumps(doc, indent=1) + "\n")


# --- the command's options --------------------------------------------------------------------


def _for_slo(spec: Spec) -> Spec:
    """The run option as the search takes it: --strategy may give way to --strategies, --rate is the first
    rate, a step's --duration is short."""
    if spec.key == "strategy":
        return dataclasses.replace(spec, default=None, help=spec.help + " Or --strategies for several.")
    if spec.key == "rate":
        option = dataclasses.replace(spec.option, default_text=f"{START_RATE:g}")
        return dataclasses.replace(spec, option=option, help="The search's first rate, requests/s (open loop).")
    if spec.key == "duration_s":
        option = dataclasses.replace(spec.option, default_text=f"{STEP_S:g}")
        return dataclasses.replace(spec, option=option, help="Measured seconds per step.")
    return spec


def click_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Every option of ``tsobench run`` (from RunConfig's declarations), as the search reads them."""
    for spec in reversed(specs(RunConfig)):
        f = click_option(_for_slo(spec))(f)
    return f


def designs(options: dict[str, Any], strategies: str | None, apis: str | None) -> list[RunConfig]:
    """One RunConfig per design: --strategies x --apis, or --strategy and --api. ConfigError on bad input."""
    by_key = {s.key: s for s in specs(RunConfig)}
    if strategies and options.get("strategy"):
        raise ConfigError("give --strategy or --strategies, not both")
    names = _listed(by_key["strategy"], strategies) if strategies else [options.get("strategy")]
    if names == [None]:
        raise ConfigError("give --strategy (or --strategies a,b)")
    api_names = _listed(by_key["api"], apis) if apis else [options["api"]]
    if options.get("faults"):
        raise ConfigError("--fault is not for an SLO search: it measures steady state")
    base = dict(options)
    if base.get("duration_s") is None and base.get("requests") is None:
        base["duration_s"] = STEP_S
    return [build(RunConfig, {**base, "strategy": s, "api": a}) for s in names for a in api_names]


def _listed(spec: Spec, text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"{spec.name}: give at least one")
    for v in values:
        spec.check(v)
    return list(dict.fromkeys(values))
