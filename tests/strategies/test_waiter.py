"""A caller thread's wait for one answer: set by another thread, reusable for the next."""

from __future__ import annotations

import threading

import pytest

from tsobench.strategies.deadline import IDLE, DeadlineExceeded
from tsobench.strategies.waiter import ThreadWaiter


def test_an_answer_set_by_another_thread_is_returned_and_the_waiter_is_ready_again():
    waiter: ThreadWaiter[int] = ThreadWaiter(since=5)
    assert waiter.since == 5 and ThreadWaiter().since == IDLE
    threading.Thread(target=waiter.set_result, args=(42,)).start()
    assert waiter.wait() == 42
    threading.Thread(target=waiter.set_result, args=(43,)).start()
    assert waiter.wait() == 43  # the same waiter, the next request


def test_a_failure_is_raised_in_the_waiting_thread_and_a_later_answer_clears_it():
    waiter: ThreadWaiter[int] = ThreadWaiter()
    threading.Thread(target=waiter.set_exception, args=(DeadlineExceeded("late"),)).start()
    with pytest.raises(DeadlineExceeded, match="late"):
        waiter.wait()
    waiter.set_result(1)
    assert waiter.wait() == 1
