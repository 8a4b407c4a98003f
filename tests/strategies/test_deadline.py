"""One watchdog per client: deadlines fire between the timeout and a period after it."""

from __future__ import annotations

import asyncio
import threading

from tsobench.strategies.deadline import AsyncWatchdog, DeadlineExceeded, ThreadWatchdog, period_for


def test_the_period_is_a_quarter_deadline_at_most_and_five_scans_a_second_at_least():
    assert period_for(0.4) == 0.1 and period_for(10.0) == 0.2
    assert issubclass(DeadlineExceeded, TimeoutError)  # the harness counts it as a timeout


def test_a_thread_watchdog_expires_what_started_a_deadline_of_ticks_ago():
    cutoffs: list[int] = []
    fired = threading.Event()

    def expire(cutoff: int) -> None:
        cutoffs.append(cutoff)
        if len(cutoffs) >= 6:
            fired.set()

    dog = ThreadWatchdog(0.04, expire)  # a period of 10 ms: four ticks per deadline
    try:
        assert fired.wait(10)
    finally:
        dog.stop()
    assert dog.ticks == 4
    assert cutoffs[:6] == [-3, -2, -1, 0, 1, 2]  # tick - ticks: a request noted at tick 0 expires at tick 4


def test_an_async_watchdog_runs_on_the_loop_and_stops_with_it():
    async def main() -> list[int]:
        cutoffs: list[int] = []
        dog = AsyncWatchdog(0.04, cutoffs.append)
        while len(cutoffs) < 3:
            await asyncio.sleep(0.005)
        await dog.stop()
        seen = len(cutoffs)
        await asyncio.sleep(0.05)
        assert len(cutoffs) == seen  # stopped: no more scans
        return cutoffs

    assert asyncio.run(main())[:3] == [-3, -2, -1]
