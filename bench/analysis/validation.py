"""What the analysis may trust of a file: read only regular files of a bounded size, and keep only
results whose figures are what their declarations say.

A results file is data someone else may have written, or a disk may have cut short: one figure of
``-Infinity``, a fractional count or a timeline entry without ``t_s`` must cost that file, never the
report, the comparison or the plan of the others. ``read_json`` refuses what is not a regular file
(a named pipe would hang a reader forever) and anything above ``MAX_BYTES`` (a results file is
kilobytes; 200 MB is not one, and would cost gigabytes of memory to parse). ``check_results`` holds
every value of ``metrics``, ``correctness``, ``timeline`` and ``faults`` to its declared type in
``bench/model/results.py``: numbers finite, counts integral and within 64 bits, figures not negative
(times of the timeline and the faults may be: the warm-up comes before the window's start), each
entry of ``timeline`` and ``faults`` complete. No figure reaches 2**63: no count does, and no rate or
length a harness measures (a throughput of 1e308 is not a measurement; its square overflows numpy).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import types
import typing
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, NotRequired, Required

from tsobench.bench.model import results

MAX_BYTES = 64 * 1024 * 1024  # far above any results file (a 15-minute run with a timeline is well under 1 MB)
INT64 = 2**63
# times of the window, which start before it in the warm-up; every other figure is a count, a rate or a length
SIGNED = frozenset({"t_s", "at_s", "started_s", "ended_s"})
_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


class Untrusted(ValueError):
    """A file the analysis leaves out: the message says why, in one line."""


def regular(path: Path) -> str | None:
    """Why ``path`` is not a regular file the analysis can read (None: it is one); never opens it."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if stat.S_ISREG(mode):
        return None
    return f"not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'a special file')})"


def read_json(path: Path, limit: int | None = None) -> Any:
    """The parsed JSON of a regular file of at most ``limit`` bytes (``MAX_BYTES``); raises Untrusted.

    Opened without blocking and checked again once open: a file swapped for a pipe after ``regular``
    still cannot hang the reader."""
    limit = MAX_BYTES if limit is None else limit
    problem = regular(path)
    if problem is not None:
        raise Untrusted(problem)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise Untrusted(exc.strerror or type(exc).__name__) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Untrusted(f"not a regular file ({_KINDS.get(stat.S_IFMT(st.st_mode), 'a special file')})")
        if st.st_size > limit:
            raise Untrusted(f"{_mb(st.st_size)}, above the {_mb(limit)} a results file can be (not read)")
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise Untrusted(f"grew above the {_mb(limit)} a results file can be while read (not read)")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise Untrusted("not a JSON file (not UTF-8 text)") from None
    except RecursionError:
        raise Untrusted("not a JSON file (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, and an integer of more digits than Python converts
        raise Untrusted(f"not a JSON file ({_one_line(exc)})") from None


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB" if size >= 2**20 else f"{size:,} bytes"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# --- the declared figures ----------------------------------------------------------------------------


def check_results(data: Mapping[str, Any]) -> None:
    """Raises Untrusted naming the first value of a results document that is not what its declaration says."""
    for name, section in results.SECTIONS.items():
        value = data.get(name)
        if value is not None:
            _check_section(value, section, name, complete=False)
    for name, entry in results.ENTRIES.items():
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, list):
            raise Untrusted(f"{name} is not a list")
        for i, item in enumerate(value):
            _check_section(item, entry, f"{name}[{i}]", complete=True)


def _check_section(value: Any, section: type, where: str, *, complete: bool) -> None:
    if not isinstance(value, Mapping):
        raise Untrusted(f"{where} is not an object")
    for name, (kind, optional) in _fields(section).items():
        if name not in value:
            if complete:
                raise Untrusted(f"{where} lacks {name}")
            continue
        _check_value(value[name], kind, optional, f"{where}.{name}", signed=name in SIGNED)


def _check_value(value: Any, kind: Any, optional: bool, where: str, *, signed: bool = False) -> None:
    if value is None:
        if not optional:
            raise Untrusted(f"{where} is null")
        return
    if isinstance(kind, type) and typing.is_typeddict(kind):
        _check_section(value, kind, where, complete=False)
    elif typing.get_origin(kind) is dict:
        if not isinstance(value, Mapping):
            raise Untrusted(f"{where} is not an object")
        inner = typing.get_args(kind)[1]
        if inner in (int, float):
            for k, v in value.items():
                _check_value(v, inner, False, f"{where}.{k}")
    elif kind is bool:
        if not isinstance(value, bool):
            raise Untrusted(f"{where} is {_shown(value)}, not true or false")
    elif kind in (int, float):
        _check_number(value, kind, where, signed)
    elif kind is str and not isinstance(value, str):
        raise Untrusted(f"{where} is {_shown(value)}, not text")


def _check_number(value: Any, kind: type, where: str, signed: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Untrusted(f"{where} is {_shown(value)}, not a number")
    if not math.isfinite(value):
        raise Untrusted(f"{where} is {value}, not a finite number")
    if value < 0 and not signed:
        raise Untrusted(f"{where} is {value}, below zero")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise Untrusted(f"{where} is {value}, not a whole number")
    if abs(value) >= INT64:  # no count is larger, and no rate or length measured by one
        raise Untrusted(f"{where} is {value:.3g}, beyond a 64-bit count")


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _fields(section: type) -> dict[str, tuple[Any, bool]]:
    """name -> (type, may be null) of a TypedDict's fields, as results.py declares them."""
    return _FIELDS.setdefault(section, _declared(section))


def _declared(section: type) -> dict[str, tuple[Any, bool]]:
    out = {}
    for name, hint in typing.get_type_hints(section, include_extras=True).items():
        while typing.get_origin(hint) in (NotRequired, Required):
            (hint,) = typing.get_args(hint)
        if typing.get_origin(hint) is Annotated:
            hint = typing.get_args(hint)[0]
        optional = False
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional, hint = len(args) < len(typing.get_args(hint)), args[0]
        out[name] = (hint, optional)
    return out


_FIELDS: dict[type, dict[str, tuple[Any, bool]]] = {}


@contextlib.contextmanager
def no_library_warnings() -> Iterator[None]:
    """No numpy or matplotlib warning on the console while the analysis runs: what it cannot use it says
    in its own words (a skipped file, "cannot tell"), never in a library's ("overflow encountered")."""
    import numpy as np

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", module=r"(numpy|matplotlib|scipy|pandas)(\..*)?")
        warnings.filterwarnings("ignore", category=UserWarning, message=".*[Gg]lyph|.*[Tt]ight_layout|.*[Aa]ttempting")
        yield
