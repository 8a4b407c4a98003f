"""Fixtures of the benchmark suite: its scale, its strategies, one embedded server for the session."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

import pytest

from tsobench import strategies
from tsobench.server import ChildServer


@dataclass(frozen=True)
class Scale:
    """How much each benchmark does. Rounds are fixed (pedantic), so a run takes the same work every time."""

    concurrency: tuple[int, ...]
    requests: int  # per scenario round: the fixed work whose time is measured
    warmup_requests: int  # one untimed scenario run before the rounds
    rounds: int  # scenario rounds
    get_ts_rounds: int  # one call each
    get_ts_warmup: int  # untimed calls before them
    hot_rounds: int  # each folds (or splits) everything once
    only: frozenset[str] | None = None  # a subset of the benchmarked strategies (None: all of them)


SCALES = {
    # A smoke run proves that every kind of benchmark runs and reports (the plain test run uses it,
    # twice, to exercise the comparison commands), not how fast: one strategy, two callers, one round
    # of a few hundred requests, a few micro rounds. More would only make the plain `pytest` slower.
    "smoke": Scale((2,), 300, 50, 1, 30, 10, 5, only=frozenset({"dispatcher"})),
    # The fastest of 1,000 get_ts moved by up to 25 % within seconds on a busy 2-core machine (neighbours
    # come and go), the fastest of 5,000 by about 5 %: micro rounds buy a steady `min`.
    "quick": Scale((1, 16, 64), 500, 200, 5, 5_000, 300, 100),
    "full": Scale((1, 16, 64, 256), 2_000, 500, 10, 15_000, 1_000, 300),
}


def scale() -> Scale:
    name = os.environ.get("TSOBENCH_SUITE", "quick")
    if name not in SCALES:
        raise pytest.UsageError(f"TSOBENCH_SUITE must be one of {', '.join(SCALES)}, got {name!r}")
    return SCALES[name]


def benchmarked(selected: Scale) -> list[tuple[str, str]]:
    """(strategy, API) for every strategy whose ``benchmark`` says the suite runs it (a plugin's too),
    on each API it has, in registry order."""
    return [
        (s.name, api)
        for s in strategies.all_strategies().values()
        if s.benchmark and (selected.only is None or s.name in selected.only)
        for api in s.apis
    ]


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def _numpy_multiarray() -> ModuleType:
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy 1.x
        return importlib.import_module("numpy.core.multiarray")


@pytest.fixture(scope="session", autouse=True)
def steady_memory() -> None:
    """Every round on the same kind of memory, whatever ran before it:
    - glibc keeps freed memory for the next round instead of giving it back to the kernel. Otherwise
      a round's arrays were either mapped already or faulted in anew, depending on what else sat on
      the heap: folding 100k latencies took 0.5 or 2.1 ms, ~1,000 page faults apart;
    - numpy asks for no transparent huge pages. A round on heap that a large array had left backed by
      huge pages ran 20 % faster for a while, so a run's fastest round hung on what ran before it.
    """
    if sys.platform == "linux":
        mallopt = ctypes.CDLL(None).mallopt
        mallopt(M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest: big arrays come from the heap too
        mallopt(M_TRIM_THRESHOLD, 1 << 30)  # and the heap is not given back
    _numpy_multiarray()._set_madvise_hugepage(False)


@pytest.fixture(autouse=True)
def machine_load(benchmark) -> Iterator[None]:
    """``extra_info.load_per_cpu``: the 1-minute load average per CPU as the benchmark ended. Two runs
    differ by more than the code when one ran on a busy machine and the other did not."""
    yield
    benchmark.extra_info["load_per_cpu"] = round(os.getloadavg()[0] / (os.cpu_count() or 1), 2)


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid``: a thread's affinity is its own, and only threads started later inherit it."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
            os.sched_setaffinity(int(tid), cpus)


def _server_cpu() -> int | None:
    """The CPU the server gets to itself (Linux, two CPUs or more): the last of ours."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
    return cpus[-1] if len(cpus) >= 2 else None


@pytest.fixture(scope="session")
def tso_server() -> Iterator[ChildServer]:
    """The server runs in its own process so it does not share the clients' GIL, on a CPU of its own
    where there are two (see ``pinned_server``)."""
    with ChildServer() as server:
        cpu = _server_cpu()
        if cpu is not None and server.proc is not None:
            _pin(server.proc.pid, {cpu})
        yield server


@pytest.fixture
def pinned_server(tso_server: ChildServer) -> Iterator[ChildServer]:
    """The server, with this process kept off the server's CPU for the test (where there are two).

    Left to the scheduler, client and server share a CPU in some runs and not in others, and a round
    trip with them: the fastest of 1,000 get_ts differed by 10-25 % between runs on a 2-core machine,
    kept apart by under 5 %. Only for benchmarks that talk to the server: one that computes alone is
    better off wherever the scheduler finds a free CPU.
    """
    cpu = _server_cpu()
    if cpu is None:
        yield tso_server
        return
    everywhere = os.sched_getaffinity(0)
    _pin(os.getpid(), everywhere - {cpu})
    try:
        yield tso_server
    finally:
        _pin(os.getpid(), everywhere)
