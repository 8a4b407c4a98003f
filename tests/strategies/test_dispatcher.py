"""The dispatcher: batches split back to their callers, max_batch, closing, parallel RPCs, counters."""

import asyncio
import math
import threading
import time

import pytest

from tsobench import strategies
from tsobench.protos import pdpb_pb2
from tsobench.strategies.dispatcher import Batch, RpcTimeEstimate, _Lane, split


def test_dispatcher_split_hands_out_consecutive_slices_in_order():
    batch = Batch()
    for count in (1, 3, 2):
        batch.add(count, None)
    reply = pdpb_pb2.TsoResponse(count=6, timestamp=pdpb_pb2.Timestamp(physical=7, logical=10))
    out = split(batch, reply)
    assert [(t.first & 0x3FFFF, t.last & 0x3FFFF) for t in out] == [(5, 5), (6, 8), (9, 10)]


def test_dispatcher_split_refuses_a_reply_of_the_wrong_size():
    batch = Batch()
    batch.add(2, None)
    with pytest.raises(strategies.ReplyMismatch):
        split(batch, pdpb_pb2.TsoResponse(count=1, timestamp=pdpb_pb2.Timestamp(physical=1, logical=1)))


def test_dispatcher_respects_max_batch(child_server, thread_load):
    options = strategies.ClientOptions(child_server.address, max_batch=4, batch_wait_us=2000)
    _, done = thread_load(child_server, strategies.get("dispatcher").thread(options), threads=16, each=20)
    assert done.timestamps == 320
    assert done.rpcs >= 320 / 4


def test_closing_a_thread_dispatcher_fails_its_waiting_callers_cleanly(stopped_server):
    """Callers waiting on a stalled stream get an error when the client closes; no background thread dies."""
    crashes = []
    previous, threading.excepthook = threading.excepthook, crashes.append
    try:
        options = strategies.ClientOptions(stopped_server.address, cluster_id=1, timeout_s=30)
        client = strategies.get("dispatcher").thread(options)
        client.open()
        errors = []

        def call():
            try:
                client.get_ts()
            except Exception as exc:
                errors.append(exc)

        callers = [threading.Thread(target=call) for _ in range(4)]
        for t in callers:
            t.start()
        time.sleep(0.3)
        client.close()
        for t in callers:
            t.join(5)
        time.sleep(0.2)
    finally:
        threading.excepthook = previous
    assert len(errors) == 4
    assert all(not t.is_alive() for t in callers)
    assert crashes == []


@pytest.mark.parametrize("api", strategies.APIS)
@pytest.mark.parametrize("rpc_concurrency", [1, 3])
def test_the_counters_count_every_answered_batch_and_its_callers(child_server, api, rpc_concurrency):
    options = strategies.ClientOptions(child_server.address, rpc_concurrency=rpc_concurrency)
    callers, each = 8, 25
    before = child_server.counters()
    if api == "thread":
        client = strategies.get("dispatcher").thread(options)
        client.open()
        try:
            threads = [threading.Thread(target=lambda: [client.get_ts() for _ in range(each)]) for _ in range(callers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            counters = client.counters()
        finally:
            client.close()
    else:

        async def load() -> dict[str, int]:
            aclient = strategies.get("dispatcher").asyncio(options)
            await aclient.open()
            try:

                async def caller() -> None:
                    for _ in range(each):
                        await aclient.get_ts()

                await asyncio.gather(*(caller() for _ in range(callers)))
                return aclient.counters()
            finally:
                await aclient.close()

        counters = asyncio.run(load())
    done = child_server.counters() - before
    assert counters["batched_requests"] == callers * each
    assert counters["rpcs"] == done.rpcs
    assert counters["rpc_us_total"] > 0
    assert counters["reconnects"] == 0
    # The turn-around, per batch: every answered batch's wake-up, every send but the stream's first
    # (a new stream's wait is the connection's).
    assert counters["wakes_timed"] == counters["rpcs"]
    assert counters["wake_us_total"] > 0
    assert counters["sends_timed"] == counters["rpcs"] - 1


def _stalled_lane(stopped_server, rpc_concurrency: int, max_inflight: int, callers: int) -> int:
    """Batches in flight on a server that answers nothing, callers arriving one by one."""
    options = strategies.ClientOptions(
        stopped_server.address,
        cluster_id=1,
        timeout_s=30,
        rpc_concurrency=rpc_concurrency,
        max_inflight=max_inflight,
    )
    client = strategies.get("dispatcher").thread(options)
    client.open()

    def call() -> None:
        with pytest.raises(strategies.ClientClosed):
            client.get_ts()

    threads = []
    try:
        for _ in range(callers):
            threads.append(threading.Thread(target=call))
            threads[-1].start()
            time.sleep(0.05)  # longer than a batch's wait: each caller leaves in a batch of its own while slots last
        return len(client._lanes[0].inflight)
    finally:
        client.close()
        for t in threads:
            t.join(5)


@pytest.mark.parametrize(("rpc_concurrency", "max_inflight"), [(1, 1), (3, 1), (2, 2)])
def test_a_lane_has_max_inflight_times_rpc_concurrency_batches_in_flight(stopped_server, rpc_concurrency, max_inflight):
    assert _stalled_lane(stopped_server, rpc_concurrency, max_inflight, callers=6) == rpc_concurrency * max_inflight


def test_parallel_rpcs_collect_a_batch_for_the_estimated_rpc_time_over_n(monkeypatch):
    now = 100.0
    monkeypatch.setattr(time, "monotonic", lambda: now)  # a preempted test must not read as a shorter wait
    lane = _Lane(strategies.ClientOptions("h:1", rpc_concurrency=4))
    assert lane.collect_wait_s(now) == pytest.approx(RpcTimeEstimate.FLOOR_S / 4)
    lane.estimate.add(0.0, 0.008)
    assert lane.collect_wait_s(now) == pytest.approx(0.002)  # 8 ms / 4
    assert lane.collect_wait_s(now - 0.0005) == pytest.approx(0.0015)  # less the time since collecting began
    assert lane.collect_wait_s(now - 0.01) < 0  # already collected longer: send at once
    plain = _Lane(strategies.ClientOptions("h:1", batch_wait_us=300))
    assert plain.collect_wait_s(0.0) == 0.0003  # N = 1: --batch-wait-us as before, no estimate


def test_the_estimate_smooths_the_log_of_rpc_times_as_pd_does():
    estimate = RpcTimeEstimate()
    assert estimate.seconds == RpcTimeEstimate.FLOOR_S  # nothing measured yet
    estimate.add(0.0, 0.001)
    assert estimate.seconds == pytest.approx(0.001)
    estimate.add(10.0, 0.1)  # long after: the new sample weighs at most 0.2
    assert estimate.seconds == pytest.approx(math.exp(0.8 * math.log(0.001) + 0.2 * math.log(0.1)))
    estimate.add(10.0, 0.5)  # at the same instant: weight 0
    assert estimate.seconds == pytest.approx(math.exp(0.8 * math.log(0.001) + 0.2 * math.log(0.1)))
    tiny = RpcTimeEstimate()
    tiny.add(0.0, 0.00001)
    assert tiny.seconds == RpcTimeEstimate.FLOOR_S  # 100 µs at least
