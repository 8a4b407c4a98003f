"""locked: one shared stream held across each request; its bound is one request in flight."""

from __future__ import annotations

from tsobench import strategies
from tsobench.strategies import ClientOptions


def test_concurrent_callers_go_through_one_stream(inprocess_server, thread_load):
    client = strategies.get("locked").thread(ClientOptions(inprocess_server.address, timeout_s=5))
    replies, done = thread_load(inprocess_server, client, threads=6, each=25)
    assert len(replies) == 150 and (done.rpcs, done.streams_opened) == (150, 1)


def test_it_states_one_request_in_flight_whatever_the_callers():
    locked = strategies.get("locked")
    for callers in (1, 64):
        bound = locked.bound(ClientOptions("x:1", pool_size=8), callers)
        assert (bound.in_flight, bound.unit) == (1, "requests")
    assert set(locked.recovery) >= {"abort", "kill"}
