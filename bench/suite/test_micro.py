"""Micro-benchmarks of the hot paths: one get_ts on a warm stream per strategy,
the dispatcher's batch split, the checker per timestamp, a histogram record."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from tsobench import strategies
from tsobench.bench import latency
from tsobench.bench.checker import CallerOrder, RangeSet, RealTimeOrder
from tsobench.protos import pdpb_pb2
from tsobench.strategies.dispatcher import Batch, split

from .conftest import scale

SCALE = scale()


@pytest.fixture(params=SCALE.strategies)
def strategy(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def thread_client(tso_server, strategy: str) -> Iterator[strategies.TsoClient]:
    client = strategies.get(strategy).thread(strategies.ClientOptions(tso_server.address))
    client.open()
    client.get_ts()  # warm: the stream is open before timing starts
    yield client
    client.close()


def test_get_ts_thread(benchmark, thread_client: strategies.TsoClient) -> None:
    benchmark.group = "micro: get_ts (thread)"
    ts = benchmark(thread_client.get_ts)
    assert ts.logical > 0


def test_get_ts_asyncio(benchmark, tso_server, strategy: str) -> None:
    """Includes one run_until_complete per call: compare against the thread API with that in mind."""
    benchmark.group = "micro: get_ts (asyncio)"
    loop = asyncio.new_event_loop()
    client = strategies.get(strategy).asyncio(strategies.ClientOptions(tso_server.address))
    try:
        loop.run_until_complete(client.open())
        loop.run_until_complete(client.get_ts())
        ts = benchmark(lambda: loop.run_until_complete(client.get_ts()))
        assert ts.logical > 0
    finally:
        loop.run_until_complete(client.close())
        loop.close()


def test_dispatcher_split(benchmark) -> None:
    benchmark.group = "micro: hot paths"
    batch = Batch()
    for _ in range(100):
        batch.add(1, None)  # the split never touches the futures
    reply = pdpb_pb2.TsoResponse(count=100, timestamp=pdpb_pb2.Timestamp(physical=1_700_000_000_000, logical=500))
    out = benchmark(split, batch, reply)
    assert [t.logical for t in out] == list(range(401, 501))


def test_checks_of_100k_replies(benchmark) -> None:
    """What the fold runs on the replies callers appended: uniqueness, per-caller and real-time order."""
    benchmark.group = "micro: hot paths"
    n = 100_000
    lasts = (1_700_000_000_000 << 18) + np.arange(1, n + 1, dtype=np.int64)
    sent = np.arange(n, dtype=np.int64) * 10
    done = sent + 5

    def check() -> int:
        ranges, order, real_time = RangeSet(), CallerOrder(1), RealTimeOrder()
        ranges.add(lasts, lasts)
        real_time.add(done, lasts)
        return int(order.check(0, lasts, lasts).sum()) + int(real_time.late(sent, lasts).sum()) + ranges.duplicates

    assert benchmark(check) == 0


def test_histogram_record(benchmark) -> None:
    benchmark.group = "micro: hot paths"
    histogram = latency.new_histogram()
    benchmark(histogram.record_value, 1234)
    assert histogram.get_total_count() > 0
