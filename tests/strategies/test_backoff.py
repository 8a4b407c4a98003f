"""Reconnect backoff: exponential from 10 ms to 500 ms, one step per outage, reset by a reply."""

from __future__ import annotations

import asyncio
import threading
import time

from tsobench.strategies.backoff import FIRST_S, LONGEST_S, Backoff, CountsReconnects


def test_the_wait_doubles_per_outage_up_to_the_cap_and_a_reply_resets_it(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])  # pure unit: the clock is ours
    backoff = Backoff()
    assert backoff.due() and backoff.delay_s == 0
    delays = []
    for _ in range(8):
        backoff.failed()
        delays.append(backoff.delay_s)
        assert not backoff.due()
        now[0] += backoff.delay_s  # the wait passes: the next failure is a new attempt
    assert delays[:3] == [FIRST_S, 2 * FIRST_S, 4 * FIRST_S] and delays[-1] == LONGEST_S
    backoff.succeeded()
    backoff.failed()
    assert backoff.delay_s == FIRST_S


def test_failures_during_the_wait_are_the_same_outage(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    backoff = Backoff()
    for _ in range(5):  # a pool's streams broken by one abort
        backoff.failed()
    assert backoff.delay_s == FIRST_S


def test_waits_count_reconnects_and_a_stop_cuts_a_thread_wait_short():
    client = CountsReconnects()
    client.backoff = Backoff()
    client.backoff.wait()  # healthy: no wait, no reconnect
    assert client.counters() == {"reconnects": 0}
    for _ in range(7):
        client.backoff.failed()
        stop = threading.Event()
        stop.set()
        client.backoff.wait(stop)  # returns at once: the stop is set
    asyncio.run(_healthy_async_wait())
    assert client.counters() == {"reconnects": 7}


async def _healthy_async_wait() -> None:
    backoff = Backoff()
    await backoff.wait_async()
    assert backoff.attempts == 0
