"""Exclusive streams (locked, pool): a caller has a stream to itself for its write and read; waits
are FIFO; a late reply fails with a deadline and the stream is reopened on its next checkout."""

from __future__ import annotations

import asyncio

import pytest

from tsobench.strategies import ClientClosed, ClientOptions
from tsobench.strategies.base import LOGICAL_BITS
from tsobench.strategies.deadline import DeadlineExceeded
from tsobench.strategies.exclusive import AsyncClient, ThreadClient


def composed(ts) -> int:
    return (ts.physical << LOGICAL_BITS) + ts.logical


@pytest.mark.parametrize("streams", [1, 3])
def test_many_threads_share_n_streams_and_the_server_sees_exactly_n(inprocess_server, thread_load, streams):
    client = ThreadClient(ClientOptions(inprocess_server.address, timeout_s=5), streams=streams)
    replies, done = thread_load(inprocess_server, client, threads=8, each=50, count=2)
    assert len({composed(ts) for ts in replies}) == 400 and (done.rpcs, done.timestamps) == (400, 800)
    assert done.streams_opened == streams  # no reconnects on a healthy server: exactly its streams
    assert client.counters() == {"reconnects": 0}


def test_async_callers_share_the_streams_on_one_loop(inprocess_server):
    async def main() -> list[int]:
        client = AsyncClient(ClientOptions(inprocess_server.address, timeout_s=5), streams=2)
        await client.open()
        try:
            replies = await asyncio.gather(*(client.get_ts() for _ in range(60)))
        finally:
            await client.close()
        return [composed(r) for r in replies]

    assert len(set(asyncio.run(main()))) == 60


def test_a_reply_later_than_the_deadline_fails_that_request_and_the_next_checkout_reconnects(
    start_inprocess_server,
):
    server = start_inprocess_server(delay_ms=1_000)
    client = ThreadClient(ClientOptions(server.address, timeout_s=0.2), streams=1)
    client.open()
    try:
        with pytest.raises(DeadlineExceeded):
            client.get_ts()
        with pytest.raises(DeadlineExceeded):
            client.get_ts()  # the stream the watchdog cancelled is opened again, after a backoff
        assert client.counters()["reconnects"] >= 1
    finally:
        client.close()
    with pytest.raises(ClientClosed):
        client.get_ts()
