"""Strategies by name: built-ins, the reference client and entry-point plugins, none of which can break the tool."""

import dataclasses
import os
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from tsobench import strategies
from tsobench.bench.model.config import RunConfig
from tsobench.options import ConfigError
from tsobench.strategies import registry, tikv


def _plugins(monkeypatch, *eps: EntryPoint) -> None:
    monkeypatch.setattr(
        registry, "entry_points", lambda group: list(eps) if group == registry.ENTRY_POINT_GROUP else []
    )


def _ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=registry.ENTRY_POINT_GROUP)


def test_registry_lists_builtins_and_rejects_unknown_names():
    assert registry.names()[:6] == ["per-request", "locked", "pool", "dispatcher", "unsafe-shared", "null"]
    with pytest.raises(registry.UnknownStrategy, match="choose from per-request"):
        strategies.get("nope")


def test_registry_loads_plugins_from_entry_points(monkeypatch, tmp_path):
    (tmp_path / "my_tso_plugin.py").write_text(
        "from tsobench.strategies import Strategy\n"
        "from tsobench.strategies.pool import AsyncClient, ThreadClient\n"
        "STRATEGY = Strategy('my-plugin', 'a third-party strategy', ThreadClient, AsyncClient)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    _plugins(monkeypatch, _ep("my-plugin", "my_tso_plugin:STRATEGY"))
    assert strategies.get("my-plugin").summary == "a third-party strategy"
    assert registry.names()[-1] == "my-plugin"


def test_a_plugin_that_is_not_a_strategy_is_refused(monkeypatch):
    _plugins(monkeypatch, _ep("bad", "tsobench.strategies.base:APIS"))
    assert "bad" not in registry.names()
    assert "not a tsobench.strategies.Strategy" in registry.problems()["bad"]


def test_a_plugin_whose_import_raises_is_listed_with_its_error_and_the_rest_works(monkeypatch, tmp_path):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('the plugin is broken\\non two lines')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _plugins(monkeypatch, _ep("broken", "broken_plugin:STRATEGY"), _ep("missing", "no_such_module:STRATEGY"))
    problems = registry.problems()
    assert problems["broken"].endswith("failed to load: RuntimeError: the plugin is broken on two lines")
    assert "ModuleNotFoundError" in problems["missing"]
    assert registry.get("dispatcher").name == "dispatcher"
    with pytest.raises(ConfigError, match=r"'broken' is unavailable: .*RuntimeError"):
        RunConfig(strategy="broken").runnable()  # asked when it runs: a sweep plan may name it and skip it


def test_a_plugin_named_like_a_builtin_is_refused_and_the_builtin_wins(monkeypatch, tmp_path):
    (tmp_path / "impostor.py").write_text(
        "from tsobench.strategies import Strategy\n"
        "from tsobench.strategies.locked import _asyncio, _thread\n"
        "STRATEGY = Strategy('pool', 'not the pool', _thread, _asyncio)\n"
        "TWIN = Strategy('twin', 'first', _thread, _asyncio)\n"
        "TWIN2 = Strategy('twin', 'second', _thread, _asyncio)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    _plugins(
        monkeypatch, _ep("pool", "impostor:STRATEGY"), _ep("twin", "impostor:TWIN"), _ep("twin2", "impostor:TWIN2")
    )
    assert registry.get("pool") is registry.BUILTIN[2]
    assert registry.get("twin").summary == "first"
    problems = registry.problems()
    assert "a built-in's name; the built-in wins" in problems["pool (impostor:STRATEGY)"]
    assert "an earlier plugin is named 'twin'" in problems["twin (impostor:TWIN2)"]


def test_a_missing_reference_package_is_unavailable_with_the_install_hint(monkeypatch):
    missing = dataclasses.replace(tikv.STRATEGY, why_unavailable=lambda: f"cannot be imported; {tikv.INSTALL_HINT}")
    monkeypatch.setattr(registry, "REFERENCE", (missing,))
    assert "tikv-client" not in registry.names()
    assert registry.problems()["tikv-client"].endswith('pip install "tsobench[reference]"')
    assert "unavailable" in (registry.unavailable("tikv-client", "asyncio") or "")
    with pytest.raises(ConfigError, match=r"tikv-client.*tsobench\[reference\]"):
        RunConfig(
            strategy="tikv-client", api="asyncio"
        ).runnable()  # asked when it runs: a sweep plan may name it and skip it


def test_unavailable_says_which_strategy_api_pairs_cannot_run():
    assert registry.unavailable("pool", "thread") is None
    assert "unknown strategy" in (registry.unavailable("nope", "thread") or "")
    if tikv.why_unavailable() is None:
        assert registry.unavailable("tikv-client", "asyncio") is None
        assert "no thread API: use --api asyncio" in (registry.unavailable("tikv-client", "thread") or "")
        with pytest.raises(ConfigError, match=r"at most 1 timestamp\(s\) per request \(got --count 2\)"):
            RunConfig(
                strategy="tikv-client", api="asyncio", count=2
            ).runnable()  # asked when it runs: a sweep plan may name it and skip it


def test_a_broken_plugin_leaves_every_command_working(tmp_path):
    """A real installed plugin (an entry point in a dist-info) whose import raises."""
    (tmp_path / "broken_plugin.py").write_text("import no_such_dependency\n")
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tsobench.strategies]\nbroken = broken_plugin:STRATEGY\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def tsobench(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-P", "-m", "tsobench.bench", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)

    listed = tsobench("strategies")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith("broken "))
    assert "UNAVAILABLE" in line and "No module named 'no_such_dependency'" in line
    assert "dispatcher" in listed.stdout
    assert tsobench("--help").returncode == 0
    refused = tsobench("run", "-s", "broken", "--duration", "1")
    assert refused.returncode == 2 and "'broken' is unavailable" in refused.stderr
    ran = tsobench("run", "-s", "null", "--duration", "0.3", "--warmup", "0", "-q", "-o", str(tmp_path / "r.json"))
    assert ran.returncode == 0, ran.stderr
    for out in (listed, refused, ran):
        assert "Traceback" not in out.stderr
    assert Path(tmp_path / "r.json").exists()


def test_the_example_plugin_installs_and_runs(tmp_path):
    """The README's example package, installed as a user would (an entry point in its dist-info)."""
    pytest.importorskip("setuptools")  # builds it without fetching anything
    example = tmp_path / "plugin"  # a copy: building leaves build/ and egg-info beside the sources
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "plugin", example)
    target = tmp_path / "site"
    install = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--target",
        str(target),
    ]
    built = subprocess.run([*install, str(example)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    command = [sys.executable, "-P", "-m", "tsobench.bench"]
    listed = subprocess.run([*command, "strategies"], capture_output=True, text=True, timeout=60, env=env)
    assert any(line.startswith("example-locked ") for line in listed.stdout.splitlines()), listed.stdout
    for api in strategies.APIS:
        args = ["run", "-s", "example-locked", "--api", api, "--duration", "1", "--warmup", "0", "-c", "4", "-q"]
        ran = subprocess.run(
            [*command, *args, "-o", f"{tmp_path}/"], capture_output=True, text=True, timeout=60, env=env
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
