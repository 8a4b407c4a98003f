"""The tsobench command line, run as a user would (a real process)."""

import json
import os
import socket
import subprocess
import sys


def tsobench(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "tsobench.bench", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_strategies_lists_one_line_each():
    out = tsobench("strategies")
    assert out.returncode == 0
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert names[:5] == ["per-request", "locked", "pool", "dispatcher", "unsafe-shared"]


def test_unknown_strategy_is_a_usage_error_listing_the_valid_ones():
    out = tsobench("run", "--strategy", "nope")
    assert out.returncode == 2
    assert "choose from per-request, locked, pool, dispatcher, unsafe-shared" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_options_exit_2_without_a_traceback():
    for args in (
        ["--concurrency", "0"],
        ["--duration", "1", "--requests", "5"],
        ["--api", "gevent"],
        ["--count", "0"],
        ["--server-fail-rate", "2"],
        ["--scheduler", "nowhere"],
        ["--server-host", "0.0.0.0"],
        ["--server-host", "10.0.0.1", "--target", "10.0.0.2:2379"],
    ):
        out = tsobench("run", "--strategy", "locked", *args)
        assert out.returncode == 2, args
        assert "Traceback" not in out.stderr


def test_a_clean_run_exits_0_and_writes_its_results(tmp_path):
    out = tsobench(
        "run",
        "-s",
        "dispatcher",
        "--api",
        "asyncio",
        "-c",
        "4",
        "--duration",
        "0.5",
        "--warmup",
        "0.2",
        "--output",
        str(tmp_path) + "/",
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    assert data["command"][:2] == ["tsobench", "run"]
    assert "throughput" in out.stdout and "OK" in out.stdout
    latency_row = next(line for line in out.stdout.splitlines() if "latency" in line)
    assert "p50" in latency_row and "max" in latency_row  # piped: one line, never wrapped mid-field


def test_the_unsafe_control_exits_3_and_still_saves(tmp_path):
    path = tmp_path / "unsafe.json"
    out = tsobench(
        "run",
        "-s",
        "unsafe-shared",
        "-c",
        "16",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--timeout",
        "1",
        "-o",
        str(path),
        "--quiet",
    )
    assert out.returncode == 3, out.stderr
    data = json.loads(path.read_text())
    assert data["metrics"]["requests_failed"] + data["correctness"]["violations"] > 0


def test_unreachable_target_is_a_clear_error(unused_address):
    out = tsobench("run", "-s", "locked", "--target", unused_address, "--duration", "0.2", "--timeout", "1", "--quiet")
    assert out.returncode in (1, 3)
    assert "Traceback" not in out.stderr


PLUGIN = '''
import asyncio
from tsobench.strategies import Strategy, Timestamp


class TwoOnly:
    """Answers the first two callers that ask, forever; leaves the others waiting (no error, no reply)."""

    def __init__(self, options):
        self.served, self.next = set(), 1 << 40

    async def open(self):
        self.never = asyncio.get_running_loop().create_future()

    async def get_ts(self, count=1):
        task = asyncio.current_task()
        if task not in self.served:
            if len(self.served) >= 2:
                await self.never
            self.served.add(task)
        await asyncio.sleep(0)
        self.next += count
        return Timestamp(self.next >> 18, self.next & 262143, count)

    async def close(self):
        pass


STRATEGY = Strategy("two-only", "answers two callers", TwoOnly, TwoOnly)
'''


def test_a_strategy_that_leaves_callers_waiting_exits_3_as_starved(tmp_path):
    """A third-party plugin (a real entry point) that never answers some callers."""
    (tmp_path / "two_only.py").write_text(PLUGIN)
    dist = tmp_path / "two_only-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: two-only\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tsobench.strategies]\ntwo-only = two_only:STRATEGY\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    args = [
        "run",
        "-s",
        "two-only",
        "--api",
        "asyncio",
        "-c",
        "6",
        "--duration",
        "1",
        "--warmup",
        "0",
        "-o",
        f"{tmp_path}/",
    ]
    out = subprocess.run(
        [sys.executable, "-P", "-m", "tsobench.bench", *args], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 3, out.stdout + out.stderr
    assert "STARVED" in out.stdout
    result = json.loads(next(tmp_path.glob("*two-only*.json")).read_text())
    assert result["metrics"]["fairness"]["starved_callers"] == 4
    assert result["metrics"]["censored"] >= 4
    assert result["metrics"]["latency_us"]["max"] >= 900_000


def test_a_remote_scheduler_needs_a_server_its_workers_reach():
    out = tsobench("run", "-s", "dispatcher", "-p", "2", "--scheduler", "tcp://192.0.2.1:8786")
    assert out.returncode == 2
    assert "--server-host" in out.stderr and "Traceback" not in out.stderr


def test_grpc_core_log_lines_only_with_verbose():
    """gRPC's C core logs a failed bind itself (add_port.cc); the CLI hides that unless -v."""
    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        quiet = tsobench("serve", "--port", port, "--metrics-port", "-1", env=env)
        loud = tsobench("-v", "serve", "--port", port, "--metrics-port", "-1", env=env)
    assert quiet.returncode == loud.returncode == 2
    assert "add_port.cc" not in quiet.stderr
    assert "add_port.cc" in loud.stderr
