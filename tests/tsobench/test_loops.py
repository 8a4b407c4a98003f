"""The microsecond event loop: asyncio's selector loop on select()."""

from __future__ import annotations

import asyncio
import selectors

from tsobench.loops import select_event_loop


def test_the_loop_selects_with_select_and_runs_timers_and_callbacks():
    loop = select_event_loop()
    try:
        assert isinstance(loop, asyncio.SelectorEventLoop)
        assert isinstance(loop._selector, selectors.SelectSelector)

        async def sleeper() -> str:
            await asyncio.sleep(0.001)
            return "woke"

        assert loop.run_until_complete(sleeper()) == "woke"
    finally:
        loop.close()


def test_each_call_gives_a_new_loop():
    a, b = select_event_loop(), select_event_loop()
    try:
        assert a is not b
    finally:
        a.close()
        b.close()
