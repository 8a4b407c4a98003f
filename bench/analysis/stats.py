"""How sure a figure is, and the one rule for calling two figures apart.

Samples (``Samples.source``) say what a figure's spread can stand for:
- ``repeats``: one value per independent run of the point (``--repeat``): what a rerun would do.
- ``batches``: one run's timeline as batch means. Consecutive intervals of a run correlate (a busy
  neighbour, a collection, the server's own rhythm last longer than one interval), so they are not
  independent draws. Intervals are grouped into batches of 1, 2, 4, ... intervals, and the first
  size whose batch means have a lag-1 autocorrelation of at most ``MAX_LAG1`` with at least
  ``MIN_BATCHES`` batches is used. They show how much the run moved within itself, which on a shared
  machine is less than how much a rerun moves: decide on repeats where it matters.
- ``steadiness``: one run's intervals that do not pass that rule: shown (their range), never used
  to call anything apart.

Medians get an order-statistic interval: [x(k), x(n+1-k)] of the sorted samples covers the true
median with probability 1 - 2 P(Binomial(n, 1/2) <= k - 1) whatever the distribution (continuous,
independent samples), so the confidence stated is the coverage it has. The largest k that reaches
the asked confidence is taken; where even [min, max] falls short (3 samples: 75 %, 5: 93.8 %) that
range is given with its real confidence and ``Estimate.needed`` says how many samples reach the
asked one (6 for 95 %).

The one rule for "distinguishable" (``compare_samples``), used by the findings and ``compare``: the
change NEW / BASE is the ratio of the two sides' geometric means, its interval Welch's t interval
on the difference of the mean logs (valid at small n for figures whose noise is multiplicative,
as throughput and latency are; the coverage test checks it on normal and lognormal data). A change
is "higher" when the whole interval lies above 1 + the minimum effect, "lower" when all of it lies
below 1 - the minimum effect (criterion.rs's rule), "same" (not distinguishable) otherwise, and
"cannot tell" when either side has fewer than two samples or only steadiness samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
MIN_EFFECT = 0.05  # a change smaller than 5 % is noise, however significant (pyperf's and criterion's scale)
SHORT_TAIL = 0.5  # a last interval shorter than this share of --interval is left out: its rate is noise
NO_VALUE = "-"
MIN_BATCHES = 10  # below this many batch means their lag-1 autocorrelation is too rough to trust
MAX_LAG1 = 0.2  # batch means whose lag-1 autocorrelation exceeds this still lean on each other

REPEATS, BATCHES, STEADINESS = "repeats", "batches", "steadiness"
SOURCES = (REPEATS, BATCHES, STEADINESS)
SIGNIFICANT = (REPEATS, BATCHES)  # the only samples that may decide significance
HIGHER, LOWER, SAME, CANNOT_TELL = "higher", "lower", "same", "cannot tell"


@dataclass(frozen=True)
class Samples:
    """The values a figure is estimated from, and where they came from (``SOURCES``)."""

    values: tuple[float, ...]
    source: str
    per_batch: int = 1  # batches: intervals averaged into each value

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"samples come from one of {', '.join(SOURCES)} (got {self.source!r})")

    def __len__(self) -> int:
        return len(self.values)

    @property
    def significant(self) -> bool:
        """Whether these samples may decide a difference (independent, or nearly so)."""
        return self.source in SIGNIFICANT

    def describe(self) -> str:
        n = len(self.values)
        if self.source == BATCHES:
            return f"{n} batch means of one run ({self.per_batch} interval(s) each)"
        if self.source == STEADINESS:
            return f"{n} intervals of one run (steadiness only)"
        return f"{n} {'repeat' if n == 1 else 'repeats'}"


def lag1(values: Sequence[float]) -> float:
    """The lag-1 autocorrelation of a series (0 for a constant one)."""
    x = np.asarray(values, dtype=float)
    x = x - x.mean()
    denominator = float(np.dot(x, x))
    return float(np.dot(x[:-1], x[1:]) / denominator) if denominator > 0 else 0.0


def batch_means(intervals: Sequence[float]) -> Samples:
    """One run's interval figures as batch means long enough that neighbours no longer correlate
    (see the module's rule), or, when no batch size passes it, the intervals as steadiness. A
    remainder that fills no batch is left off the end."""
    values = np.asarray(intervals, dtype=float)
    size = 1
    while len(values) // size >= MIN_BATCHES:
        count = len(values) // size
        means = values[: count * size].reshape(count, size).mean(axis=1)
        if lag1(means) <= MAX_LAG1:
            return Samples(tuple(float(m) for m in means), BATCHES, size)
        size *= 2
    return Samples(tuple(float(v) for v in values), STEADINESS)


@cache
def coverage(n: int, k: int) -> float:
    """How often [x(k), x(n+1-k)] of n independent samples covers the median."""
    return float(1 - 2 * sps.binom.cdf(k - 1, n, 0.5))


def needed(confidence: float) -> int:
    """The fewest samples whose [min, max] covers the median with at least ``confidence``."""
    n = 2
    while coverage(n, 1) < confidence:
        n += 1
    return n


@dataclass(frozen=True)
class Estimate:
    """A median with its interval. ``confidence`` is the interval's real coverage (None for steadiness
    samples, whose range is shown but covers nothing); ``needed``: samples that would reach ``asked``."""

    median: float | None
    low: float | None
    high: float | None
    samples: Samples
    confidence: float | None = None
    asked: float = CONFIDENCE
    needed: int | None = None

    @property
    def known(self) -> bool:
        return self.low is not None and self.high is not None

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


def _check(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1) (got {confidence!r})")


def median_ci(samples: Samples, confidence: float = CONFIDENCE) -> Estimate:
    """The median of ``samples`` and its order-statistic interval (see the module)."""
    _check(confidence)
    values = np.sort(np.asarray(samples.values, dtype=float))
    n = len(values)
    if not n:
        return Estimate(None, None, None, samples, None, confidence)
    median = float(np.median(values))
    if n < 2:
        return Estimate(median, None, None, samples, None, confidence, needed(confidence))
    if not samples.significant:
        return Estimate(median, float(values[0]), float(values[-1]), samples, None, confidence)
    k = 1
    while k + 1 <= n // 2 and coverage(n, k + 1) >= confidence:
        k += 1
    real = coverage(n, k)
    short = needed(confidence) if real < confidence else None
    return Estimate(median, float(values[k - 1]), float(values[n - k]), samples, real, confidence, short)


def prediction_interval(samples: Samples, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Where ONE new sample is expected with ``confidence``: the t prediction interval on the logs
    (multiplicative noise, as ``compare_samples`` assumes), exact for lognormal samples at any n.
    None without two samples that may decide: a range of a few samples would cover a new one far
    less often than it seems (the range of 3 covers it half the time)."""
    _check(confidence)
    values = np.asarray(samples.values, dtype=float)
    n = len(values)
    if not samples.significant or n < 2 or (values <= 0).any():
        return None
    logs = np.log(values)
    half = float(sps.t.ppf((1 + confidence) / 2, n - 1)) * float(logs.std(ddof=1)) * math.sqrt(1 + 1 / n)
    middle = float(logs.mean())
    return math.exp(middle - half), math.exp(middle + half)


@dataclass(frozen=True)
class Change:
    """NEW / BASE: the ratio of geometric means, its interval (``confidence``: its coverage), and
    ``direction``: HIGHER, LOWER, SAME (not distinguishable) or CANNOT_TELL (``why``)."""

    ratio: float | None
    low: float | None
    high: float | None
    confidence: float
    direction: str
    min_effect: float = MIN_EFFECT
    why: str = ""

    @property
    def known(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def distinguishable(self) -> bool:
        return self.direction in (HIGHER, LOWER)

    def __str__(self) -> str:
        """``1.8x [1.6, 2.0]``."""
        if self.ratio is None:
            return NO_VALUE
        bounds = f"{_x(self.low)}, {_x(self.high)}" if self.low is not None and self.high is not None else NO_VALUE
        return f"{_x(self.ratio)}x [{bounds}]"

    def claim(self) -> str:
        """What may be said: the factor when distinguishable, else "not distinguishable" or "cannot tell"."""
        if self.distinguishable:
            return str(self)
        return "not distinguishable" if self.direction == SAME else CANNOT_TELL

    def change(self) -> str:
        """The ratio as a change in percent: ``-48.1 % [-51.0, -45.2]``."""
        if self.ratio is None:
            return NO_VALUE
        text = f"{_percent(self.ratio)} %"
        if self.low is None or self.high is None:
            return f"{text} [{NO_VALUE}]"
        return f"{text} [{_percent(self.low)}, {_percent(self.high)}]"


def _x(value: float) -> str:
    """A factor with two significant digits at least: 1.8, 12, 0.52."""
    return f"{value:.1f}" if 1 <= abs(value) < 10 else f"{value:.2g}" if abs(value) < 1 else f"{value:,.0f}"


def _percent(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}"


def compare_samples(
    base: Samples, new: Samples, *, min_effect: float = MIN_EFFECT, confidence: float = CONFIDENCE
) -> Change:
    """The one rule for "distinguishable" (see the module): NEW / BASE with its Welch interval on logs."""
    _check(confidence)
    if not 0 <= min_effect < 1:
        raise ValueError(f"min_effect must be in [0, 1) (got {min_effect!r})")
    b, n = np.asarray(base.values, dtype=float), np.asarray(new.values, dtype=float)

    def unknown(ratio: float | None, why: str) -> Change:
        return Change(ratio, None, None, confidence, CANNOT_TELL, min_effect, why)

    if not len(b) or not len(n):
        return unknown(None, "no value on one side")
    if (b <= 0).any() or (n <= 0).any():
        bottom = float(np.median(b))
        return unknown(float(np.median(n)) / bottom if bottom > 0 else None, "a zero value on one side")
    lb, ln = np.log(b), np.log(n)
    difference = float(ln.mean() - lb.mean())
    ratio = math.exp(difference)
    if not (base.significant and new.significant):
        return unknown(ratio, "one run a side, its intervals steadiness only (use --repeat 3)")
    if len(b) < 2 or len(n) < 2:
        return unknown(ratio, "one sample on a side: no spread to judge by (use --repeat 3)")
    vb, vn = float(lb.var(ddof=1)) / len(b), float(ln.var(ddof=1)) / len(n)
    spread = math.sqrt(vb + vn)
    if spread > 0:
        df = (vb + vn) ** 2 / (vb**2 / (len(b) - 1) + vn**2 / (len(n) - 1))
        half = float(sps.t.ppf((1 + confidence) / 2, df)) * spread
    else:
        half = 0.0
    low, high = math.exp(difference - half), math.exp(difference + half)
    direction = HIGHER if low > 1 + min_effect else LOWER if high < 1 - min_effect else SAME
    return Change(ratio, low, high, confidence, direction, min_effect)


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
    """Repeats: one value per run. One run: its measured intervals as batch means, or as steadiness
    (``batch_means``); a run without two intervals: its own figure, one repeat."""
    if len(runs) > 1:
        p99s = tuple(r.p99_us for r in runs if r.p99_us is not None)
        return PointSamples(Samples(tuple(r.tps for r in runs), REPEATS), Samples(p99s, REPEATS))
    if not runs:
        return PointSamples(Samples((), REPEATS), Samples((), REPEATS))
    (run,) = runs
    tps = batch_means(run.interval_tps) if len(run.interval_tps) > 1 else Samples((run.tps,), REPEATS)
    p99 = (
        batch_means(run.interval_p99_us)
        if len(run.interval_p99_us) > 1
        else Samples(() if run.p99_us is None else (run.p99_us,), REPEATS)
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
