"""The Universal Scalability Law fitted to throughput vs concurrency.

X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1)): lambda is the
throughput of one caller, sigma the share serialised (contention, e.g. one
lock or one stream), kappa the cost of keeping callers coherent (crosstalk).
The fit says where adding callers stops paying (N*) and what the ceiling is;
Little's law (L = X W) checks that the measurements hang together at all.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit

from tsobench.bench.analysis.aggregate import with_series
from tsobench.bench.measure.fairness import LITTLES_LAW_TOLERANCE

PARAMETERS = 3  # lambda, sigma, kappa: a curve through this many levels fits any data exactly, so it says nothing
MIN_LEVELS = PARAMETERS + 1  # distinct concurrency levels a fit needs: more levels than parameters
CEILING_LEVELS = MIN_LEVELS  # a fit sets a ceiling only from this many levels...
CEILING_R2 = 0.8  # ...and this good a fit
KAPPA_ZERO = 1e-12  # below this the fit found no crosstalk: N* is infinite


def usl(n: np.ndarray | float, lambda_: float, sigma: float, kappa: float) -> np.ndarray | float:
    n = np.asarray(n, dtype=float)
    return lambda_ * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


@dataclass(frozen=True)
class UslFit:
    lambda_: float
    sigma: float
    kappa: float
    lambda_err: float
    sigma_err: float
    kappa_err: float
    n_star: float  # concurrency of peak throughput; inf when kappa == 0
    peak: float  # X(n_star), or the asymptote lambda / sigma when kappa == 0
    r2: float
    points: int
    n_max: float  # largest concurrency measured: beyond it the curve is extrapolation
    n_min: float = 1.0  # smallest concurrency measured

    def predict(self, n: np.ndarray | float) -> np.ndarray | float:
        return usl(n, self.lambda_, self.sigma, self.kappa)

    @property
    def peak_measured(self) -> bool:
        """Whether the peak lies inside the measured range."""
        return self.n_star <= self.n_max

    def to_dict(self) -> dict[str, float | int | None]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def fit_usl(callers: np.ndarray | list[float], throughput: np.ndarray | list[float]) -> UslFit | None:
    """Least squares with sigma, kappa in [0, 1] and lambda > 0; None with no more distinct
    concurrency levels than the law has parameters (``no_fit_because`` says so), or when the
    fit does not converge. Three levels for three parameters would give R² 1.000 whatever
    was measured, and a curve beyond the data that nothing supports."""
    n, x = np.asarray(callers, dtype=float), np.asarray(throughput, dtype=float)
    keep = np.isfinite(n) & np.isfinite(x) & (n > 0)
    n, x = n[keep], x[keep]
    if len(np.unique(n)) < MIN_LEVELS or not (x > 0).any():
        return None
    lambda0 = float(np.max(x[n == n.min()] / n.min()))
    best = None
    for sigma0, kappa0 in ((0.1, 0.001), (0.5, 0.01), (0.01, 0.0001), (0.9, 0.1)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                params, cov = curve_fit(
                    usl,
                    n,
                    x,
                    p0=(lambda0, sigma0, kappa0),
                    bounds=([1e-12, 0.0, 0.0], [np.inf, 1.0, 1.0]),
                    x_scale="jac",
                    maxfev=20_000,
                )
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((x - usl(n, *params)) ** 2))
        if best is None or sse < best[0]:
            best = (sse, params, cov)
    if best is None:
        return None
    sse, (lambda_, sigma, kappa), cov = best
    kappa = 0.0 if kappa < KAPPA_ZERO else kappa
    errs = np.sqrt(np.clip(np.diag(cov), 0, None)) if np.all(np.isfinite(cov)) else np.full(3, np.nan)
    sst = float(np.sum((x - x.mean()) ** 2))
    n_star = math.sqrt((1 - sigma) / kappa) if kappa > 0 else math.inf
    if math.isfinite(n_star):
        peak = float(usl(max(n_star, 1.0), lambda_, sigma, kappa))
    else:
        peak = float(lambda_ / sigma) if sigma > 0 else math.inf
    return UslFit(
        lambda_=float(lambda_),
        sigma=float(sigma),
        kappa=float(kappa),
        lambda_err=float(errs[0]),
        sigma_err=float(errs[1]),
        kappa_err=float(errs[2]),
        n_star=n_star,
        peak=peak,
        r2=1 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0),
        points=len(n),
        n_max=float(n.max()),
        n_min=float(n.min()),
    )


def no_fit_because(levels: int) -> str:
    """Why ``fit_usl`` refuses a series of this many distinct levels ("" when it does not)."""
    if levels >= MIN_LEVELS:
        return ""
    return (
        f"{levels} concurrency level(s), a ceiling needs {CEILING_LEVELS} (no fit: {PARAMETERS} parameters fit any 3)"
    )


def fit_cells(fit: UslFit) -> dict[str, str]:
    """The fit's numbers as table cells (shared by the report and the plan)."""

    def pm(value: float, err: float, spec: str) -> str:
        return f"{format(value, spec)} ± {format(err, spec) if math.isfinite(err) else '?'}"

    n_star = "∞" if math.isinf(fit.n_star) else "< 1" if fit.n_star < 1 else f"{fit.n_star:,.1f}"
    return {
        "sigma": pm(fit.sigma, fit.sigma_err, ".4f"),
        "kappa": pm(fit.kappa, fit.kappa_err, ".2e"),
        "lambda": pm(fit.lambda_, fit.lambda_err, ",.0f"),
        "n_star": n_star + ("" if fit.peak_measured else " (extrapolated)"),
        "peak": f"{fit.peak:,.0f}" if math.isfinite(fit.peak) else "∞",
        "r2": f"{fit.r2:.3f}",
    }


@dataclass(frozen=True)
class SeriesFit:
    """One strategy/API (and settings) line and its fit, None when it cannot be fitted."""

    series: str
    strategy: str
    api: str
    levels: int  # distinct concurrency levels measured
    fit: UslFit | None

    @property
    def ceiling(self) -> float | None:
        """The peak of one process, when the fit is good enough to set a ceiling."""
        return self.fit.peak if self.fit is not None and not self.no_ceiling_because else None

    @property
    def no_ceiling_because(self) -> str:
        """Why this fit sets no ceiling ("" when it does)."""
        if self.fit is None:
            return no_fit_because(self.levels) or "the fit did not converge"
        if not self.fit.r2 >= CEILING_R2:
            return f"R² {self.fit.r2:.2f} < {CEILING_R2}"
        if not math.isfinite(self.fit.peak):
            return "no peak (no contention measured)"
        return ""

    def to_dict(self) -> dict[str, object]:
        return {
            "series": self.series,
            "strategy": self.strategy,
            "api": self.api,
            "levels": self.levels,
            "fit": self.fit.to_dict() if self.fit else None,
            "ceiling_tps": self.ceiling,
            "no_ceiling_because": self.no_ceiling_because or None,
        }


def closed_loop_clean(df: pd.DataFrame) -> pd.DataFrame:
    """The rows a fit may use: closed loop and clean (``verdict.judge``), with throughput."""
    return df[~df["open_loop"] & (df["verdict"] == "clean") & (df["throughput_tps"] > 0)]


def fit_series(df: pd.DataFrame) -> list[SeriesFit]:
    """A USL fit per series on every clean closed-loop run of ONE client process
    (repeats included, so their scatter shows in the standard errors): the
    client side's scaling. N is the callers, X timestamps per second."""
    df = closed_loop_clean(with_series(df))  # labelled on all the data: the same labels as everywhere else
    df = df[df["processes"] == 1]
    fits = []
    for series, g in df.groupby("series", sort=True):
        fits.append(
            SeriesFit(
                series=str(series),
                strategy=str(g["strategy"].iloc[0]),
                api=str(g["api"].iloc[0]),
                levels=int(g["total_callers"].nunique()),
                fit=fit_usl(g["total_callers"], g["throughput_tps"]),
            )
        )
    return fits


def littles_law(df: pd.DataFrame) -> pd.DataFrame:
    """Closed loop: throughput x mean latency should equal the number of callers.

    ``ratio`` = implied callers / actual callers; well below 1 means callers
    spend time outside the measured request (client overhead), above 1 means
    the latency or throughput figures disagree.
    """
    rows = closed_loop_clean(df)
    out = pd.DataFrame(
        {
            "run_id": rows["run_id"],
            "strategy": rows["strategy"],
            "api": rows["api"],
            "total_callers": rows["total_callers"],
            "throughput_rps": rows["throughput_rps"],
            "mean_us": rows["mean_us"],
        }
    )
    out["implied_callers"] = out["throughput_rps"] * out["mean_us"] / 1e6
    out["ratio"] = rows["littles_law_ratio"].fillna(out["implied_callers"] / out["total_callers"])  # as recorded
    out["ok"] = (out["ratio"] - 1).abs() <= LITTLES_LAW_TOLERANCE
    return out.reset_index(drop=True)
