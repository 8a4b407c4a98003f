"""What a result was measured on: recorded with every run, so numbers from
different machines or versions are never compared blindly."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("grpcio", "protobuf", "hdrhistogram", "numpy")


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    """A read-only git command on this checkout: --no-optional-locks keeps ``status`` from
    refreshing the index, which would take .git/index.lock under the user's feet."""
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(
        ["git", "--no-optional-locks", "-C", str(root), *args], capture_output=True, text=True, timeout=5
    )


def _git_commit() -> str | None:
    try:
        out = _git("rev-parse", "HEAD")
        if out.returncode != 0:
            return None
        dirty = _git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() + ("-dirty" if dirty else "")


@cache
def environment() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        **{name: _version(name) for name in PACKAGES},
        "tsobench": _version("tsobench"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "git_commit": _git_commit(),
    }


HOST_FACTS = ("python", "grpcio", "cpu_count")


def host_facts() -> dict[str, object]:
    """What should match on every host of one run (each shard reports its own)."""
    return {"python": platform.python_version(), "grpcio": _version("grpcio"), "cpu_count": os.cpu_count()}


def hosts_section(scheduler: str | None, facts: dict[str, dict[str, object]]) -> dict[str, object]:
    """``scheduler``, ``hosts`` (host -> its facts) and a warning for each fact that differs between hosts."""
    warnings = []
    for key in HOST_FACTS:
        if len({str(f.get(key)) for f in facts.values()}) > 1:
            values = ", ".join(f"{host} {f.get(key)}" for host, f in sorted(facts.items()))
            warnings.append(f"{key} differs between hosts: {values}")
    return {"scheduler": scheduler, "hosts": facts, "warnings": warnings}
