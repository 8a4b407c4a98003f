"""Fires the run's faults at their times on the embedded server, from a thread of the parent.

What each fault does is its kind's (``FaultKind.fire``, in ``bench/model/faults.py``); here only the
schedule, and the server or cluster seen as a ``FaultTarget``."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from tsobench.bench.measure.errors import one_line
from tsobench.bench.model.faults import Fault, Injected, in_time_order

if TYPE_CHECKING:
    from tsobench.server import ChildCluster, ChildServer


class _Target:
    """The embedded server or cluster as a fault sees it (``FaultTarget``); a kind that needs the other
    (a leader fault on one server) is refused by RunConfig before it gets here."""

    def __init__(self, server: ChildServer | ChildCluster, stop: threading.Event) -> None:
        self._server, self._stop = server, stop

    def _single(self) -> ChildServer:
        return cast("ChildServer", self._server)  # RunConfig allows these kinds only with a single server

    def _cluster(self) -> ChildCluster:
        return cast("ChildCluster", self._server)  # ... and these only with members

    def admin(self, request: str, **fields: float) -> None:
        self._single().admin(request, **fields)

    def kill(self) -> None:
        self._single().kill()

    def restart(self) -> None:
        self._single().restart()

    def transfer_leader(self) -> int:
        return self._cluster().transfer_leader()[0]

    def kill_leader(self) -> int:
        return self._cluster().kill_leader()

    def leader(self) -> int | None:
        return self._cluster().leader()

    def wait(self, seconds: float) -> bool:
        return self._stop.wait(seconds)


class FaultInjector:
    """Fires each fault at its time on the embedded server, from a thread of the parent.

    ``window_start`` is the wall-clock instant (``time.time()``) the measured
    window opens; ``stop()`` ends early (Ctrl-C) and returns what happened.
    """

    def __init__(self, server: ChildServer | ChildCluster, faults: Sequence[Fault], window_start: float) -> None:
        self.server, self.faults, self.window_start = server, faults, window_start
        self.injected: list[Injected] = []
        self._stop = threading.Event()
        self._target = _Target(server, self._stop)
        self._thread = threading.Thread(target=self._run, name="faults", daemon=True)

    def start(self) -> FaultInjector:
        self._thread.start()
        return self

    def stop(self) -> list[Injected]:
        self._stop.set()
        self._thread.join()
        return self.injected

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)

    def _now_s(self) -> float:
        return time.time() - self.window_start

    def _run(self) -> None:
        for fault in in_time_order(self.faults):
            if self._stop.wait(max(0.0, fault.at_s - self._now_s())):
                return
            started, error = self._now_s(), None
            try:
                fault.declared.fire(self._target, fault)
            except Exception as exc:  # recorded with the fault: it did not (fully) happen
                error = one_line(exc)
            ended = self._now_s() if fault.declared.lasts_until_back else started + fault.duration_s
            self.injected.append(Injected(fault, round(started, 6), round(ended, 6), error))
