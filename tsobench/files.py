"""Files written whole or not at all: a reader (a resumed sweep, a restarted
server, a person opening a report) never sees half a file."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from pathlib import Path


def write_atomically(path: str | os.PathLike[str], data: str | bytes, fsync: bool = False) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    ``fsync=True`` also makes it durable (file and folder flushed to disk): what a
    promise that must survive a power cut or ``kill -9`` needs, like the server's window.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per writer: two writers of one file never share (and race on) a temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return path


MIN_FREE_BYTES = 16 << 20  # what a results file, its interval log and a report need, with room to spare


def check_writable(folder: str | os.PathLike[str], need_bytes: int = MIN_FREE_BYTES) -> str | None:
    """Why ``folder`` cannot take our output (None: it can). Made if missing; probed
    with a real file, so a read-only mount or a full disk shows before any work is done."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {folder}: {_why(exc, folder)}"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        write_atomically(folder / f".tsobench-probe-{os.getpid()}", b"probe").unlink()
    except OSError as exc:
        return f"cannot write into {folder}: {_why(exc, folder)}"
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        return f"only {free / 1e6:.1f} MB free in {folder} (need {need_bytes / 1e6:.0f} MB)"
    return None


# Kernel file systems that show the system's state and hold no files of ours.
VIRTUAL_FILESYSTEMS = frozenset({"proc", "sysfs", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs", "configfs"})


def _why(exc: OSError, path: Path) -> str:
    """The true reason a write failed: "No such file or directory" for a folder that exists means
    a file system that takes no files (/proc, /sys), and says so, naming it."""
    if exc.errno in (errno.ENOENT, errno.EPERM):
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        kind = _filesystem(existing) if existing is not None else None
        if kind in VIRTUAL_FILESYSTEMS or (exc.errno == errno.ENOENT and existing in (path, path.parent)):
            where = f"{existing} is on {kind}, a file system" if kind else f"the file system of {existing} is one"
            return f"{where} that takes no new files"
    if exc.errno == errno.EROFS:
        return f"{path} is on a read-only file system"
    return exc.strerror or str(exc)


def _filesystem(path: Path) -> str | None:
    """The type of the file system ``path`` is on (``proc``, ``sysfs``, ...), from /proc/self/mounts (Linux)."""
    try:
        mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return None
    resolved = str(path.resolve())
    best: tuple[int, str] | None = None
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > best[0]):
            best = (len(point), fields[2])
    return best[1] if best else None
