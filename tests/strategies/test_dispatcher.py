"""The dispatcher: batches split back to their callers, max_batch, closing."""

import threading
import time

import pytest

from tsobench import strategies
from tsobench.protos import pdpb_pb2
from tsobench.strategies.dispatcher import Batch, split


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


def test_dispatcher_respects_max_batch(child_server):
    options = strategies.ClientOptions(child_server.address, max_batch=4, batch_wait_us=2000)
    client = strategies.get("dispatcher").thread(options)
    client.open()
    before = child_server.counters()
    try:
        threads = [threading.Thread(target=lambda: [client.get_ts() for _ in range(20)]) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        client.close()
    after = child_server.counters()
    done = after - before
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
