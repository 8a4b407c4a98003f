"""Strategies by name: the built-ins plus any third-party plugin that declares
an entry point in the ``tsobench.strategies`` group pointing at a ``Strategy``."""

from __future__ import annotations

from importlib.metadata import entry_points

from . import dispatcher, locked, null, per_request, pool, unsafe_shared
from .base import Strategy

ENTRY_POINT_GROUP = "tsobench.strategies"
BUILTIN: tuple[Strategy, ...] = tuple(m.STRATEGY for m in (per_request, locked, pool, dispatcher, unsafe_shared, null))


class UnknownStrategy(KeyError):
    def __str__(self) -> str:
        return f"unknown strategy {self.args[0]!r}; choose from {', '.join(names())}"


def _plugins() -> list[Strategy]:
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        strategy = ep.load()
        if not isinstance(strategy, Strategy):
            raise TypeError(f"entry point {ep.name} ({ep.value}) is not a tsobench.strategies.Strategy")
        found.append(strategy)
    return found


def all_strategies() -> dict[str, Strategy]:
    return {s.name: s for s in (*BUILTIN, *_plugins())}


def names() -> list[str]:
    return list(all_strategies())


def get(name: str) -> Strategy:
    try:
        return all_strategies()[name]
    except KeyError:
        raise UnknownStrategy(name) from None


def is_builtin(strategy: Strategy) -> bool:
    """One of tsobench's own strategies (a plugin's errors are named as the plugin's)."""
    return any(strategy is s for s in BUILTIN)
