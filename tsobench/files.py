"""Files written whole or not at all: a reader (a resumed sweep, a restarted
server, a person opening a report) never sees half a file."""

from __future__ import annotations

import contextlib
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
        return f"cannot create {folder}: {exc.strerror or exc}"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        write_atomically(folder / f".tsobench-probe-{os.getpid()}", b"probe").unlink()
    except OSError as exc:
        return f"cannot write into {folder}: {exc.strerror or exc}"
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        return f"only {free / 1e6:.1f} MB free in {folder} (need {need_bytes / 1e6:.0f} MB)"
    return None
