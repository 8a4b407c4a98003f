"""unsafe-shared: the negative control. One caller at a time is served right; it is declared unsafe."""

from __future__ import annotations

import asyncio

from tsobench import strategies
from tsobench.strategies import ClientOptions


def test_it_is_declared_unsafe_and_never_benchmarked():
    unsafe = strategies.get("unsafe-shared")
    assert not unsafe.safe and not unsafe.benchmark and not unsafe.baseline


def test_a_single_caller_gets_correct_timestamps_on_both_apis(inprocess_server):
    """The bug is concurrent reads: alone, the one stream works (so what the harness catches is the race)."""
    client = strategies.get("unsafe-shared").thread(ClientOptions(inprocess_server.address, timeout_s=5))
    client.open()
    try:
        first, second = client.get_ts(2), client.get_ts(5)
    finally:
        client.close()
    assert (first.count, second.count) == (2, 5) and (second.physical, second.logical) > (first.physical, first.logical)

    async def once() -> strategies.Timestamp:
        aclient = strategies.get("unsafe-shared").asyncio(ClientOptions(inprocess_server.address, timeout_s=5))
        await aclient.open()
        try:
            return await aclient.get_ts(4)
        finally:
            await aclient.close()

    assert asyncio.run(once()).count == 4
