"""Shards on Dask distributed: a stock `dask scheduler` and `dask worker`s on
127.0.0.1 (started here as processes), and a LocalCluster (--scheduler local)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tsobench.bench.model.config import RunConfig
from tsobench.bench.runs.runner import run

distributed = pytest.importorskip("distributed", reason='needs Dask distributed: pip install -e ".[dask]"')

START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    address: str
    workers: list[subprocess.Popen]  # each in its own session: killpg kills its nanny and worker

    def worker_addresses(self) -> set[str]:
        with distributed.Client(self.address, timeout=10) as client:
            return set(client.scheduler_info(n_workers=-1)["workers"])


def _dask(args: list[str], log: Path) -> subprocess.Popen:
    """The stock CLI (``dask scheduler|worker``), in its own session so it can be killed whole."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=out, stderr=out, start_new_session=True)


@contextlib.contextmanager
def _cluster(n_workers: int, log: Path) -> Iterator[Cluster]:
    """A scheduler and n single-threaded workers with the resource shard=1, stopped at the end."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_dask(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], log)]
    worker_args = ["worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--resources", "shard=1"]
    procs += [_dask([*worker_args, "--no-dashboard"], log) for _ in range(n_workers)]
    try:
        with distributed.Client(address, timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(n_workers, timeout=START_TIMEOUT_S)
        yield Cluster(address, procs[1:])
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """Two workers shared by the tests that leave them running."""
    with _cluster(2, tmp_path_factory.mktemp("dask") / "dask.log") as c:
        yield c


def _tsobench(*args: str) -> list[str]:
    return [sys.executable, "-P", "-m", "tsobench.bench", "run", "-s", "dispatcher", "--api", "asyncio", *args]


def test_two_shards_on_a_stock_cluster_merge_exactly(cluster):
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


def test_more_shards_than_workers_is_refused_before_any_load(cluster, tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.run(
        _tsobench("-p", "3", "--duration", "1", "--scheduler", cluster.address, "-o", str(out)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "needs 3 Dask workers" in proc.stderr and "has 2" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_a_worker_killed_mid_run_is_a_recorded_shard_failure(child_server, tmp_path):
    with _cluster(2, tmp_path / "dask.log") as cluster:
        _kill_a_worker_mid_run(cluster, child_server, tmp_path / "r.json")


def _kill_a_worker_mid_run(cluster: Cluster, child_server, out: Path) -> None:
    config = RunConfig(strategy="dispatcher", api="asyncio", concurrency=4, processes=2, duration_s=2, warmup_s=0)
    before = child_server.counters().timestamps
    started = time.monotonic()
    proc = subprocess.Popen(
        _tsobench(
            *("-c", "4", "-p", "2", "--duration", "2", "--warmup", "0", "-o", str(out)),
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
        _, stderr = proc.communicate(timeout=config.hard_limit_s + START_TIMEOUT_S)
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
