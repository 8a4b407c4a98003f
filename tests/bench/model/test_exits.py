"""Exit codes: one table, and a run's code from its verdict and status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tsobench.bench.model import exits
from tsobench.bench.model.results import RunResult
from tsobench.bench.model.verdict import Judgement, Verdict

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"
README = Path(__file__).resolve().parents[3] / "README.md"


def run_with(verdict: Verdict, status: str = "completed") -> RunResult:
    data = json.loads((FIXTURES / "dispatcher-asyncio-c8-rate500.json").read_text())
    data.update(status=status, verdict=Judgement(verdict, "", False).to_dict())
    return RunResult.from_dict(data)


def test_the_codes_are_distinct_and_as_documented():
    codes = {name: value for name, value in vars(exits).items() if name.startswith("EXIT_")}
    assert len(set(codes.values())) == len(codes), codes
    assert (exits.EXIT_OK, exits.EXIT_FAILED, exits.EXIT_USAGE, exits.EXIT_DIRTY, exits.EXIT_INTERRUPTED) == (
        0,
        1,
        2,
        3,
        130,
    )


@pytest.mark.parametrize(
    ("verdict", "status", "code"),
    [
        (Verdict.CLEAN, "completed", exits.EXIT_OK),
        (Verdict.ERRORS, "completed", exits.EXIT_DIRTY),
        (Verdict.STARVED, "completed", exits.EXIT_DIRTY),
        (Verdict.INTERRUPTED, "interrupted", exits.EXIT_INTERRUPTED),
        (Verdict.ERRORS, "interrupted", exits.EXIT_INTERRUPTED),  # stopped early: what was measured is saved
        (Verdict.VIOLATIONS, "interrupted", exits.EXIT_DIRTY),  # violations say 3 however the run ended
        (Verdict.FAILED, "failed", exits.EXIT_DIRTY),
    ],
)
def test_a_runs_code_follows_its_verdict_and_status(verdict, status, code):
    assert exits.exit_code(run_with(verdict, status)) == code


def test_the_readmes_exit_codes_section_names_every_code():
    section = README.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    header = section.strip().splitlines()[0]  # | command | 0 | 1 | ...
    columns = {cell.strip() for cell in header.strip("|").split("|")}
    for name, value in vars(exits).items():
        if name.startswith("EXIT_"):
            assert str(value) in columns or f"exits {value}" in section, f"{name} = {value} is not in the README"
