"""The USL fit and the Little's law check."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tsobench.bench.analysis.loader import load_results
from tsobench.bench.analysis.usl import fit_series, fit_usl, littles_law, no_fit_because, usl

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"
N = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256])


def truth(n: np.ndarray | float, lambda_: float, sigma: float, kappa: float) -> np.ndarray | float:
    """The law written out independently of tsobench.bench.analysis.usl."""
    return lambda_ * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def test_the_law_itself() -> None:
    assert usl(1, 100.0, 0.3, 0.2) == pytest.approx(100.0)  # one caller: lambda
    assert usl(10, 100.0, 0.1, 0.01) == pytest.approx(1000 / 2.8)  # 1 + 0.1 * 9 + 0.01 * 10 * 9
    assert usl(np.array([2.0, 50.0]), 10.0, 0.0, 0.0).tolist() == [20.0, 500.0]  # linear without either cost


def test_recovers_known_parameters_from_noisy_data() -> None:
    true = {"lambda_": 1200.0, "sigma": 0.06, "kappa": 0.0004}
    rng = np.random.default_rng(7)
    n = np.repeat(N, 3)  # three repeats per level, 2% noise
    x = truth(n, **true) * (1 + rng.normal(0, 0.02, n.size))
    fit = fit_usl(n, x)
    assert fit is not None and fit.points == n.size
    assert fit.lambda_ == pytest.approx(true["lambda_"], rel=0.05)
    assert fit.sigma == pytest.approx(true["sigma"], abs=0.01)
    assert fit.kappa == pytest.approx(true["kappa"], rel=0.15)
    n_star = math.sqrt((1 - true["sigma"]) / true["kappa"])
    assert fit.n_star == pytest.approx(n_star, rel=0.1)
    assert fit.peak == pytest.approx(truth(n_star, **true), rel=0.05)
    assert fit.peak_measured  # N* ~ 48 lies inside 1..256
    assert fit.r2 > 0.98
    assert 0 < fit.sigma_err < 0.01 and 0 < fit.kappa_err < 1e-4  # standard errors are finite and small


def test_no_crosstalk_means_no_peak() -> None:
    fit = fit_usl(N[:6], truth(N[:6], 500.0, 0.2, 0.0))
    assert fit is not None
    assert fit.kappa == 0 and math.isinf(fit.n_star)
    assert fit.peak == pytest.approx(500 / 0.2, rel=0.01)  # the asymptote lambda / sigma
    assert not fit.peak_measured


def test_needs_more_distinct_levels_than_parameters() -> None:
    assert fit_usl([1, 1, 4, 4], [10, 11, 30, 31]) is None
    # three levels for three parameters: any three points fit exactly (R² 1.000), so no fit and no curve beyond
    assert fit_usl([1, 4, 16], [1000, 3000, 5000]) is None
    assert fit_usl([1, 1, 4, 4, 16, 16], [1000, 1010, 3000, 3030, 5000, 5050]) is None  # repeats add no level
    assert "no fit" in no_fit_because(3) and "needs 4" in no_fit_because(3) and no_fit_because(4) == ""
    assert fit_usl([1, 4, 16, 64], [1000, 3000, 5000, 5500]) is not None


def test_fits_per_series_on_the_fixtures() -> None:
    fits = {f.series: f for f in fit_series(load_results(FIXTURES))}
    assert not any(s.startswith("unsafe-shared") for s in fits)  # no clean closed-loop run to fit
    dispatcher = fits["dispatcher/asyncio"]
    assert dispatcher.levels == 3 and dispatcher.fit is None  # c=1, 4, 16: no more levels than parameters
    assert dispatcher.ceiling is None and "no fit" in dispatcher.no_ceiling_because
    assert fits["pool/thread"].fit is None  # one concurrency level only


def test_littles_law_holds_on_closed_loop_runs() -> None:
    df = load_results(FIXTURES)
    check = littles_law(df)
    closed_clean = df[~df["open_loop"] & (df["requests_failed"] == 0)]
    assert len(check) == len(closed_clean)
    assert check["ratio"].between(0.8, 1.2).all(), check
    assert check["ok"].all()
