"""The code stays ruff-clean (lint and format) and mypy-clean, checked with the tests."""

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args):
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_typecheck_tree_is_the_installed_layout():
    """mypy reads .typecheck/tsobench: each of its entries must lead where setuptools maps it."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    tree = ROOT / ".typecheck" / "tsobench"
    expected = {
        tree / name.removeprefix("tsobench.").replace(".", "/"): ROOT / folder for name, folder in mapping.items()
    }
    expected.pop(tree / "tsobench")
    expected |= {tree / p.name: p for p in (ROOT / "tsobench").iterdir() if p.suffix in (".py", ".typed")}
    assert {p for p in tree.iterdir()} == set(expected)
    for link, target in expected.items():
        assert link.resolve() == target.resolve(), link


def test_ci_runs_exactly_the_readme_s_test_command():
    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text()
    command = readme.split("Run the tests", 1)[1].split("```sh\n", 1)[1].split("\n", 1)[0]
    assert command in (root / ".ci" / "run").read_text().splitlines()
