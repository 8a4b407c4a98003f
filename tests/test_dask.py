"""Shards on Dask distributed: a stock `dask scheduler` and `dask worker`s on
127.0.0.1 (started here as processes), and a LocalCluster (--scheduler local)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tsobench.bench.config import RunConfig
from tsobench.bench.runner import hard_limit_s, run

distributed = pytest.importorskip("distributed", reason='needs Dask distributed: pip install -e ".[dask]"')

START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]

    def worker_addresses(self) -> set[str]:
        with distributed.Client(self.address, timeout=10) as client:
            return set(client.scheduler_info(n_workers=-1)["workers"])


def _dask(args: list[str], log: Path) -> subprocess.Popen:
    """The stock CLI (``dask scheduler|worker``), in its own session so it can be killed whole."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=out, stderr=out, start_new_session=True)


@pytest.fixture
def start_cluster(tmp_path) -> Iterator[Callable[[int], Cluster]]:
    """``start_cluster(n)``: a scheduler and n single-threaded workers with the resource shard=1."""
    procs: list[subprocess.Popen] = []

    def start(n_workers: int) -> Cluster:
        port = _free_port()
        address = f"tcp://127.0.0.1:{port}"
        log = tmp_path / "dask.log"
        scheduler = _dask(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], log)
        procs.append(scheduler)
        worker_args = ["worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--resources", "shard=1"]
        workers = [_dask([*worker_args, "--no-dashboard"], log) for _ in range(n_workers)]
        procs.extend(workers)
        with distributed.Client(address, timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(n_workers, timeout=START_TIMEOUT_S)
        return Cluster(address, scheduler, workers)

    yield start
    for proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _tsobench(*args: str) -> list[str]:
    return [sys.executable, "-P", "-m", "tsobench.bench", "run", "-s", "dispatcher", "--api", "asyncio", *args]


def test_two_shards_on_a_stock_cluster_merge_exactly(start_cluster):
    cluster = start_cluster(2)
    config = RunConfig(
        strategy="dispatcher",
        api="asyncio",
        concurrency=4,
        processes=2,
        requests=400,
        warmup_s=0,
        scheduler=cluster.address,
    )
    result = run(config)
    assert result.clean, result.judgement
    assert result.correctness["violations"] == 0
    assert result.metrics["requests_ok"] == sum(s["requests_ok"] for s in result.shards) == 400
    assert result.correctness["checked"] == 400
    assert {s["host"] for s in result.shards} == {socket.gethostname()}
    assert {s["worker"] for s in result.shards} == cluster.worker_addresses()  # one shard per worker
    env = result.environment
    assert env["scheduler"] == cluster.address
    assert set(env["hosts"]) == {socket.gethostname()}
    assert set(env["hosts"][socket.gethostname()]) == {"python", "grpcio", "cpu_count"}
    assert env["warnings"] == []


def test_local_cluster_runs_and_records_its_workers(tmp_path):
    out = tmp_path / "r.json"
    args = ["-c", "4", "-p", "2", "--requests", "200", "--warmup", "0", "--scheduler", "local", "-o", str(out), "-q"]
    proc = subprocess.run(_tsobench(*args), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["config"]["scheduler"] == "local"
    assert data["metrics"]["requests_ok"] == 200
    assert data["correctness"]["violations"] == 0
    workers = [s["worker"] for s in data["shards"]]
    assert len(set(workers)) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
    assert data["environment"]["scheduler"].startswith("tcp://127.0.0.1:")


def test_more_shards_than_workers_is_refused_before_any_load(start_cluster, tmp_path):
    cluster = start_cluster(1)
    out = tmp_path / "r.json"
    proc = subprocess.run(
        _tsobench("-p", "2", "--duration", "1", "--scheduler", cluster.address, "-o", str(out)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "needs 2 Dask workers" in proc.stderr and "has 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_a_worker_killed_mid_run_is_a_recorded_shard_failure(start_cluster, child_server, tmp_path):
    cluster = start_cluster(2)
    out = tmp_path / "r.json"
    config = RunConfig(strategy="dispatcher", api="asyncio", concurrency=4, processes=2, duration_s=4, warmup_s=0)
    before = child_server.counters().timestamps
    started = time.monotonic()
    proc = subprocess.Popen(
        _tsobench(
            *("-c", "4", "-p", "2", "--duration", "4", "--warmup", "0", "-o", str(out)),
            *("--target", child_server.address, "--scheduler", cluster.address),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while child_server.counters().timestamps <= before:  # the load has started
            assert proc.poll() is None and time.monotonic() - started < START_TIMEOUT_S, proc.stderr
            time.sleep(0.05)
        os.killpg(cluster.workers[1].pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=hard_limit_s(config) + START_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, stderr
    data = json.loads(out.read_text())
    failed = [s for s in data["shards"] if "error" in s]
    merged = [s for s in data["shards"] if "error" not in s]
    assert len(failed) == 1 and len(merged) == 1
    assert failed[0]["worker"] and failed[0]["error"]
    assert data["metrics"]["requests_ok"] == merged[0]["requests_ok"] > 0
    assert data["metrics"]["errors"]["shard_failed"] == 4
    assert data["correctness"]["violations"] == 0
