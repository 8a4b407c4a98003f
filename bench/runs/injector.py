"""Fires the run's faults at their times on the embedded server, from a thread of the parent."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tsobench.bench.measure.errors import one_line
from tsobench.bench.model.faults import CLUSTER_KINDS, LEADER_WAIT_S, Fault, Injected, in_time_order

if TYPE_CHECKING:
    from tsobench.server import ChildCluster, ChildServer


class FaultInjector:
    """Fires each fault at its time on the embedded server, from a thread of the parent.

    ``window_start`` is the wall-clock instant (``time.time()``) the measured
    window opens; ``stop()`` ends early (Ctrl-C) and returns what happened.
    """

    def __init__(self, server: ChildServer | ChildCluster, faults: Sequence[Fault], window_start: float) -> None:
        self.server, self.faults, self.window_start = server, faults, window_start
        self.injected: list[Injected] = []
        self._stop = threading.Event()
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
                self._fire(fault)
            except Exception as exc:  # recorded with the fault: it did not (fully) happen
                error = one_line(exc)
            ended = self._now_s() if fault.kind in ("kill", *CLUSTER_KINDS) else started + fault.duration_s
            self.injected.append(Injected(fault, round(started, 6), round(ended, 6), error))

    def _fire(self, fault: Fault) -> None:
        from tsobench.server import ChildServer

        if fault.kind in CLUSTER_KINDS:
            self._move_leader(fault)
            return
        server = self.server
        assert isinstance(server, ChildServer)  # RunConfig allows these only with a single server
        if fault.kind == "kill":
            server.kill()
            if self._stop.wait(fault.duration_s):
                raise InterruptedError("the run stopped while the server was down")
            server.restart()
        elif fault.kind == "abort":
            server.abort_streams()
        elif fault.kind == "stall":
            server.stall(fault.duration_s)
        else:
            server.delay(fault.duration_s, fault.delay_ms)

    def _move_leader(self, fault: Fault) -> None:
        """Transfer or kill the leader, then wait until another member holds the lease."""
        from tsobench.server import ChildCluster

        cluster = self.server
        assert isinstance(cluster, ChildCluster)  # RunConfig allows leader faults only with members
        old = cluster.transfer_leader()[0] if fault.kind == "leader" else cluster.kill_leader()
        deadline = time.monotonic() + LEADER_WAIT_S
        while (leader := cluster.leader()) is None or leader == old:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no new leader within {LEADER_WAIT_S:g}s")
            if self._stop.wait(0.01):
                raise InterruptedError("the run stopped before a new leader was elected")
