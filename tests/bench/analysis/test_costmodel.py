"""The server cost model: it recovers known costs with intervals that hold them, says which terms its runs
cannot separate (and refuses the predictions that need them), names the runs it predicts badly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tsobench.bench.analysis import costmodel

# SYNTHETIC: a server that spends 100 µs per RPC, 2 µs per timestamp, 300 µs per stream opened and 0.05 of a
# core idling, measured with some noise.
TRUE = {"rpcs": 100e-6, "timestamps": 2e-6, "streams": 300e-6, "seconds": 0.05}


def runs(designs: list[tuple[str, float, float]], noise: float = 0.01, seed: int = 1) -> pd.DataFrame:
    """One run per (strategy, RPCs/s, timestamps per RPC) a second long; per-request opens a stream per RPC."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, (strategy, rps, batch) in enumerate(designs):
        seconds = 1.0 + 0.1 * (i % 3)
        rpcs = rps * seconds
        streams = rpcs if strategy == "per-request" else 0.0
        cpu = sum(TRUE[t] * v for t, v in zip(costmodel.TERMS, (rpcs, rpcs * batch, streams, seconds), strict=True))
        rows.append(
            {
                "run_id": f"run{i}",
                "strategy": strategy,
                "api": "asyncio",
                "concurrency": 8,
                "rate": math.nan,
                "server_rpcs": rpcs,
                "server_timestamps": rpcs * batch,
                "server_streams": streams,
                "measured_s": seconds,
                "server_cpu_s": cpu * (1 + noise * rng.standard_normal()),
                "server_threads": 1,
                "faults": (),
                "status": "completed",
                "target": None,
                "git_commit": "abc123" + ("-dirty" if i % 2 else ""),
                "cpu_model": "cpu",
                "cpu_count": 2,
                "server_members": 1,
            }
        )
    return pd.DataFrame(rows)


MIXED = [
    *[("per-request", r, 1.0) for r in (200, 600, 1200)],
    *[("pool", r, 1.0) for r in (500, 2000, 5000)],
    *[("dispatcher", r, b) for r, b in ((300, 4.0), (1000, 16.0), (2500, 64.0))],
]


def test_recovers_known_costs_with_intervals_that_hold_them() -> None:
    (fit,) = costmodel.fit_all(runs(MIXED)).values()  # "-dirty" builds count as their commit: one server
    assert fit.fitted and fit.runs == 9 and not fit.confounded and fit.r2 > 0.99
    for cost in fit.costs:
        assert cost.low <= cost.value <= cost.high
        assert cost.value == pytest.approx(TRUE[cost.term], rel=0.3, abs=1e-6)
    assert fit.costs[0].low <= TRUE["rpcs"] <= fit.costs[0].high
    # at 64 timestamps per RPC: (1 - 0.05) / (100/64 + 2) µs = 266k ts/s on one core
    ceiling = fit.ceiling(1 / 64, 0.0)
    assert ceiling is not None and ceiling.tps == pytest.approx(0.95 / (100e-6 / 64 + 2e-6), rel=0.1)
    assert ceiling.low <= ceiling.tps <= ceiling.high
    assert "µs per RPC" in costmodel.summary(fit) and "R²" in costmodel.summary(fit)


def test_a_light_load_does_not_carry_the_idle_work_into_the_cost() -> None:
    """The SLO folder's flaw: one light run's CPU per timestamp includes the idling; the fit's does not."""
    (fit,) = costmodel.fit_all(runs(MIXED)).values()
    light = runs([("pool", 200, 1.0)]).iloc[0]
    one_run = light["server_cpu_s"] / light["server_timestamps"]  # what a single light run would say per timestamp
    ceiling = fit.ceiling(1.0, 0.0)
    assert ceiling is not None and 1 / one_run < 0.5 * ceiling.tps  # the one-run figure is far too low


def test_terms_the_runs_cannot_separate_are_named_and_their_predictions_refused() -> None:
    only_per_request = runs([("per-request", r, 1.0) for r in (100, 300, 600, 900, 1200, 1500, 2000)])
    (fit,) = costmodel.fit_all(only_per_request).values()
    assert fit.fitted and fit.confounded
    assert any({"rpcs", "timestamps"} <= set(g) or {"rpcs", "streams"} <= set(g) for g in fit.confounded)
    assert fit.ceiling(1.0, 1.0) is not None  # per-request's own mix: every term moves together, so it is known
    assert fit.ceiling(1 / 64, 0.0) is None  # a batching mix needs the terms apart
    text = costmodel.summary(fit)
    assert "cannot separate" in text and "--strategies per-request,pool,dispatcher" in text


def test_too_few_runs_fit_nothing_and_say_what_would() -> None:
    (fit,) = costmodel.fit_all(runs(MIXED[:3])).values()
    assert not fit.fitted and fit.ceiling(1.0, 0.0) is None
    assert "3 run(s)" in fit.why and "tsobench sweep" in costmodel.summary(fit)


def test_a_run_the_fit_predicts_badly_is_named() -> None:
    df = runs([*MIXED, ("pool", 3000, 1.0)], noise=0.005)
    df.loc[df.index[-1], "server_cpu_s"] *= 3  # something else ran on the server during this one
    (fit,) = costmodel.fit_all(df).values()
    assert [r.run_id for r in fit.bad] == ["run9"]
    assert "Predicted badly, left out of the fit: run9" in costmodel.summary(fit)


def test_runs_against_another_server_or_without_cpu_are_kept_apart() -> None:
    df = runs(MIXED)
    other = runs(MIXED, seed=2).assign(target="pd:2379", run_id=lambda d: "t" + d["run_id"])
    no_cpu = runs(MIXED[:2]).assign(server_cpu_s=math.nan)
    fits = costmodel.fit_all(pd.concat([df, other, no_cpu], ignore_index=True))
    assert len(fits) == 2 and all(f.runs == 9 for f in fits.values())
    assert {f.server.split(" (")[0] for f in fits.values()} == {"the embedded server", "server pd:2379"}


def test_batches_of_about_one_size_cannot_tell_an_rpc_from_a_timestamp() -> None:
    """An SLO search at low rates: every batch about one timestamp. Its fit must not claim what a batch of 64
    would cost (the SLO folder's UNREACHABLE came from that)."""
    slo = runs([("dispatcher", r, 1.0 + r / 20_000) for r in (250, 500, 1000, 2000, 3000, 4000)])
    (fit,) = costmodel.fit_all(slo).values()
    assert fit.fitted and ("rpcs", "timestamps") in fit.confounded and not fit.batches_apart
    assert fit.ceiling(1 / 1.1, 0.0) is not None  # within the batches measured
    assert fit.ceiling(1 / 64, 0.0) is None and fit.ceiling(1e-4, 0.0) is None
    assert "separate rpcs and timestamps" in costmodel.summary(fit)
