"""Files written whole or not at all, whoever else writes them at the same moment."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tsobench.files import write_atomically

SECONDS = 2.0

# A writer in a process of its own: documents of varying size, each whole JSON, for SECONDS.
WRITER = """\
import json, sys, time
from tsobench.files import write_atomically
path, name, until = sys.argv[1], sys.argv[2], time.monotonic() + float(sys.argv[3])
n = 0
while time.monotonic() < until:
    write_atomically(path, json.dumps({"writer": name, "n": n, "pad": "x" * (n % 97 * 300)}))
    n += 1
print(n)
"""


def test_writers_of_one_file_never_fail_and_readers_never_see_a_torn_file(tmp_path):
    path = tmp_path / "sweep.json"
    write_atomically(path, json.dumps({"writer": "first", "n": 0}))
    processes = [
        subprocess.Popen(
            [sys.executable, "-P", "-c", WRITER, str(path), f"process-{i}", str(SECONDS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    until = time.monotonic() + SECONDS
    failures: list[BaseException] = []
    counts = {"writes": 0, "reads": 0}

    def write(name: str) -> None:
        n = 0
        try:
            while time.monotonic() < until:
                write_atomically(path, json.dumps({"writer": name, "n": n, "pad": "y" * (n % 89 * 300)}))
                n += 1
        except BaseException as exc:
            failures.append(exc)
        counts["writes"] += n

    def read() -> None:
        try:
            while time.monotonic() < until:
                document = json.loads(Path(path).read_text())  # a torn or empty file would not parse
                assert {"writer", "n"} <= document.keys()
                counts["reads"] += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(f"thread-{i}",)) for i in range(2)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for proc in processes:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        counts["writes"] += int(out)
    assert failures == []
    assert counts["writes"] > 100 and counts["reads"] > 100  # they did race
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.json"]  # no temporary file left behind


@pytest.mark.skipif(not Path("/proc/self/mounts").is_file(), reason="Linux's /proc")
def test_an_unwritable_folder_gets_its_true_reason():
    from tsobench.files import check_writable

    assert check_writable("/proc") == "cannot write into /proc: /proc is on proc, a file system that takes no new files"
    assert "/proc is on proc" in (check_writable("/proc/tsobench-x") or "")
