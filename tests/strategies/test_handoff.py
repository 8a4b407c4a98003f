"""The FIFO hand-off: the oldest waiter gets the next free item, expired waiters fail, close fails the rest."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tsobench.strategies import ClientClosed
from tsobench.strategies.deadline import DeadlineExceeded
from tsobench.strategies.handoff import AsyncHandOff, ThreadHandOff


def _waiting(handoff: ThreadHandOff, tick: int, got: list) -> threading.Thread:
    def take() -> None:
        try:
            got.append((tick, handoff.acquire(tick)))
        except Exception as exc:
            got.append((tick, type(exc).__name__))

    thread = threading.Thread(target=take)
    thread.start()
    return thread


def _queued(handoff: ThreadHandOff, n: int) -> None:
    deadline = time.monotonic() + 10  # a bound for a hang only
    while len(handoff._waiters) < n:
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_threads_get_released_items_oldest_waiter_first_and_no_release_is_barged():
    handoff = ThreadHandOff(["a"])
    assert handoff.acquire(0) == "a"
    got: list = []
    threads = []
    for tick in (1, 2, 3):
        threads.append(_waiting(handoff, tick, got))
        _queued(handoff, tick)
    handoff.release("a")
    threads[0].join(10)
    handoff.release("b")
    threads[1].join(10)
    assert got == [(1, "a"), (2, "b")]
    handoff.expire(cutoff=3)  # waited since tick 3 or earlier: its deadline
    threads[2].join(10)
    assert got[-1] == (3, "DeadlineExceeded")
    handoff.release("a")
    assert handoff.acquire(9) == "a"  # free again, nobody waiting: taken at once


def test_closing_fails_every_waiter_and_every_later_acquire():
    handoff = ThreadHandOff([])
    got: list = []
    thread = _waiting(handoff, 1, got)
    _queued(handoff, 1)
    handoff.close()
    thread.join(10)
    assert got == [(1, "ClientClosed")]
    with pytest.raises(ClientClosed):
        handoff.acquire(2)


def test_tasks_are_served_in_order_and_a_cancelled_waiter_passes_its_item_on():
    async def main() -> None:
        handoff = AsyncHandOff(["s"])
        assert await handoff.acquire(0) == "s"
        first = asyncio.create_task(handoff.acquire(1))
        second = asyncio.create_task(handoff.acquire(2))
        third = asyncio.create_task(handoff.acquire(3))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        handoff.release("s")  # the cancelled one is skipped
        assert await second == "s"
        handoff.expire(3)
        with pytest.raises(DeadlineExceeded):
            await third
        handoff.close()
        with pytest.raises(ClientClosed):
            await handoff.acquire(4)

    asyncio.run(main())
