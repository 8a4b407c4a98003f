"""How sure a figure is: medians with bootstrap confidence intervals, and the rule for calling two apart.

One run per point is the default, and on a shared machine the same point can
differ by half between two runs, so a figure without its spread invites
rankings the data cannot support. The samples of a point are its repeats'
figures; with a single run, the run's own measured intervals (its timeline),
which show how steady the run was but not how much a rerun would differ: the
``source`` says which. Intervals are percentile bootstraps of the median (it
assumes nothing about the shape of the distribution and a slow outlier moves
it little), seeded so the same files always give the same report.

Two points are distinguishable only when their intervals do not overlap, and a
ratio only when its interval excludes 1; everything else is "not
distinguishable", never a ranking.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 5_000
SEED = 0  # fixed: a report made twice from the same files says the same thing
SHORT_TAIL = 0.5  # a last interval shorter than this share of --interval is left out: its rate is noise
NO_VALUE = "-"


@dataclass(frozen=True)
class Samples:
    """The values a point's figure is estimated from, and where they came from."""

    values: tuple[float, ...]
    source: str  # "repeats" | "intervals" (of one run) | "one run" (a single figure: no interval)

    def __len__(self) -> int:
        return len(self.values)

    def describe(self) -> str:
        n = len(self.values)
        if self.source == "intervals":
            return f"{n} intervals of one run"
        return f"{n} {'repeat' if n == 1 else 'repeats'}" if self.source == "repeats" else self.source


@dataclass(frozen=True)
class Estimate:
    """A median with its confidence interval; ``low``/``high`` are None with fewer than two samples."""

    median: float | None
    low: float | None
    high: float | None
    samples: Samples
    confidence: float = CONFIDENCE

    @property
    def known(self) -> bool:
        return self.low is not None and self.high is not None

    def overlaps(self, other: Estimate) -> bool:
        """Whether the two intervals share any value (an unknown interval overlaps everything)."""
        if not (self.known and other.known):
            return True
        assert self.low is not None and self.high is not None and other.low is not None and other.high is not None
        return self.low <= other.high and other.low <= self.high

    def distinguishable_from(self, other: Estimate) -> bool:
        return not self.overlaps(other)

    def format(self, spec: str = ",.0f", scale: float = 1.0) -> str:
        """``23,596 [21,004, 25,310]``; ``23,596 [-]`` without an interval; ``-`` without a value."""
        if self.median is None:
            return NO_VALUE
        text = format(self.median * scale, spec)
        if self.low is None or self.high is None:
            return f"{text} [{NO_VALUE}]"
        return f"{text} [{format(self.low * scale, spec)}, {format(self.high * scale, spec)}]"

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class Ratio:
    """``value`` = median of the numerator / median of the denominator, with its confidence interval."""

    value: float | None
    low: float | None
    high: float | None
    confidence: float = CONFIDENCE

    @property
    def known(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def distinguishable(self) -> bool:
        """The interval excludes 1: the two medians differ at this confidence."""
        return self.beyond(0.0) != 0

    def beyond(self, effect: float) -> int:
        """+1 when the whole interval lies above 1 + ``effect``, -1 when below 1 - ``effect``, else 0
        (criterion.rs's rule: a change counts only when all of its interval exceeds the noise threshold)."""
        if not self.known:
            return 0
        assert self.low is not None and self.high is not None
        if self.low > 1 + effect:
            return 1
        if self.high < 1 - effect:
            return -1
        return 0

    def __str__(self) -> str:
        """``1.8x [1.6, 2.0]``."""
        if self.value is None:
            return NO_VALUE
        bounds = f"{_x(self.low)}, {_x(self.high)}" if self.low is not None and self.high is not None else NO_VALUE
        return f"{_x(self.value)}x [{bounds}]"

    def claim(self) -> str:
        """What may be said: the ratio when it is distinguishable, otherwise "not distinguishable"."""
        return str(self) if self.distinguishable else "not distinguishable"

    def change(self) -> str:
        """The ratio as a change in percent: ``-48.1 % [-51.0, -45.2]``."""
        if self.value is None:
            return NO_VALUE
        text = f"{_percent(self.value)} %"
        if not self.known:
            return f"{text} [{NO_VALUE}]"
        assert self.low is not None and self.high is not None
        return f"{text} [{_percent(self.low)}, {_percent(self.high)}]"


def _x(value: float) -> str:
    """A factor with two significant digits at least: 1.8, 12, 0.52."""
    return f"{value:.1f}" if 1 <= abs(value) < 10 else f"{value:.2g}" if abs(value) < 1 else f"{value:,.0f}"


def _percent(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}"


def _medians(values: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The medians of ``resamples`` resamples (with replacement) of ``values``."""
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    result: np.ndarray = np.median(values[picks], axis=1)
    return result


def _bounds(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def _check(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1) (got {confidence!r})")


def median_ci(
    samples: Samples, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED
) -> Estimate:
    """The median of ``samples`` and its percentile-bootstrap interval."""
    _check(confidence)
    values = np.asarray(samples.values, dtype=float)
    if not len(values):
        return Estimate(None, None, None, samples, confidence)
    median = float(np.median(values))
    if len(values) < 2:
        return Estimate(median, None, None, samples, confidence)
    low, high = _bounds(_medians(values, np.random.default_rng(seed), resamples), confidence)
    return Estimate(median, low, high, samples, confidence)


def ratio_ci(
    numerator: Samples,
    denominator: Samples,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Ratio:
    """The ratio of two medians with its interval: both samples resampled independently, the ratio
    of each pair of resampled medians, its percentiles. No interval when either side has fewer than
    two samples; no ratio when either has none or the denominator's median is 0."""
    _check(confidence)
    top, bottom = np.asarray(numerator.values, dtype=float), np.asarray(denominator.values, dtype=float)
    if not len(top) or not len(bottom) or np.median(bottom) == 0:
        return Ratio(None, None, None, confidence)
    value = float(np.median(top) / np.median(bottom))
    if len(top) < 2 or len(bottom) < 2:
        return Ratio(value, None, None, confidence)
    rng = np.random.default_rng(seed)
    top_draws, bottom_draws = _medians(top, rng, resamples), _medians(bottom, rng, resamples)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = top_draws / bottom_draws
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return Ratio(value, None, None, confidence)
    low, high = _bounds(draws, confidence)
    return Ratio(value, low, high, confidence)


# --- the samples of a point ---------------------------------------------------------------------


@dataclass(frozen=True)
class RunFigures:
    """What one run contributes to its point's samples: its own figures and its measured intervals'."""

    tps: float
    p99_us: float | None  # None: nothing answered
    interval_tps: tuple[float, ...]  # measured intervals only (no warm-up, no short tail)
    interval_p99_us: tuple[float, ...]  # the measured intervals that answered something

    @classmethod
    def of(cls, run: Mapping[str, Any]) -> RunFigures:
        """From a loader row (``throughput_tps``, ``p99_us``, ``timeline``, ``measured_s``, ``config``)."""
        entries = _measured_intervals(run.get("timeline"), run.get("measured_s"), run.get("config"))
        p99 = run.get("p99_us")
        return cls(
            tps=float(run["throughput_tps"]),
            p99_us=None if p99 is None or _missing(p99) else float(p99),
            interval_tps=tuple(float(e["tps"]) for e in entries),
            interval_p99_us=tuple(float(e["p99_us"]) for e in entries if e.get("p99_us") is not None),
        )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _measured_intervals(timeline: Any, measured_s: Any, config: Any) -> list[Mapping[str, Any]]:
    """The timeline's measured intervals, without a last one too short for its rate to mean anything."""
    if not isinstance(timeline, Sequence):
        return []
    measured = [e for e in timeline if isinstance(e, Mapping) and not e.get("warmup") and e.get("t_s", -1) >= 0]
    if not measured:
        return []
    interval = (config or {}).get("interval_s") if isinstance(config, Mapping) else None
    if not interval and len(measured) > 1:
        interval = measured[1]["t_s"] - measured[0]["t_s"]
    if interval and not _missing(measured_s) and measured_s - measured[-1]["t_s"] < SHORT_TAIL * interval:
        measured = measured[:-1]
    return measured


@dataclass(frozen=True)
class PointSamples:
    tps: Samples
    p99_us: Samples


def point_samples(runs: Sequence[RunFigures]) -> PointSamples:
    """Repeats: one value per run. One run: its measured intervals (when it has at least two)."""
    if len(runs) > 1:
        p99s = tuple(r.p99_us for r in runs if r.p99_us is not None)
        return PointSamples(Samples(tuple(r.tps for r in runs), "repeats"), Samples(p99s, "repeats"))
    if not runs:
        return PointSamples(Samples((), "repeats"), Samples((), "repeats"))
    (run,) = runs
    tps = Samples(run.interval_tps, "intervals") if len(run.interval_tps) > 1 else Samples((run.tps,), "one run")
    p99 = (
        Samples(run.interval_p99_us, "intervals")
        if len(run.interval_p99_us) > 1
        else Samples(() if run.p99_us is None else (run.p99_us,), "one run")
    )
    return PointSamples(tps, p99)


@dataclass(frozen=True)
class PointEstimates:
    """A point's throughput and p99, each a median with its interval."""

    tps: Estimate
    p99_us: Estimate


def estimate(samples: PointSamples, confidence: float = CONFIDENCE) -> PointEstimates:
    """A point's throughput and p99 with their intervals (``estimate(point_samples(runs))``)."""
    return PointEstimates(median_ci(samples.tps, confidence), median_ci(samples.p99_us, confidence))
