"""A sweep point's process: runs its command, passes one stop on as one SIGINT, dies with the sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# A stand-in for `tsobench run`: writes how many SIGINTs it got when it ends (on the first, after a moment,
# so that repeated stops have time to arrive), exits 130 after a stop, else the code it was given.
CHILD = """
import signal, sys, time
from pathlib import Path
got = []
signal.signal(signal.SIGINT, lambda *a: got.append(1))
Path(sys.argv[1]).write_text("started")
deadline = time.monotonic() + 20
while not got and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.5)
Path(sys.argv[1]).write_text(str(len(got)))
sys.exit(130 if got else int(sys.argv[2]))
"""


def start(tmp_path: Path, sweep_pid: int, code: int = 0) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "child.txt"
    argv = [sys.executable, "-P", "-m", "tsobench.bench.sweeps.point", str(sweep_pid)]
    point = subprocess.Popen([*argv, sys.executable, "-c", CHILD, str(out), str(code)])
    return point, out


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30  # a bound for a hang only
    while not path.exists():
        assert time.monotonic() < deadline, "the point never started its run"
        time.sleep(0.02)


def test_repeated_stops_reach_the_run_as_one_sigint_and_its_code_is_the_points(tmp_path):
    point, out = start(tmp_path, os.getpid())
    wait_for(out)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        point.send_signal(sig)
    assert point.wait(30) == 130
    assert out.read_text() == "1"


def test_the_runs_exit_code_passes_through_and_a_killed_run_says_128_plus_the_signal():
    argv = [sys.executable, "-P", "-m", "tsobench.bench.sweeps.point", str(os.getpid()), sys.executable, "-c"]
    assert subprocess.run([*argv, "raise SystemExit(3)"], timeout=30).returncode == 3
    killed = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    assert subprocess.run([*argv, killed], timeout=30).returncode == 128 + signal.SIGKILL


def test_a_point_whose_sweep_is_already_gone_runs_nothing(tmp_path):
    point, out = start(tmp_path, sweep_pid=1)  # not its parent: the tie to the sweep cannot hold
    assert point.wait(30) == 1
    assert not out.exists()
