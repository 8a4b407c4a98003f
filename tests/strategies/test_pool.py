"""pool: pool_size streams checked out exclusively; its bound is one request per stream."""

from __future__ import annotations

from tsobench import strategies
from tsobench.strategies import ClientOptions


def test_the_pool_opens_its_size_in_streams_and_no_more(inprocess_server, thread_load):
    client = strategies.get("pool").thread(ClientOptions(inprocess_server.address, timeout_s=5, pool_size=3))
    replies, done = thread_load(inprocess_server, client, threads=8, each=20)
    assert len(replies) == 160 and (done.rpcs, done.streams_opened) == (160, 3)


def test_its_bound_is_its_pool_size_and_it_takes_that_setting():
    pool = strategies.get("pool")
    bound = pool.bound(ClientOptions("x:1", pool_size=5), 64)
    assert (bound.in_flight, bound.unit) == (5, "requests")
    assert "pool_size" in pool.settings
