"""Killing `tsobench run`, politely or not, leaves no process and no temp dir behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tsobench.server.embedded import fetch_counters

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc")


def children_of(pid: int) -> dict[int, str]:
    """Live child processes of pid, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        if int(fields[1]) == pid and fields[0] not in "ZX":
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZX"  # a zombie is dead, whoever has yet to reap it


def wait_for_load(run: subprocess.Popen, tmp: Path, timeout_s: float = 60) -> dict[int, str]:
    """The run's child processes, once its embedded server has answered requests."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()
        for port_file in tmp.glob("tso-*/metrics-port"):
            try:
                url = f"http://127.0.0.1:{int(port_file.read_text())}/metrics"
                if fetch_counters(url).rpcs > 0:
                    return children_of(run.pid)
            except (OSError, ValueError):
                pass
        time.sleep(0.1)
    raise AssertionError("the load did not start")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_tsobench_run_leaves_no_server_and_no_temp_dir(tmp_path, sig):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    run_args = ["run", "-s", "locked", "-c", "2", "--duration", "30", "--warmup", "0", "--quiet"]
    run = subprocess.Popen(
        [sys.executable, "-P", "-m", "tsobench.bench", *run_args, "--output", f"{tmp_path / 'out'}/"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    children: dict[int, str] = {}
    try:
        children = wait_for_load(run, tmp)
        servers = [pid for pid, cmd in children.items() if "tsobench.server" in cmd]
        assert len(servers) == 1, children
        run.send_signal(sig)
        _, err = run.communicate(timeout=60)
        deadline = time.monotonic() + 20
        while (any(map(alive, children)) or any(tmp.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [cmd for pid, cmd in children.items() if alive(pid)], "processes outlived the run"
        assert sorted(p.name for p in tmp.iterdir()) == [], "temp dirs outlived the run"
        if sig == signal.SIGTERM:  # like Ctrl-C: stopped early, and what was measured is saved
            assert run.returncode in (0, 3), err
            assert "Traceback" not in err
            assert len(list((tmp_path / "out").glob("*.json"))) == 1
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
