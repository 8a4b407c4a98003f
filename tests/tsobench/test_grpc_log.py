"""gRPC's own log: silent unless -v/--verbose, and the choice reaches child processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tsobench.grpc_log import quiet_grpc_unless_verbose


@pytest.mark.parametrize(("argv", "level"), [([], "NONE"), (["run", "-v"], "ERROR"), (["--verbose"], "ERROR")])
def test_the_level_follows_the_verbose_flag(monkeypatch, argv, level):
    monkeypatch.delenv("GRPC_VERBOSITY", raising=False)
    quiet_grpc_unless_verbose(argv)
    assert os.environ["GRPC_VERBOSITY"] == level


def test_a_level_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv("GRPC_VERBOSITY", "DEBUG")
    quiet_grpc_unless_verbose(["-v"])
    assert os.environ["GRPC_VERBOSITY"] == "DEBUG"


def test_a_child_process_inherits_the_choice():
    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    code = (
        "import os, subprocess, sys; from tsobench.grpc_log import quiet_grpc_unless_verbose; "
        "quiet_grpc_unless_verbose(); "
        "print(subprocess.run([sys.executable, '-c', 'import os; print(os.environ[\"GRPC_VERBOSITY\"])'], "
        "capture_output=True, text=True).stdout.strip())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    assert out.stdout.strip() == "NONE", out.stderr
