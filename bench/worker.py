"""The body of one client process (started with the ``spawn`` method, so its
gRPC channels are created after the process starts, never inherited)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from multiprocessing.synchronize import Event

from .config import ShardConfig
from .errors import describe
from .shard import Clock, run_shard


def _exit_with_parent() -> None:
    """Whatever ends the parent (kill -9 too), a shard has no one left to report to: go too."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(
    shard: ShardConfig, conn: Connection, progress: Synchronized, stop: Event, interval: SynchronizedArray
) -> None:
    # Ctrl-C reaches the whole process group; the parent decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()

    def on_ready() -> None:
        conn.send(("ready", None))
        kind, start_at = conn.recv()
        if kind != "go":
            os._exit(0)
        time.sleep(max(0.0, start_at - time.time()))

    def set_progress(done: int) -> None:
        progress.value = done

    def set_interval(index: int, answered: int, p99_us: int) -> None:
        interval[:] = [index, answered, p99_us]

    def watch_stop(clock: Clock) -> None:
        def wait() -> None:
            stop.wait()
            clock.interrupt()

        threading.Thread(target=wait, daemon=True, name="stop-watch").start()

    try:
        result = run_shard(
            shard, on_ready=on_ready, progress=set_progress, clock_hook=watch_stop, on_interval=set_interval
        )
        conn.send(("result", result))
    except BaseException as exc:  # report, never hang the parent
        conn.send(("error", describe(exc)))
    finally:
        conn.close()
        # Hung gRPC threads (the unsafe control can leave some) must not keep
        # this process alive once its result is out.
        os._exit(0)
