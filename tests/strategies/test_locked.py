"""locked: one shared stream held across each request; its bound is one request in flight."""

from __future__ import annotations

import threading

from tsobench import strategies
from tsobench.strategies import ClientOptions


def test_concurrent_callers_go_through_one_stream(inprocess_server):
    before = inprocess_server.counters()
    client = strategies.get("locked").thread(ClientOptions(inprocess_server.address, timeout_s=5))
    client.open()
    threads = [threading.Thread(target=lambda: [client.get_ts() for _ in range(25)]) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    client.close()
    done = inprocess_server.counters() - before
    assert (done.rpcs, done.streams_opened) == (150, 1)


def test_it_states_one_request_in_flight_whatever_the_callers():
    locked = strategies.get("locked")
    for callers in (1, 64):
        bound = locked.bound(ClientOptions("x:1", pool_size=8), callers)
        assert (bound.in_flight, bound.unit) == (1, "requests")
    assert set(locked.recovery) >= {"abort", "kill"}
