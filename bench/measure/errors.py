"""Name a failed request's error the way the results count it (written once, in ``tsobench.errors``)."""

from __future__ import annotations

from tsobench.errors import error_kind, one_line

__all__ = ["error_kind", "one_line"]
