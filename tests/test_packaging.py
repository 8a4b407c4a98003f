"""One installed package, tsobench: files named like its parts in the current
folder change nothing, and nothing generic is importable from the install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TSOBENCH = shutil.which("tsobench", path=str(Path(sys.executable).parent)) or shutil.which("tsobench")


@pytest.fixture
def decoys(tmp_path: Path) -> Path:
    """A folder whose server.py and bench.py would break anything that imports them."""
    for name in ("server", "bench", "strategies", "protos"):
        (tmp_path / f"{name}.py").write_text(f"raise SystemExit('imported the decoy {name}.py')\n")
    return tmp_path


@pytest.mark.skipif(TSOBENCH is None, reason="the tsobench script is not installed")
def test_a_run_from_a_folder_with_decoys_works(decoys):
    assert TSOBENCH is not None
    args = ["run", "-s", "locked", "-c", "1", "--duration", "0.2", "--warmup", "0", "-q", "-o", "r.json"]
    out = subprocess.run([TSOBENCH, *args], cwd=decoys, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads((decoys / "r.json").read_text())["status"] == "completed"


def test_the_server_module_from_a_folder_with_decoys_works(decoys):
    out = subprocess.run(
        [sys.executable, "-P", "-m", "tsobench.server", "--help"],
        cwd=decoys,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "Usage: python -m tsobench.server" in out.stdout


@pytest.mark.parametrize("name", ["bench", "server", "strategies", "protos"])
def test_only_tsobench_is_importable(tmp_path, name):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", f"import {name}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert f"No module named '{name}'" in out.stderr
