"""What a run shows Prometheus while it runs (``run --metrics-port``, ``--pushgateway``): the Go PD
client's TSO metrics and this project's own client metrics, as cumulative counts.

Nothing here runs per request. After each fold (every ``FOLD_S``) the observer bins what the fold
took (each reply's send and arrival, each failure's) with one numpy call per histogram, adds
the strategy's own per-RPC counts (a batching design counts its RPCs itself), and hands the
whole flat vector to ``publish``: a spawned shard writes it to shared memory, where the parent
sums every shard's and serves the sum (``bench.runs.exporter``).

What each design reports, as PD's client would:
- ``pd_client_cmd_handle_cmds_duration_seconds{type="tso"}``: each answered request, from its
  send to its reply; ``type="wait"`` the same (a caller waits from the moment it asks);
  ``type="tso_async_wait"`` zero for each (a caller calls Wait at once). Failed requests go to
  ``pd_client_cmd_handle_failed_cmds_duration_seconds`` (``tso`` and ``wait``).
- ``pd_client_request_handle_requests_duration_seconds``, one observation per RPC: a design
  without batches sends one RPC per request, so each request's send-to-reply is its RPC (for
  pool and locked it includes the wait for a stream: an upper bound); the dispatcher times each
  batch's RPC itself (``strategies/dispatcher.py``). ``type="tso-failed"``: a failed request of a
  design without batches; the dispatcher does not count failed batches.
- ``pd_client_request_handle_tso_batch_size``: the requests an RPC carried (1 without batches;
  the dispatcher's batch), and ``..._best_batch_size`` for the dispatcher only (it collects what
  is queued, up to --max-batch: its best batch is the batch it sends).
- ``pd_client_request_tso_batch_send_latency``: no observations (no design times when a batch
  starts collecting).
- ``pd_client_request_estimate_tso_latency``: the mean RPC time over the last fold.
The harness's own ceiling (``null``) makes no RPC: no per-RPC observation at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import grpc
import numpy as np

from tsobench import pd_metrics as pd

if TYPE_CHECKING:
    from tsobench.bench.measure.fold import Record, _Taken

ERROR_KINDS = tuple(sorted({c.name for c in grpc.StatusCode} - {"OK", "DEADLINE_EXCEEDED"} | {"timeout", "other"}))
# (key, bounds): each histogram's slots are its counts (+Inf last) and its sum (µs for seconds)
HISTOGRAMS: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("cmd_tso", pd.E05),
    ("cmd_wait", pd.E05),
    ("cmd_tso_async_wait", pd.E05),
    ("failed_tso", pd.E05),
    ("failed_wait", pd.E05),
    ("rpc_tso", pd.E05),
    ("rpc_tso_failed", pd.E05),
    ("batch", pd.CLIENT_BATCH),
    ("best_batch", pd.E1),
    ("send_latency", pd.E05),
    ("latency", pd.OWN_LATENCY),
)
SECONDS = {k for k, bounds in HISTOGRAMS if bounds is not pd.CLIENT_BATCH and bounds is not pd.E1}
SCALARS = ("requests", "timestamps", "in_flight", "estimate_us", "rpcs_seen", *(f"error_{k}" for k in ERROR_KINDS))


def _layout() -> tuple[dict[str, slice], int]:
    at, slots = 0, {}
    for key, bounds in HISTOGRAMS:
        slots[key] = slice(at, at + len(bounds) + 2)  # counts, +Inf, sum
        at += len(bounds) + 2
    for key in SCALARS:
        slots[key] = slice(at, at + 1)
        at += 1
    return slots, at


SLOTS, SIZE = _layout()
BOUNDS = dict(HISTOGRAMS)
# The dispatcher's own per-RPC counts, under these counter names (``strategies.dispatcher``).
RPC_COUNTERS = {"rpc_tso": "rpc_seconds_le_", "batch": "rpc_batch_le_", "best_batch": "rpc_best_le_"}
RPC_SUMS = {"rpc_tso": "rpc_us_sum", "batch": "batched_requests", "best_batch": "batched_requests"}


def _edges(key: str) -> np.ndarray:
    bounds = BOUNDS[key]
    return np.array(
        [round(b * 1e6) for b in bounds] if key in SECONDS else bounds, np.int64 if key in SECONDS else float
    )


class Observer:
    """Called by the fold with what it took; keeps the cumulative vector and publishes it."""

    def __init__(
        self,
        count: int,
        records: Sequence[Record],
        counters: Callable[[], dict[str, int]],
        publish: Callable[[list[int]], None],
        *,
        rpcs: bool = True,
    ) -> None:
        self.count, self.records, self.counters, self.publish = count, records, counters, publish
        self.rpcs = rpcs  # False: the harness's own ceiling, which makes no RPC
        self.vector = np.zeros(SIZE, np.int64)
        self._edges = {key: _edges(key) for key, _ in HISTOGRAMS}
        self._last_rpc = (0, 0)  # the strategy's (rpcs, µs) at the last fold

    def _bin(self, key: str, values: np.ndarray, times: int = 1) -> None:
        if not len(values):
            return
        s = SLOTS[key]
        edges = self._edges[key]
        counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
        self.vector[s.start : s.stop - 1] += counts * times
        self.vector[s.stop - 1] += int(values.sum()) * times

    def _zeros(self, key: str, n: int) -> None:
        """n observations of 0 (in the first bucket, adding nothing to the sum)."""
        self.vector[SLOTS[key].start] += n

    def __call__(self, t: _Taken) -> None:
        answered = t.done - t.sent
        failed = t.failed_done - t.failed_at
        v = self.vector
        self._bin("cmd_tso", answered)
        self._bin("cmd_wait", answered)
        self._zeros("cmd_tso_async_wait", len(answered))
        self._bin("failed_tso", failed)
        self._bin("failed_wait", failed)
        self._bin("latency", t.done - t.intended)
        v[SLOTS["requests"]] += len(answered)
        v[SLOTS["timestamps"]] += len(answered) * self.count
        for kind, n in Counter(t.failed_kind).items():
            key = f"error_{kind}" if f"error_{kind}" in SLOTS else "error_other"
            v[SLOTS[key]] += n
        v[SLOTS["in_flight"]] = sum(1 for r in self.records if r.pending >= 0)
        counters = self.counters()
        if not self.rpcs:
            pass
        elif "rpcs" in counters:  # a batching design counts its RPCs itself
            for key, prefix in RPC_COUNTERS.items():
                s = SLOTS[key]
                v[s.start : s.stop - 1] = [counters.get(f"{prefix}{i}", 0) for i in range(s.stop - s.start - 1)]
                v[s.stop - 1] = counters.get(RPC_SUMS[key], 0)
            rpcs, us = counters["rpcs"], counters.get("rpc_us_sum", 0)
            if rpcs > self._last_rpc[0]:
                v[SLOTS["estimate_us"]] = (us - self._last_rpc[1]) // (rpcs - self._last_rpc[0])
            self._last_rpc = (rpcs, us)
            v[SLOTS["rpcs_seen"]] = rpcs
        else:  # one RPC per request
            self._bin("rpc_tso", answered)
            self._bin("rpc_tso_failed", failed)
            s = SLOTS["batch"]
            v[s.start + int(np.searchsorted(self._edges["batch"], self.count, side="left"))] += len(answered)
            v[s.stop - 1] += len(answered) * self.count
            if len(answered):
                v[SLOTS["estimate_us"]] = int(answered.mean())
            v[SLOTS["rpcs_seen"]] += len(answered) + len(failed)
        self.publish(v.tolist())


def histogram(vector: Sequence[int], key: str) -> tuple[list[int], float]:
    """(counts, sum) of one histogram in a vector; seconds for the time histograms."""
    s = SLOTS[key]
    total = vector[s.stop - 1]
    return list(vector[s.start : s.stop - 1]), total / 1e6 if key in SECONDS else float(total)


def scalar(vector: Sequence[int], key: str) -> int:
    return int(vector[SLOTS[key].start])
