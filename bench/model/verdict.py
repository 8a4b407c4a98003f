"""One verdict per run, read from its results document.

The run summary, the exit codes, the sweep and the report all say the same
thing about a run because they all ask ``judge``. It reads only the results
format (a dict as written to the file), so the analysis side can use it too.

With faults (``faults`` in the file), the failures a fault caused until it
recovered are expected, not errors. A fault that did not recover fails the
run, and so does a caller with no successful reply after the last fault's
recovery: that caller is starved (a caller that only failed during a fault was
served by nobody), while one that merely got nothing *during* a fault is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict


class VerdictRecord(TypedDict):
    """``verdict``: the run's one judgement (``verdict.judge``), stored so nobody judges again."""

    verdict: str  # clean | interrupted | errors | starved | unrecovered | violations | failed
    detail: str
    negative_control: bool
    baseline: bool
    dirty: bool  # not clean where clean was expected


class Verdict(StrEnum):
    """Worst first: a run gets the first that applies."""

    FAILED = "failed"  # no shard produced a result
    VIOLATIONS = "violations"  # a timestamp duplicated, out of order or miscounted
    UNRECOVERED = "unrecovered"  # after a fault, requests never succeeded again (or the fault failed)
    STARVED = "starved"  # some caller completed nothing in the measured window (with faults: nothing after them)
    ERRORS = "errors"  # requests failed
    INTERRUPTED = "interrupted"  # stopped early; what was measured is clean
    CLEAN = "clean"

    @property
    def rank(self) -> int:
        """0 for the worst: repeats of a point fold by the worst verdict."""
        return list(Verdict).index(self)


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    detail: str  # the numbers behind the verdict, for a person
    negative_control: bool  # the strategy is marked unsafe: failing is what it is for
    baseline: bool = False  # the harness's own ceiling (null): its failings are the harness's, not a design's

    @property
    def clean(self) -> bool:
        return self.verdict is Verdict.CLEAN

    @property
    def dirty(self) -> bool:
        """Not clean where clean was expected: what makes a sweep exit 3. The negative control failing
        is what it is for; the null baseline measures the harness (its thread-API callers can starve
        under the GIL), so neither makes a sweep dirty, an interrupted control aside."""
        if self.clean or self.baseline:
            return False
        return not (self.negative_control and self.verdict is not Verdict.INTERRUPTED)

    def to_dict(self) -> VerdictRecord:
        return {
            "verdict": self.verdict.value,
            "detail": self.detail,
            "negative_control": self.negative_control,
            "baseline": self.baseline,
            "dirty": self.dirty,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Judgement:
        return cls(
            Verdict(record["verdict"]),
            str(record.get("detail", "")),
            bool(record.get("negative_control", False)),
            bool(record.get("baseline", False)),
        )

    def __str__(self) -> str:
        control = " (negative control: failing is expected)" if self.negative_control and not self.clean else ""
        return f"{self.verdict.value}{': ' + self.detail if self.detail else ''}{control}"


def is_safe(result: Mapping[str, Any]) -> bool:
    """Whether the run's strategy is a safe one, as recorded in the file."""
    return bool(result.get("strategy", {}).get("safe", True))


def stored(result: Mapping[str, Any]) -> Judgement:
    """The verdict a results document carries; a file written before verdicts were stored is judged
    once, whole, by the same rules (never from partial fields)."""
    record = result.get("verdict")
    if isinstance(record, Mapping) and record.get("verdict") in Verdict._value2member_map_:
        return Judgement.from_dict(record)
    return judge(result)


def judge(result: Mapping[str, Any]) -> Judgement:
    metrics = result.get("metrics") or {}
    correctness = result.get("correctness") or {}
    control = not is_safe(result)
    baseline = bool((result.get("strategy") or {}).get("baseline", False))
    crashes = metrics.get("crashes") or 0
    faults = result.get("faults") or []
    starved = (metrics.get("fairness") or {}).get("starved_callers") or 0
    if faults:
        starved = max(starved, metrics.get("unrecovered_callers") or 0)
    failed = (metrics.get("requests_failed") or 0) - sum(f["failed_requests"] for f in faults)
    if result.get("status") == "failed":
        return Judgement(Verdict.FAILED, _shard_failures(result), control, baseline)
    if correctness.get("violations"):
        detail = (
            f"{correctness['violations']:,} (duplicates {correctness.get('duplicates', 0):,}, "
            f"out of order {correctness.get('non_monotonic', 0):,}, mismatched {correctness.get('mismatched', 0):,})"
        )
        return Judgement(Verdict.VIOLATIONS, detail, control, baseline)
    if unrecovered := [f for f in faults if not f["recovered"]]:
        detail = "; ".join(f"{f['spec']}: {f.get('error') or 'no success after it'}" for f in unrecovered)
        return Judgement(Verdict.UNRECOVERED, detail, control, baseline)
    if starved:
        callers = metrics.get("callers") or "?"
        after = " after the faults" if faults else ""
        detail = f"{starved:,} of {callers} callers got no reply{after}"
        return Judgement(Verdict.STARVED, detail, control, baseline)
    if failed or crashes:
        expected = f", besides {metrics['requests_failed'] - failed:,} during faults" if faults else ""
        errors = error_list(metrics.get("errors") or {})
        died = f"{crashes:,} caller(s) or thread(s) died; " if crashes else ""
        return Judgement(Verdict.ERRORS, f"{died}{failed:,} failed ({errors}){expected}", control, baseline)
    if result.get("status") == "interrupted":
        return Judgement(Verdict.INTERRUPTED, "stopped early", control, baseline)
    recovered = f", {len(faults)} fault(s) recovered" if faults else ""
    detail = f"{correctness.get('checked', 0):,} timestamps checked{recovered}"
    return Judgement(Verdict.CLEAN, detail, control, baseline)


def error_list(errors: Mapping[str, int]) -> str:
    """``kind count`` pairs, most frequent first; "-" when there are none."""
    return ", ".join(f"{k} {v:,}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1])) or "-"


def shard_error(shard: Mapping[str, Any]) -> str | None:
    """Why a shard has no result (``error``; files before it said ``failure``)."""
    return shard.get("error") or shard.get("failure")


def _shard_failures(result: Mapping[str, Any]) -> str:
    reasons = [why for s in result.get("shards", []) if (why := shard_error(s))]
    return "; ".join(dict.fromkeys(reasons)) or "no result"
