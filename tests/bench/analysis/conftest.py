"""Hand-made results for the analysis tests: copies of the real fixtures with what the test needs added.

Every edit is made in a temporary copy, never in results/fixtures (see its README).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"


def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.glob("*.json") if p.name != "pytest-benchmark-smoke.json")


def server_cpu(
    data: dict[str, Any], us_per_rpc: float | None = None, share: float | None = None, threads: int | None = 1
) -> dict[str, Any]:
    """``data`` with ``metrics.server`` recording the server's CPU as DESIGN.md's contract has it: a cost
    per RPC (what a TSO server spends: one message, whatever its count), or ``share`` of a core outright."""
    m = data["metrics"]
    server = m["server"]
    cpu_s = share * m["measured_s"] if share is not None else server["rpcs"] * (us_per_rpc or 0) / 1e6
    server.update(
        cpu_s=cpu_s,
        cpu_share=cpu_s / m["measured_s"],
        cpu_us_per_rpc=cpu_s * 1e6 / server["rpcs"] if server["rpcs"] else None,
        cpu_us_per_ts=cpu_s * 1e6 / server["timestamps"] if server["timestamps"] else None,
    )
    if threads is not None:
        server["threads"] = threads
    return data


@pytest.fixture
def with_cpu() -> Callable[..., dict[str, Any]]:
    """``server_cpu`` as a fixture (a conftest is not imported by name under --import-mode=importlib)."""
    return server_cpu


@pytest.fixture
def copies(tmp_path: Path) -> Callable[..., Path]:
    """``copies(names, edit=None, folder="runs")``: the named fixtures copied into a new folder, each
    passed through ``edit(data) -> data`` first."""

    def make(
        names: Iterable[str], edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None, folder: str = "runs"
    ) -> Path:
        out = tmp_path / folder
        out.mkdir()
        for name in names:
            data = json.loads((FIXTURES / name).read_text())
            (out / name).write_text(json.dumps(edit(data) if edit else data))
        return out

    return make


@pytest.fixture
def copy_one() -> Callable[..., Path]:
    """``copy_one(name, folder, edit=None, as_name=None)``: one fixture copied into ``folder`` (as ``as_name``),
    ``edit(data)`` changing it in place first; returns the copy's path."""

    def make(
        name: str, folder: Path, edit: Callable[[dict[str, Any]], Any] | None = None, as_name: str | None = None
    ) -> Path:
        data = json.loads((FIXTURES / name).read_text())
        if edit:
            edit(data)
        path = folder / (as_name or name)
        path.write_text(json.dumps(data))
        return path

    return make
