"""Package names that load on first use, so importing a package stays cheap
(no grpc, numpy...) until a name is actually asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__``: ``where`` maps each name to ``"submodule"`` or
    ``"submodule:attribute"`` (when the name differs)."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = where[name].partition(":")
        return getattr(importlib.import_module(f".{module}", package), attribute or name)

    return __getattr__
