"""Strategies by name: built-ins and entry-point plugins."""

from importlib.metadata import EntryPoint

import pytest

from tsobench import strategies
from tsobench.strategies import registry


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
    ep = EntryPoint(name="my-plugin", value="my_tso_plugin:STRATEGY", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == registry.ENTRY_POINT_GROUP else [])
    assert strategies.get("my-plugin").summary == "a third-party strategy"
    assert registry.names()[-1] == "my-plugin"


def test_a_plugin_that_is_not_a_strategy_is_refused(monkeypatch):
    ep = EntryPoint(name="bad", value="tsobench.strategies.base:APIS", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep])
    with pytest.raises(TypeError, match=r"not a tsobench\.strategies\.Strategy"):
        registry.names()
