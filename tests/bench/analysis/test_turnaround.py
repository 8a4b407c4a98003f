"""The latency split: round trip, wait for the batch, the client's own turn-around and the callers' timers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tsobench.bench.analysis import turnaround
from tsobench.bench.analysis.loader import load

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"


def _with_turnaround(tmp_path: Path, mean: float, uncorrected: float | None, batching: dict[str, float]) -> Path:
    """SYNTHETIC: a real dispatcher results file with its latency and batching set by hand."""
    source = next(p for p in sorted(FIXTURES.rglob("*.json")) if '"dispatcher"' in p.read_text())
    data = json.loads(source.read_text())
    data["metrics"]["latency_us"]["mean"] = mean
    if uncorrected is not None:
        data["metrics"]["latency_uncorrected_us"] = {**data["metrics"]["latency_us"], "mean": uncorrected}
        data["config"]["rate"] = 1000.0
    base = {"rpcs": 100, "requests": 800, "mean_batch": 8.0, "rpcs_per_s": 10.0, "wait_us_mean": 0.0}
    data["metrics"]["batching"] = {**base, **batching}
    out = tmp_path / "run.json"
    out.write_text(json.dumps(data))
    return out


def test_an_open_loop_mean_splits_into_timer_round_trip_turnaround_and_the_wait(tmp_path: Path) -> None:
    path = _with_turnaround(
        tmp_path, 3000.0, 2500.0, {"rpc_us_mean": 1000.0, "send_gap_us_mean": 100.0, "wake_us_mean": 300.0}
    )
    (split,) = turnaround.splits(load(path))
    assert split.timer_us == pytest.approx(500.0)
    assert split.turnaround_us == pytest.approx(400.0)
    assert split.batch_wait_us == pytest.approx(3000.0 - 500.0 - 1000.0 - 400.0)
    assert split.harness_share == pytest.approx(0.3)
    (note,) = turnaround.notes(load(path))
    assert "mean 3.00 ms = 1.00 round trip + 1.10 waiting for the batch + 0.40 the client's own turn-around" in note
    assert "0.50 the callers' own timers (30% Python's)" in note


def test_a_closed_loop_has_no_timer_and_a_run_without_the_figures_no_note(tmp_path: Path) -> None:
    path = _with_turnaround(
        tmp_path, 2000.0, None, {"rpc_us_mean": 1000.0, "send_gap_us_mean": 0.0, "wake_us_mean": 0.0}
    )
    (split,) = turnaround.splits(load(path))
    assert split.timer_us is None and split.harness_share == 0.0 and split.batch_wait_us == 1000.0
    assert turnaround.notes(load(FIXTURES)) == []  # files written before the turn-around was timed
