"""The signals that stop a run or a sweep, and one way to handle them for a while.

``timeout``, systemd, CI runners and a closed terminal send SIGTERM or SIGHUP,
often to the whole process group; Ctrl-C sends SIGINT. A command takes all
three alike, and puts the previous handlers back when it is done.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def on_stop_signals(handler: Any) -> Iterator[None]:
    """``handler`` for every stop signal inside the block. Only the main thread can take signals:
    elsewhere (a sweep run from a thread) none is set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)  # None: set outside Python
