"""Fixtures of the strategies' tests."""

import os
import signal

import pytest

from tsobench.server import ChildServer, ServerConfig


@pytest.fixture
def stopped_server(tmp_path):
    """A server frozen with SIGSTOP: it accepts connections and answers nothing."""
    with ChildServer(ServerConfig(data_dir=str(tmp_path))) as server:
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            yield server
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
