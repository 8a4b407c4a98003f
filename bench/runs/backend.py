"""What the runner needs from its shards, wherever they run: spawned processes
on this machine (``spawned``) or Dask tasks on a cluster (``dask_shards``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tsobench.bench.measure.intervals import LiveFigures
    from tsobench.bench.measure.shard import ShardResult

READY_TIMEOUT_S = 60.0  # every shard must have opened its client by then


class RunError(RuntimeError):
    """The run could not start (server, target, shard processes); says why."""


class ShardBackend(Protocol):
    results: dict[int, ShardResult]
    failures: dict[int, str]  # index -> why it has no result
    placement: dict[int, dict[str, str | None]]  # index -> {"host", "worker"} where it ran

    def wait_ready(self) -> None:
        """Block until every shard has opened its client; RunError if one cannot."""

    def go(self, start_at: float) -> None:
        """Release every shard to start its load at this wall-clock instant."""

    def poll(self) -> bool:
        """Collect whatever has arrived; True when every shard has answered."""

    def done(self) -> int:
        """Requests finished so far, all shards (for progress)."""

    def last_interval(self) -> LiveFigures | None:
        """(index, answered, failed, p50 µs, p99 µs) of the last interval the shards have reported (for progress)."""

    def stop(self) -> None:
        """Ask every shard to end its load now and report what it measured (Ctrl-C)."""

    def kill_stragglers(self) -> None:
        """Give up on shards still running: each becomes a failure."""

    def close(self) -> None:
        """Release everything; never blocks for long."""

    def environment(self) -> dict[str, Any]:
        """``scheduler``, ``hosts`` and ``warnings`` for the results' environment."""
