"""Files written whole or not at all: a reader (a resumed sweep, a restarted
server, a person opening a report) never sees half a file."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: str | os.PathLike[str], data: str | bytes, fsync: bool = False) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    ``fsync=True`` also makes it durable (file and folder flushed to disk): what a
    promise that must survive a power cut or ``kill -9`` needs, like the server's window.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return path
