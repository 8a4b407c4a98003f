"""Lazy package names: a package's names load on first use, under their own or another name."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from tsobench.lazy import lazy_names


def test_a_name_loads_its_submodule_and_a_colon_renames():
    get = lazy_names("tsobench.bench", {"read_results": "model.results:read", "RunConfig": "model.config"})
    from tsobench.bench.model import config, results

    assert get("read_results") is results.read
    assert get("RunConfig") is config.RunConfig


def test_an_unknown_name_is_an_attribute_error_naming_the_package():
    get = lazy_names("tsobench.bench", {})
    with pytest.raises(AttributeError, match=r"module 'tsobench\.bench' has no attribute 'nope'"):
        get("nope")


def test_the_packages_load_nothing_heavy_until_a_name_is_asked_for():
    code = (
        "import sys, tsobench.bench, tsobench.server; "
        "heavy = sorted(m for m in ('grpc', 'numpy') if m in sys.modules); "
        "tsobench.bench.RunConfig; print(heavy, 'tsobench.bench.model.config' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[] True", out.stderr


def test_every_declared_name_of_the_packages_resolves():
    import tsobench.bench
    import tsobench.server

    for package in (tsobench.bench, tsobench.server):
        assert isinstance(package, types.ModuleType)
        for name in package.__all__:
            assert getattr(package, name) is not None, name
