"""Strategies by name: the built-ins, the reference clients, and any third-party
plugin that declares an entry point in the ``tsobench.strategies`` group pointing
at a ``Strategy``.

A plugin cannot break the tool: one whose import raises, whose entry point is not
a ``Strategy``, or whose name is taken (a built-in's always wins, then the first
plugin's) is left out of ``all_strategies()`` and reported by ``problems()`` with
a one-line reason, which ``tsobench strategies`` lists and a run that asks for it
gets as its error. A reference client whose package is not installed is reported
the same way. Nothing is cached: a plugin installed while the tool runs is seen,
and a broken one costs only itself.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import NamedTuple

from tsobench.errors import one_line
from tsobench.options import ConfigError

from . import dispatcher, locked, null, per_request, pool, tikv, unsafe_shared
from .base import Strategy

ENTRY_POINT_GROUP = "tsobench.strategies"
# The designs and baselines this project ships and tests on every API.
BUILTIN: tuple[Strategy, ...] = tuple(m.STRATEGY for m in (per_request, locked, pool, dispatcher, unsafe_shared, null))
# Production clients run as yardsticks, each behind an optional extra ("tsobench[reference]").
REFERENCE: tuple[Strategy, ...] = (tikv.STRATEGY,)


class UnknownStrategy(KeyError):
    def __str__(self) -> str:
        return f"unknown strategy {self.args[0]!r}; choose from {', '.join(names())}"


class _Found(NamedTuple):
    usable: dict[str, Strategy]  # by name
    unusable: dict[str, str]  # what cannot run here, with the reason; a name clash under "NAME (module:object)"
    named: frozenset[str]  # the names in ``unusable`` a run may ask for (a clash's name runs the built-in)


def _load() -> _Found:
    usable: dict[str, Strategy] = {s.name: s for s in BUILTIN}
    unusable: dict[str, str] = {}
    named: set[str] = set()

    def refuse(name: str, why: str) -> None:
        if name not in unusable and name not in usable:
            unusable[name] = why
            named.add(name)

    for strategy in REFERENCE:
        why = strategy.why_unavailable() if strategy.why_unavailable is not None else None
        if why is None:
            usable[strategy.name] = strategy
        else:
            refuse(strategy.name, why)
    reserved = {s.name for s in (*BUILTIN, *REFERENCE)}
    try:
        found = list(entry_points(group=ENTRY_POINT_GROUP))
    except Exception as exc:  # broken package metadata somewhere on the path
        unusable["(plugins)"] = f"could not list the {ENTRY_POINT_GROUP} entry points: {one_line(exc)}"
        return _Found(usable, unusable, frozenset(named))
    for ep in found:
        where = f"entry point {ep.name} ({ep.value})"
        try:
            strategy = ep.load()
        except Exception as exc:
            refuse(ep.name, f"{where} failed to load: {one_line(exc)}")
            continue
        if not isinstance(strategy, Strategy):
            refuse(ep.name, f"{where} is not a tsobench.strategies.Strategy")
        elif strategy.name in reserved:
            taken = f"{where} is named {strategy.name!r}, a built-in's name; the built-in wins"
            unusable.setdefault(f"{strategy.name} ({ep.value})", taken)
        elif strategy.name in usable:
            taken = f"{where}: an earlier plugin is named {strategy.name!r}"
            unusable.setdefault(f"{strategy.name} ({ep.value})", taken)
        else:
            usable[strategy.name] = strategy
            unusable.pop(strategy.name, None)  # an earlier entry point of that name failed: this one stands
            named.discard(strategy.name)
    return _Found(usable, unusable, frozenset(named))


def all_strategies() -> dict[str, Strategy]:
    """The strategies that can run here, by name: built-ins first, then references and plugins."""
    return _load().usable


def problems() -> dict[str, str]:
    """What cannot run here, by name, with a one-line reason: plugins that failed to load,
    collide or are not strategies, and reference clients whose package is missing."""
    return _load().unusable


def names() -> list[str]:
    return list(all_strategies())


def choices() -> list[str]:
    """The names a run may ask for: the usable ones, and the unusable ones, so that asking
    for one is refused with its reason (``check``) rather than as an unknown name."""
    found = _load()
    return [*found.usable, *(n for n in found.unusable if n in found.named)]


def get(name: str) -> Strategy:
    try:
        return all_strategies()[name]
    except KeyError:
        raise UnknownStrategy(name) from None


def is_builtin(strategy: Strategy) -> bool:
    """One of tsobench's own strategies (a plugin's errors are named as the plugin's)."""
    return any(strategy is s for s in BUILTIN)


def unavailable(name: str, api: str) -> str | None:
    """Why ``name`` cannot run on ``api`` here (None: it can); an unknown name says so.
    For sweeps, which skip such pairs with this as the note, and for ``check``."""
    found = _load()
    return _unavailable(found.usable, found.unusable, name, api)


def _unavailable(usable: dict[str, Strategy], unusable: dict[str, str], name: str, api: str) -> str | None:
    if name in unusable and name not in usable:
        return f"strategy {name!r} is unavailable: {unusable[name]}"
    strategy = usable.get(name)
    if strategy is None:
        return str(UnknownStrategy(name))
    if api not in strategy.apis:
        return f"strategy {name!r} has no {api} API: use --api {' or '.join(strategy.apis)}"
    return None


def check(name: str, api: str, count: int) -> None:
    """Refuse a run this strategy cannot do (ConfigError, exit 2): unavailable here, without
    ``api``, or asking more timestamps per request than it can. Unknown names are left to the
    option's own check."""
    usable, unusable, named = _load()
    if name not in usable and name not in named:
        return
    if (why := _unavailable(usable, unusable, name, api)) is not None:
        raise ConfigError(why)
    limit = usable[name].max_count
    if limit is not None and count > limit:
        raise ConfigError(f"strategy {name!r} asks at most {limit} timestamp(s) per request (got --count {count})")
