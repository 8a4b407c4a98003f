"""null: the harness's ceiling, an in-process counter with PD's timestamp semantics and no server."""

from __future__ import annotations

import asyncio
import threading

from tsobench import strategies
from tsobench.strategies import ClientOptions
from tsobench.strategies.base import LOGICAL_BITS


def composed(ts: strategies.Timestamp) -> int:
    return (ts.physical << LOGICAL_BITS) + ts.logical


def test_threads_share_one_counter_without_duplicates_and_counts_advance_it():
    client = strategies.get("null").thread(ClientOptions("unused:1"))  # no server: nothing is dialled
    client.open()
    seen: list[int] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(500):
            ts = client.get_ts(3)
            with lock:
                seen.append(composed(ts))

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert len(set(seen)) == 2000 and max(seen) - min(seen) == 3 * 1999  # each reply the top of its own 3


def test_async_callers_interleave_and_stay_in_order():
    async def main() -> list[int]:
        client = strategies.get("null").asyncio(ClientOptions("unused:1"))
        await client.open()
        order: list[int] = []

        async def caller() -> None:
            for _ in range(100):
                order.append(composed(await client.get_ts()))

        await asyncio.gather(*(caller() for _ in range(3)))
        await client.close()
        return order

    order = asyncio.run(main())
    assert order == sorted(order) and len(set(order)) == 300


def test_null_is_the_baseline_that_the_benchmark_suite_skips():
    null = strategies.get("null")
    assert null.baseline and not null.benchmark and null.safe
