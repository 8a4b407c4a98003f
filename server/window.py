"""The persisted high-water window: the oracle's promise never to go back.

PD saves "physical + 3 s" to etcd before it hands out any timestamp below
that bound; after a restart it starts above the saved bound. Here the bound
lives in a small JSON file, replaced atomically (write, fsync, rename, fsync
the folder) so a kill -9 at any instant leaves either the old or the new one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FILE_NAME = "tso-window.json"


class WindowFile:
    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(data_dir)
        self.path = self.dir / FILE_NAME

    def load(self) -> int:
        """The saved high-water physical time in ms, or 0 when nothing was saved."""
        try:
            return int(json.loads(self.path.read_text())["high_water_ms"])
        except FileNotFoundError:
            return 0
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"corrupt TSO window file {self.path}: {exc}") from exc

    def save(self, high_water_ms: int) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"high_water_ms": high_water_ms}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
