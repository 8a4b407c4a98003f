"""The results file: one versioned JSON document per run.

Top level: schema_version, run_id, started_at, finished_at, command, config,
environment, metrics, correctness, histograms, shards, status. Readers check
schema_version; anything added later is additive.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tsobench.files import write_atomically

from .verdict import Judgement, judge

SCHEMA_VERSION = 1
DEFAULT_DIR = Path("results")


def new_run_id(strategy: str, api: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{strategy}-{api}-{secrets.token_hex(3)}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunResult:
    run_id: str
    started_at: str
    finished_at: str
    command: list[str]
    config: dict[str, Any]
    environment: dict[str, Any]
    metrics: dict[str, Any]
    correctness: dict[str, int]
    histograms: dict[str, str]
    shards: list[dict[str, Any]] = field(default_factory=list)
    status: str = "completed"  # completed | interrupted | failed
    strategy: dict[str, Any] = field(default_factory=dict)  # name, safe (False: the negative control)
    schema_version: int = SCHEMA_VERSION

    @property
    def judgement(self) -> Judgement:
        return judge(self.to_dict())

    @property
    def clean(self) -> bool:
        return self.judgement.clean

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "strategy": self.strategy,
            "command": self.command,
            "config": self.config,
            "environment": self.environment,
            "metrics": self.metrics,
            "correctness": self.correctness,
            "histograms": self.histograms,
            "shards": self.shards,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported results schema_version {version!r} (this tsobench reads {SCHEMA_VERSION})")
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def write(result: RunResult, path: str | os.PathLike[str]) -> Path:
    """Write atomically: a reader (or a resumed sweep) never sees half a file."""
    return write_atomically(path, json.dumps(result.to_dict(), indent=1) + "\n")


def read(path: str | os.PathLike[str]) -> RunResult:
    return RunResult.from_dict(json.loads(Path(path).read_text()))


def default_path(run_id: str) -> Path:
    return DEFAULT_DIR / f"{run_id}.json"
