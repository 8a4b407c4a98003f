"""The persisted high-water window: the oracle's promise never to go back.

PD saves "physical + 3 s" to etcd before it hands out any timestamp below
that bound; after a restart it starts above the saved bound. Here the bound
lives in a small JSON file, replaced atomically (write, fsync, rename, fsync
the folder) so a kill -9 at any instant leaves either the old or the new one.
A save never lowers the bound on disk, and one server at a time owns the
folder (``DataDirLock``), so two servers can never push each other back. The
members of a cluster share the folder, each term's leader saving its own file
``tso-window.<term>.json`` (``leadership`` says how they take turns); the bound
is the largest any window file in the folder holds, so whoever starts next, a
lone server or a cluster, starts above all of them.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path

from tsobench.files import write_atomically

FILE_NAME = "tso-window.json"
WINDOW_FILES = re.compile(r"tso-window(\.\d+)?\.json")  # a lone server's, and each cluster term's
LOCK_NAME = "tso.lock"
# physical << 18 | logical must fit a signed 64-bit integer (PD's uint64, read as int64 by clients).
MAX_PHYSICAL_MS = (1 << (63 - 18)) - 1


class WindowError(ValueError):
    """The window file cannot be trusted; the message says why, for humans."""


class DataDirLocked(RuntimeError):
    """Another server holds the data directory."""


def term_window_name(term: int) -> str:
    return f"tso-window.{term}.json"


class WindowFile:
    """One window file (``name``) in a data dir; what it loads is the largest of the folder's window files."""

    def __init__(self, data_dir: str | os.PathLike[str], name: str = FILE_NAME) -> None:
        self.dir = Path(data_dir)
        self.path = self.dir / name

    def load(self) -> int:
        """The saved high-water physical time in ms, or 0 when nothing was saved."""
        return self.highest()[0]

    def highest(self) -> tuple[int, Path | None]:
        """The largest bound any window file in the folder holds, and that file (None: there is none)."""
        try:
            names = [e.name for e in os.scandir(self.dir) if WINDOW_FILES.fullmatch(e.name)]
        except FileNotFoundError:
            return 0, None
        found = [(_read(self.dir / name), self.dir / name) for name in names]
        return max(found, default=(0, None))

    def save(self, high_water_ms: int) -> int:
        """Persist ``high_water_ms`` unless this file already holds more; return what it holds."""
        if not 0 <= high_water_ms <= MAX_PHYSICAL_MS:
            raise WindowError(f"high-water {high_water_ms} ms is outside [0, {MAX_PHYSICAL_MS}]")
        on_disk = _read(self.path)
        if high_water_ms <= on_disk:
            return on_disk
        write_atomically(self.path, json.dumps({"high_water_ms": high_water_ms}), fsync=True)
        return high_water_ms


def _read(path: Path) -> int:
    """One window file's bound (0 when it is not there); WindowError names a file that cannot be trusted."""
    try:
        value = json.loads(path.read_text())["high_water_ms"]
    except FileNotFoundError:
        return 0
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise WindowError(f"corrupt TSO window file {path}: {type(exc).__name__}: {exc}") from exc
    # bool is an int to Python, 1e30 and Infinity are floats: none is a time in ms.
    if type(value) is not int or not 0 <= value <= MAX_PHYSICAL_MS:
        raise WindowError(
            f"corrupt TSO window file {path}: high_water_ms is {str(value)[:40]}, "
            f"not an integer number of ms in [0, {MAX_PHYSICAL_MS}]"
        )
    return value


class DataDirLock:
    """An OS lock (flock) on ``<data dir>/tso.lock``, held while a server runs.

    The kernel drops it when the process dies, kill -9 included, so a stale
    lock file never blocks a restart. The file keeps the holder's pid for the message.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, shared: bool = False) -> DataDirLock:
        """Exclusive for a lone server; shared by the members of one cluster (see ``leadership``)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirLocked(
                f"data dir {self.path.parent} is in use by another TSO server (pid {holder}); "
                "two servers on one window could hand out timestamps that go back"
            ) from None
        if not shared:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def share(self) -> None:
        """Turn an exclusive hold into a shared one (a cluster's launcher, once it set the folder up)."""
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
