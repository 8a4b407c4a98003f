"""Fixtures of the strategies' tests."""

import os
import signal
import threading
from collections.abc import Callable

import pytest

from tsobench.server import ChildServer, InProcessServer, ServerConfig, ServerCounters


@pytest.fixture
def stopped_server(tmp_path):
    """A server frozen with SIGSTOP: it accepts connections and answers nothing."""
    with ChildServer(ServerConfig(data_dir=str(tmp_path))) as server:
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            yield server
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)


@pytest.fixture
def thread_load() -> Callable[..., tuple[list, ServerCounters]]:
    """``thread_load(server, client, threads=8, each=20, count=1)``: open the thread-API client, have every
    thread call ``get_ts(count)`` ``each`` times at once, close it; returns every reply (in no particular
    order) and what the server counted meanwhile."""

    def load(
        server: InProcessServer | ChildServer, client, threads: int, each: int, count: int = 1
    ) -> tuple[list, ServerCounters]:
        before = server.counters()
        replies: list = []

        def caller() -> None:
            replies.extend(client.get_ts(count) for _ in range(each))  # list.extend of a finished list: atomic

        client.open()
        try:
            started = [threading.Thread(target=caller) for _ in range(threads)]
            for t in started:
                t.start()
            for t in started:
                t.join(60)
        finally:
            client.close()
        return replies, server.counters() - before

    return load
