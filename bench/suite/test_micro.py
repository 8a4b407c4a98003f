"""Micro-benchmarks of the hot paths: one get_ts on a warm stream per strategy and API, the
dispatcher's batch split, and what the harness folds callers' records with (histogram, checks).

Calibrated so that two runs of an unchanged tree agree on ``min`` within 10 %, for these reasons:
- every round is pedantic (fixed rounds after a warm-up: two runs do the same work) with the garbage
  collector off while it is timed, so a collection owed to earlier work lands in no round;
- a get_ts waits on the server, and on the wall clock a busy neighbour stretches that wait (the
  fastest of 5,000 came out 10-18 % slower between two runs of an unchanged tree, 43 % at the smoke
  scale): it is timed on the client process's CPU clock (``time.process_time``: every client thread,
  gRPC's included, but not the wait), thousands of rounds, client and server each on a CPU of its
  own (``pinned_server``);
- a hot path computes alone in this thread: timed on the thread's CPU clock, which a neighbour
  cannot stretch (on the wall clock, the fastest of 30 folds differed by 70 % between two runs),
  in rounds of milliseconds, each started alike (``time_hot_path``), on the same kind of memory
  (``steady_memory``).
Every benchmark carries the params ``strategy`` and ``concurrency`` (``harness`` for the
harness's own code), so ``--benchmark-group-by=param:strategy`` works on the whole suite.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pytest

from tsobench import strategies
from tsobench.bench.measure.clock import FOREVER_US, Clock
from tsobench.bench.measure.fold import Fold, Record
from tsobench.bench.model.config import RunConfig, ShardConfig
from tsobench.bench.suite.conftest import benchmarked, scale
from tsobench.protos import pdpb_pb2
from tsobench.server import ChildServer
from tsobench.strategies.dispatcher import Batch, split

SCALE = scale()
T = TypeVar("T")
REPLIES = 100_000  # what callers appended, folded at once: about a second of a fast run
CALLERS = 64  # the replies come from this many callers, interleaved as they complete
# A split takes ~15 µs, a CPU clock read ~1 µs: a round of 200 splits takes milliseconds, long
# enough that a moment of luck (a boosted clock) speeds up a part of it only.
SPLITS = 200

# a marker's settings replace, not add to, another's
ON_PROCESS_CPU = pytest.mark.benchmark(disable_gc=True, timer=time.process_time)  # the client's CPU per call
ON_CPU = pytest.mark.benchmark(disable_gc=True, timer=time.thread_time)


# ---------------------------------------------------------------- one get_ts per strategy and API


@pytest.fixture
def get_ts(pinned_server: ChildServer, strategy: str, api: str) -> Iterator[Callable[[], strategies.Timestamp]]:
    """One call on an open client. asyncio: one ``run_until_complete`` per call, a few µs (1-2 %)
    more than a task awaiting in a running loop pays; measured, it makes rounds no less steady."""
    options = strategies.ClientOptions(pinned_server.address)
    if api == "thread":
        client = strategies.get(strategy).thread(options)
        client.open()
        try:
            yield client.get_ts
        finally:
            client.close()
        return
    with asyncio.Runner() as runner:  # closes the loop as asyncio.run does, cancelling what is left
        aclient = strategies.get(strategy).asyncio(options)
        loop = runner.get_loop()
        loop.run_until_complete(aclient.open())
        try:
            yield lambda: loop.run_until_complete(aclient.get_ts())
        finally:
            loop.run_until_complete(aclient.close())


@ON_PROCESS_CPU
@pytest.mark.parametrize("concurrency", [1])
@pytest.mark.parametrize(("strategy", "api"), benchmarked(SCALE))
def test_get_ts(benchmark, get_ts: Callable[[], strategies.Timestamp], api: str, concurrency: int) -> None:
    """One caller, so the params say concurrency 1; the warm-up opens the stream before timing. The
    figure is the client's CPU per call (what a change to a strategy's code costs), not the round trip."""
    benchmark.group = f"micro: get_ts ({api})"
    ts = benchmark.pedantic(get_ts, rounds=SCALE.get_ts_rounds, warmup_rounds=SCALE.get_ts_warmup)
    assert ts.logical > 0


# ---------------------------------------------------------------- the harness's and the dispatcher's hot paths


@dataclass(frozen=True)
class Replies:
    """What one fold takes from the callers' records: their replies concatenated caller by caller
    (``spans``: each caller's [start, end)), each caller's in the order it got them."""

    lasts: np.ndarray
    sent: np.ndarray
    done: np.ndarray
    spans: tuple[tuple[int, int], ...]


def recorded_replies() -> Replies:
    """REPLIES one-timestamp replies of CALLERS callers, round robin, as a clean closed-loop run
    appends them: latencies 200-2,000 µs, timestamps increasing in completion order. Seeded: every
    run folds the same data."""
    rng = np.random.default_rng(0)
    done = np.cumsum(rng.integers(5, 15, REPLIES))
    sent = done - rng.integers(200, 2_000, REPLIES)
    lasts = 1_700_000_000_000 << 18 | np.arange(1, REPLIES + 1)
    by_caller = np.argsort(np.arange(REPLIES) % CALLERS, kind="stable")
    ends = np.cumsum(np.bincount(np.arange(REPLIES) % CALLERS)).tolist()
    spans = tuple(zip([0, *ends[:-1]], ends, strict=True))
    return Replies(lasts[by_caller], sent[by_caller], done[by_caller], spans)


def filled_fold() -> Fold:
    """A shard's fold with REPLIES replies appended to its CALLERS callers' records, as a clean
    closed-loop run leaves them between two folds."""
    replies = recorded_replies()
    run = RunConfig(strategy="null", concurrency=CALLERS, duration_s=3600.0, warmup_s=0.0)
    records = [Record(open_loop=False) for _ in range(CALLERS)]
    for r, (lo, hi) in zip(records, replies.spans, strict=True):
        for array, values in ((r.lasts, replies.lasts), (r.sent, replies.sent), (r.done, replies.done)):
            array.frombytes(values[lo:hi].astype(np.int64).tobytes())
    return Fold(ShardConfig(run, 0, "", overrun_s=0.7), Clock(0, 0, FOREVER_US), records)


def fold_replies(fold: Fold) -> Fold:
    """What the fold thread does every 0.25 s (``bench/fold.py``): take, check, record, bucket."""
    fold.fold(now_us=1 << 40)
    return fold


def hot_path(strategy: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Timed on CPU, with the params every benchmark carries (a hot path does CALLERS callers' work)."""

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        return ON_CPU(pytest.mark.parametrize(("strategy", "concurrency"), [(strategy, CALLERS)])(test))

    return mark


def split_replies(batch: Batch, reply: pdpb_pb2.TsoResponse) -> list[strategies.Timestamp]:
    """What the dispatcher's reader does for SPLITS replies in a row: split each back into its batch."""
    for _ in range(SPLITS - 1):
        split(batch, reply)
    return split(batch, reply)


def time_hot_path(benchmark, timestamps: int, target: Callable[..., T], arguments: Callable[[], tuple]) -> T:
    """Rounds of one call each on fresh ``arguments()``, the call handling ``timestamps``; ``extra_info``
    gets the fastest round per timestamp, the figure to set beside one get_ts.

    Every round starts alike: the garbage of the rounds before collected (left to the collector, it
    piled up on the heap and moved where the next round's arrays landed, which changed a round's
    speed by 25 %), then one untimed call, so the caches and the allocator hold what the timed one
    uses.
    """
    benchmark.group = "micro: hot paths"

    def setup() -> tuple[tuple[object, ...], dict[str, object]]:
        gc.collect()
        target(*arguments())
        return arguments(), {}

    out = benchmark.pedantic(target, setup=setup, rounds=SCALE.hot_rounds)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["min_ns_per_timestamp"] = benchmark.stats.stats.min / timestamps * 1e9
    return out


@hot_path("dispatcher")
def test_dispatcher_split(benchmark, strategy: str, concurrency: int) -> None:
    """A reply split back into the batch of one request per waiting caller."""
    batch = Batch()
    for _ in range(concurrency):
        batch.add(1, None)  # the split never touches the futures
    reply = pdpb_pb2.TsoResponse(
        count=concurrency, timestamp=pdpb_pb2.Timestamp(physical=1_700_000_000_000, logical=500)
    )
    out = time_hot_path(benchmark, SPLITS * concurrency, split_replies, lambda: (batch, reply))
    assert [t.logical for t in out] == list(range(501 - concurrency, 501))


@hot_path("harness")
def test_fold(benchmark, strategy: str, concurrency: int) -> None:
    fold = time_hot_path(benchmark, REPLIES, fold_replies, lambda: (filled_fold(),))
    assert fold.ok == fold.checked == REPLIES and fold.out_of_order == fold.ranges.duplicates == 0
    assert fold.corrected.get_total_count() == REPLIES
