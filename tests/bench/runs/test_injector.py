"""Whole runs with faults on the embedded server: every safe strategy recovers, and every
timestamp is still checked across the fault (a kill and restart included)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tsobench.bench.model import results
from tsobench.bench.model.config import RunConfig
from tsobench.bench.model.faults import Fault
from tsobench.bench.runs.runner import run
from tsobench.strategies import APIS

pytestmark = pytest.mark.serial  # recovery times and tails under faults: run alone, after the parallel phase

# A restarted server takes a second or so to listen on a busy 2-core machine, and the callers'
# reconnect backoff (and gRPC's) up to another: the window leaves room for both.
KILL = RunConfig(
    strategy="locked", concurrency=4, duration_s=3.5, warmup_s=0.2, faults=(Fault.parse("kill@300ms:100ms"),)
)
ABORT_AND_STALL = RunConfig(
    strategy="locked",
    concurrency=4,
    duration_s=1.6,
    warmup_s=0.2,
    faults=(Fault.parse("abort@300ms"), Fault.parse("stall@700ms:300ms")),
)


def run_and_save(config: RunConfig, tmp_path) -> dict:
    path = results.write(run(config), tmp_path / "run.json")
    return results.read(path).to_dict()


def assert_recovered(data: dict, kinds: list[str]) -> None:
    assert data["correctness"]["violations"] == 0, data["correctness"]
    assert data["correctness"]["checked"] > 0
    assert [f["kind"] for f in data["faults"]] == kinds
    for f in data["faults"]:
        assert f["recovered"], f
        assert f["first_success_after_s"] is not None and f["first_success_after_s"] >= 0
    assert data["metrics"]["unrecovered_callers"] == 0
    failed_in_faults = sum(f["failed_requests"] for f in data["faults"])
    assert data["metrics"]["requests_failed"] == failed_in_faults, data["metrics"]["errors"]
    assert data["status"] == "completed"


@pytest.mark.parametrize("api", APIS)
def test_every_safe_strategy_recovers_from_a_kill_and_restart(safe_strategy, api, tmp_path):
    data = run_and_save(replace(KILL, strategy=safe_strategy, api=api), tmp_path)
    assert_recovered(data, ["kill"])
    kill = data["faults"][0]
    # the callers noticed: the ones in flight failed, or (none in flight) the next waited for the restart
    assert kill["failed_requests"] > 0 or kill["p99_during_us"] >= 100_000, kill
    assert kill["ended_s"] > kill["started_s"] + 0.1  # down, then up again
    assert data["metrics"]["server"] is None  # a restarted server's counters start again from zero
    assert sum(t["ok"] for t in data["timeline"] if not t["warmup"]) == data["metrics"]["requests_ok"]


@pytest.mark.parametrize("api", APIS)
def test_every_safe_strategy_recovers_from_an_abort_and_a_stall(safe_strategy, api, tmp_path):
    data = run_and_save(replace(ABORT_AND_STALL, strategy=safe_strategy, api=api), tmp_path)
    assert_recovered(data, ["abort", "stall"])
    stall = data["faults"][1]
    assert stall["failed_requests"] == 0  # a stall only delays
    assert stall["p99_during_us"] >= 250_000  # the callers waited it out
