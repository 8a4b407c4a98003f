"""per-request: a new stream per request; after a failure the next stream waits out a backoff."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tsobench import strategies
from tsobench.strategies import ClientOptions


def test_every_request_opens_and_closes_its_own_stream(inprocess_server):
    before = inprocess_server.counters()
    client = strategies.get("per-request").thread(ClientOptions(inprocess_server.address, timeout_s=5))
    client.open()
    try:
        replies = [client.get_ts(2) for _ in range(10)]
    finally:
        client.close()
    done = inprocess_server.counters() - before
    assert (done.rpcs, done.timestamps, done.streams_opened) == (10, 20, 10)
    stamps = [(r.physical, r.logical) for r in replies]
    assert stamps == sorted(stamps) and len(set(stamps)) == 10


def test_async_requests_each_open_a_stream(inprocess_server):
    async def main() -> None:
        client = strategies.get("per-request").asyncio(ClientOptions(inprocess_server.address, timeout_s=5))
        await client.open()
        try:
            await asyncio.gather(*(client.get_ts() for _ in range(8)))
        finally:
            await client.close()

    before = inprocess_server.counters()
    asyncio.run(main())
    assert (inprocess_server.counters() - before).streams_opened == 8


def test_a_failed_request_makes_the_next_one_a_counted_reconnect(start_inprocess_server):
    server = start_inprocess_server(fail_rate=1.0)
    client = strategies.get("per-request").thread(ClientOptions(server.address, timeout_s=5))
    client.open()
    try:
        for _ in range(2):
            with pytest.raises(grpc.RpcError):
                client.get_ts()
        assert client.counters() == {"reconnects": 1}  # the second waited out a backoff first
    finally:
        client.close()


def test_its_bound_is_one_request_per_caller():
    bound = strategies.get("per-request").bound(ClientOptions("x:1"), 12)
    assert (bound.in_flight, bound.unit) == (12, "requests")
