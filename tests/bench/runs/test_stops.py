"""Stop signals: SIGINT, SIGTERM and SIGHUP handled alike inside a block, the old handlers put back."""

from __future__ import annotations

import os
import signal
import threading

from tsobench.bench.runs.stops import STOP_SIGNALS, on_stop_signals


def test_every_stop_signal_reaches_the_handler_and_the_old_ones_come_back():
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    got: list[int] = []
    with on_stop_signals(lambda sig, frame: got.append(sig)):
        for sig in STOP_SIGNALS:
            os.kill(os.getpid(), sig)  # delivered to the main thread before kill returns
    assert got == list(STOP_SIGNALS)
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before


def test_outside_the_main_thread_no_handler_is_set():
    seen: dict[str, object] = {}

    def body() -> None:
        with on_stop_signals(lambda sig, frame: None):
            seen["handler"] = signal.getsignal(signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen["handler"] == before
