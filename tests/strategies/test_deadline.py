"""One watchdog per client: deadlines fire between the timeout and a period after it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tsobench.strategies.deadline import AsyncWatchdog, DeadlineExceeded, ThreadWatchdog, late, period_for


def test_the_period_is_a_quarter_deadline_at_most_and_five_scans_a_second_at_least():
    assert period_for(0.4) == 0.1 and period_for(10.0) == 0.2
    assert issubclass(DeadlineExceeded, TimeoutError)  # the harness counts it as a timeout


def test_a_thread_watchdog_expires_what_started_a_deadline_of_ticks_ago():
    cutoffs: list[int] = []
    fired = threading.Event()

    def expire(cutoff: int) -> None:
        cutoffs.append(cutoff)
        if len(cutoffs) >= 6:
            fired.set()

    dog = ThreadWatchdog(0.04, expire)  # a period of 10 ms: four ticks per deadline
    try:
        assert fired.wait(10)
    finally:
        dog.stop()
    assert dog.ticks == 4
    assert cutoffs[:6] == [-3, -2, -1, 0, 1, 2]  # tick - ticks: a request noted at tick 0 expires at tick 4


def test_an_async_watchdog_runs_on_the_loop_and_stops_with_it():
    async def main() -> list[int]:
        cutoffs: list[int] = []
        dog = AsyncWatchdog(0.04, cutoffs.append)
        while len(cutoffs) < 3:
            await asyncio.sleep(0.005)
        await dog.stop()
        seen = len(cutoffs)
        await asyncio.sleep(0.05)
        assert len(cutoffs) == seen  # stopped: no more scans
        return cutoffs

    assert asyncio.run(main())[:3] == [-3, -2, -1]


on_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc")


def test_late_is_after_the_deadline_by_the_clock() -> None:
    assert not late(10.0, 12.0, 2.0)
    assert late(10.0, 12.001, 2.0)
    assert late(10.0, 15.0, 2.0)  # a reply that waited out a 5 s freeze
    assert period_for(2.0) == 0.2 and period_for(0.4) == 0.1


def _descendants(pid: int) -> list[int]:
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [d for c in children for d in (c, *_descendants(c))]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _shards(pid: int) -> list[int]:
    return [d for d in _descendants(pid) if "spawn_main" in _cmdline(d)]


@on_proc
@pytest.mark.serial
@pytest.mark.timeout(120)
def test_a_shard_frozen_past_its_deadline_makes_the_run_not_clean(tmp_path: Path) -> None:
    """Issue 28: one shard of ``run -s dispatcher -c 16 -p 2 --timeout 2`` SIGSTOPped for 5 s; its replies
    came 2.5x past the deadline and counted as answered (clean, exit 0)."""
    out = tmp_path / "r.json"
    argv = ["run", "-s", "dispatcher", "-c", "16", "-p", "2", "--timeout", "2", "--duration", "9", "--warmup", "1",
            # a batch always in flight, so the freeze holds a sent request (one still queued is not yet on its deadline)
            "--server-rtt-ms", "5", "--rpc-concurrency", "4"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "tsobench.bench", *argv, "--interval", "0.5", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    first = proc.stderr.readline()  # an interval line: every shard started and under load (a slow spawn is not)
    shards = _shards(proc.pid)
    assert len(shards) >= 2, ("the shards never started", first)
    time.sleep(1.0)  # past the warm-up
    os.kill(shards[0], signal.SIGSTOP)
    time.sleep(5)
    os.kill(shards[0], signal.SIGCONT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, (stdout, stderr)  # not clean
    errors = json.loads(out.read_text())["metrics"]["errors"]
    assert errors.get("timeout", 0) >= 1, errors
