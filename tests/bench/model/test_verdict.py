"""One verdict per run, read from its results document (pure units on hand-made documents)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tsobench.bench.model.results import RunResult
from tsobench.bench.model.verdict import Judgement, Verdict, error_list, is_safe, judge, shard_error, stored

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"


def result(failed: int, faults: list[dict], unrecovered: int = 0, starved: int = 0) -> dict:
    return {
        "status": "completed",
        "strategy": {"name": "pool", "safe": True},
        "correctness": {"violations": 0, "checked": 10},
        "metrics": {
            "requests_failed": failed,
            "errors": {"UNAVAILABLE": failed},
            "callers": 4,
            "fairness": {"starved_callers": starved},
            "unrecovered_callers": unrecovered,
        },
        "faults": faults,
    }


def fault(failed: int, recovered: bool = True) -> dict:
    return {"spec": "kill@1s:300ms", "failed_requests": failed, "recovered": recovered, "error": None}


def test_the_verdict_expects_the_failures_of_recovered_faults():
    assert judge(result(7, [fault(7)])).verdict is Verdict.CLEAN
    assert judge(result(7, [fault(7, recovered=False)])).verdict is Verdict.UNRECOVERED
    assert judge(result(7, [fault(7)], unrecovered=1)).verdict is Verdict.STARVED
    errors = judge(result(9, [fault(7)]))
    assert errors.verdict is Verdict.ERRORS and "2 failed" in errors.detail
    assert judge(result(7, [])).verdict is Verdict.ERRORS  # without faults every failure is an error


def test_a_shard_failure_reads_from_error_and_from_the_older_failure_key():
    for key in ("error", "failure"):
        judgement = judge({"status": "failed", "shards": [{"index": 0, key: "worker lost"}]})
        assert judgement.verdict is Verdict.FAILED and judgement.detail == "worker lost"


def test_the_worst_that_applies_wins_in_the_declared_order():
    assert [v.rank for v in Verdict] == list(range(len(Verdict))) and Verdict.FAILED.rank == 0
    violated = result(3, [], starved=1)
    violated["correctness"] = {"violations": 2, "duplicates": 2, "checked": 10}
    judgement = judge(violated)
    assert judgement.verdict is Verdict.VIOLATIONS
    assert judgement.detail == "2 (duplicates 2, out of order 0, mismatched 0)"
    starved = judge(result(3, [], starved=1))
    assert starved.verdict is Verdict.STARVED and starved.detail == "1 of 4 callers got no reply"
    assert judge({**result(0, []), "status": "interrupted"}).verdict is Verdict.INTERRUPTED
    clean = judge(result(0, []))
    assert clean.clean and clean.detail == "10 timestamps checked"


def test_a_dead_caller_is_an_error_even_without_failed_requests():
    crashed = result(0, [])
    crashed["metrics"]["crashes"] = 2
    judgement = judge(crashed)
    assert judgement.verdict is Verdict.ERRORS and "2 caller(s) or thread(s) died" in judgement.detail


def test_the_unsafe_control_and_the_baseline_are_never_dirty():
    failing = result(5, [])
    assert judge(failing).dirty
    control = judge({**failing, "strategy": {"name": "unsafe-shared", "safe": False}})
    assert control.negative_control and not control.dirty and "negative control" in str(control)
    baseline = judge({**failing, "strategy": {"name": "null", "safe": True, "baseline": True}})
    assert baseline.baseline and not baseline.dirty
    interrupted_control = Judgement(Verdict.INTERRUPTED, "", negative_control=True)
    assert interrupted_control.dirty  # an interrupted control measured nothing it was for
    assert is_safe({}) and not is_safe({"strategy": {"safe": False}})


def test_a_stored_verdict_is_read_back_and_an_old_file_is_judged_once_whole():
    judgement = judge(result(5, []))
    record = judgement.to_dict()
    assert record == {
        "verdict": "errors",
        "detail": judgement.detail,
        "negative_control": False,
        "baseline": False,
        "dirty": True,
    }
    assert Judgement.from_dict(record) == judgement
    # stored wins over the figures; a record that is not a verdict is ignored
    assert stored({**result(0, []), "verdict": record}).verdict is Verdict.ERRORS
    assert stored({**result(5, []), "verdict": {"verdict": "nonsense"}}).verdict is Verdict.ERRORS
    assert stored(result(0, [])).clean


def test_a_fixture_without_a_stored_verdict_gets_the_same_judgement_as_judge():
    data = json.loads((FIXTURES / "dispatcher-asyncio-c8-rate500.json").read_text())
    assert "verdict" not in data
    assert RunResult.from_dict(data).judgement == judge(data)


def test_error_lists_and_shard_errors_read_for_a_person():
    assert error_list({}) == "-"
    assert error_list({"timeout": 2, "UNAVAILABLE": 1_200}) == "UNAVAILABLE 1,200, timeout 2"
    assert shard_error({"index": 0}) is None
    failed = judge({"status": "failed", "shards": [{"error": "a"}, {"error": "a"}, {"failure": "b"}]})
    assert failed.detail == "a; b"  # each reason once, in order
    assert judge({"status": "failed", "shards": []}).detail == "no result"


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_verdict_prints_its_word_first(verdict):
    assert str(Judgement(verdict, "why", False)).startswith(f"{verdict.value}: why")
