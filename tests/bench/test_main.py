"""``tsobench`` and ``python -m tsobench.bench``: the command line, with gRPC's log quiet unless -v."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_module_and_the_script_are_the_same_command():
    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    module = subprocess.run(
        [sys.executable, "-P", "-m", "tsobench.bench", "--help"], capture_output=True, text=True, timeout=60, env=env
    )
    assert module.returncode == 0 and module.stdout.startswith("Usage: tsobench ")
    code = "import os, sys; sys.argv = ['tsobench', 'strategies']; from tsobench.bench.__main__ import main; main()"
    script = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert script.returncode == 0 and "locked" in script.stdout


def test_grpc_verbosity_is_set_before_grpc_loads():
    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    code = (
        "import os, sys; sys.argv = ['tsobench', '--help']; from tsobench.bench.__main__ import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(os.environ['GRPC_VERBOSITY'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.strip().splitlines()[-1] == "NONE", out.stderr
