"""``tsobench`` and ``python -m tsobench.bench``: the command line, with gRPC's log quiet unless -v."""

from __future__ import annotations

import os
import subprocess
import sys

# main() as the `tsobench` script calls it, then what it left in GRPC_VERBOSITY (set before grpc loads)
SCRIPT = """
import os, sys
from tsobench.bench.__main__ import main
sys.argv = ["tsobench", *sys.argv[1:]]
try:
    main()
except SystemExit as stop:
    print("exit", stop.code, os.environ["GRPC_VERBOSITY"])
"""


def test_the_script_and_the_module_are_the_same_command_and_quiet_grpc_unless_verbose():
    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    results = {
        flags: subprocess.run([sys.executable, "-c", SCRIPT, *flags], capture_output=True, text=True, env=env)
        for flags in (("strategies",), ("-v", "strategies"))
    }
    quiet, verbose = results[("strategies",)], results[("-v", "strategies")]
    assert "locked" in quiet.stdout and quiet.stdout.splitlines()[-1] == "exit 0 NONE", quiet.stderr
    assert verbose.stdout.splitlines()[-1] in ("exit 0 ERROR", "exit 2 ERROR"), verbose.stderr
    module = subprocess.run([sys.executable, "-P", "-m", "tsobench.bench", "--help"], capture_output=True, text=True)
    assert module.returncode == 0 and module.stdout.startswith("Usage: tsobench ")
