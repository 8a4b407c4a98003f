"""The observer bins what a fold took into the Go PD client's histograms, without a per-request step."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from tsobench import pd_metrics as pd
from tsobench.bench.measure import observed
from tsobench.bench.measure.fold import IDLE


def taken(sent, done, failed_at=(), failed_done=(), kinds=()):
    a = lambda v: np.array(v, np.int64)  # noqa: E731
    return SimpleNamespace(
        sent=a(sent),
        done=a(done),
        intended=a(sent),
        failed_at=a(failed_at),
        failed_done=a(failed_done),
        failed_kind=list(kinds),
    )


def test_a_design_without_batches_is_one_rpc_per_request():
    published = []
    records = [SimpleNamespace(pending=IDLE), SimpleNamespace(pending=5)]
    o = observed.Observer(3, records, dict, published.append)
    o(taken([0, 0, 0], [400, 1500, 70_000], [0], [2_000_000], ["timeout"]))
    v = published[-1]
    counts, total = observed.histogram(v, "rpc_tso")
    assert counts[0] == 1 and counts[2] == 1 and counts[pd.E05.index(0.128)] == 1 and sum(counts) == 3
    assert total == 0.0719
    assert observed.histogram(v, "cmd_tso") == observed.histogram(v, "cmd_wait")
    assert observed.histogram(v, "cmd_tso_async_wait") == ([3] + [0] * 13, 0.0)
    assert sum(observed.histogram(v, "rpc_tso_failed")[0]) == 1
    batch, size = observed.histogram(v, "batch")
    assert batch[pd.CLIENT_BATCH.index(4)] == 3 and size == 9.0  # count 3 is in le=4
    assert observed.scalar(v, "requests") == 3 and observed.scalar(v, "timestamps") == 9
    assert observed.scalar(v, "error_timeout") == 1 and observed.scalar(v, "in_flight") == 1
    assert sum(observed.histogram(v, "send_latency")[0]) == 0  # nobody times a batch's collection


def test_a_batching_design_reports_its_own_rpcs_and_the_baseline_none():
    counters = {"rpcs": 2, "rpc_us_sum": 3000, "batched_requests": 40, "rpc_seconds_le_2": 2, "rpc_batch_le_5": 2}
    published = []
    o = observed.Observer(1, [], lambda: counters, published.append)
    o(taken([0] * 40, [1000] * 40))
    v = published[-1]
    assert observed.histogram(v, "rpc_tso")[0][2] == 2 and observed.histogram(v, "rpc_tso")[1] == 0.003
    assert observed.histogram(v, "batch")[0][5] == 2 and observed.scalar(v, "estimate_us") == 1500
    baseline = observed.Observer(1, [], dict, published.append, rpcs=False)
    baseline(taken([0], [10]))
    assert sum(observed.histogram(published[-1], "rpc_tso")[0]) == 0
