"""The PD service over real gRPC (127.0.0.1, ephemeral ports), server in this process."""

from __future__ import annotations

import itertools
import queue
import random
import threading
import time

import grpc
import pytest

from tsobench.protos import pdpb_pb2
from tsobench.server import DEFAULT_CLUSTER_ID, LOGICAL_BITS, MAX_LOGICAL, ServerConfig, compose
from tsobench.server.oracle import GUARD_MS
from tsobench.server.service import LEADER_NAME

TIMEOUT_S = 10


def request(count: int, cluster_id: int = DEFAULT_CLUSTER_ID) -> pdpb_pb2.TsoRequest:
    return pdpb_pb2.TsoRequest(header=pdpb_pb2.RequestHeader(cluster_id=cluster_id), count=count)


def tso(stub, counts, cluster_id: int = DEFAULT_CLUSTER_ID) -> list[pdpb_pb2.TsoResponse]:
    """One stream, all requests sent up front (pipelined)."""
    return list(stub.Tso(iter([request(c, cluster_id) for c in counts]), timeout=TIMEOUT_S))


def last_of(response: pdpb_pb2.TsoResponse) -> int:
    return compose(response.timestamp.physical, response.timestamp.logical)


def first_of(response: pdpb_pb2.TsoResponse) -> int:
    return last_of(response) - response.count + 1


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Stream:
    """A Tso stream driven one request at a time (the next request is sent after the reply)."""

    def __init__(self, stub) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._replies = stub.Tso(iter(self._requests.get, None), timeout=TIMEOUT_S * 3)

    def ask(self, count: int, cluster_id: int = DEFAULT_CLUSTER_ID) -> pdpb_pb2.TsoResponse:
        self._requests.put(request(count, cluster_id))
        return next(self._replies)

    def close(self) -> None:
        self._requests.put(None)
        assert list(self._replies) == []


def expect_error(stub, counts, cluster_id: int = DEFAULT_CLUSTER_ID) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        tso(stub, counts, cluster_id)
    return info.value


# --- timestamps ---------------------------------------------------------------------------------


def test_reply_carries_the_largest_timestamp_and_echoes_count(pd_stub):
    replies = tso(pd_stub, [1, 5, 10, 1, 1000])
    assert [r.count for r in replies] == [1, 5, 10, 1, 1000]
    for r in replies:
        assert r.header.cluster_id == DEFAULT_CLUSTER_ID
        assert not r.header.HasField("error")
        assert r.timestamp.suffix_bits == 0
        assert r.count <= r.timestamp.logical < MAX_LOGICAL  # first logical = logical - count + 1 >= 1
    for prev, cur in itertools.pairwise(replies):
        assert first_of(cur) > last_of(prev)
        if cur.timestamp.physical == prev.timestamp.physical:  # same ms: batches are back to back
            assert cur.timestamp.logical - cur.count == prev.timestamp.logical


def test_first_request_on_a_fresh_server_starts_at_logical_one(pd_stub):
    (reply,) = tso(pd_stub, [3])
    assert (reply.count, reply.timestamp.logical) == (3, 3)  # the batch is logical 1..3: 0 is never handed out


def test_replies_on_a_stream_are_in_request_order(pd_stub):
    counts = [(i * 7919) % 50 + 1 for i in range(300)]
    replies = tso(pd_stub, counts)
    assert [r.count for r in replies] == counts
    assert all(first_of(b) > last_of(a) for a, b in itertools.pairwise(replies))


def test_physical_follows_the_wall_clock(pd_stub):
    before = wall_ms()
    (first,) = tso(pd_stub, [1])
    # A fresh data dir: physical is the wall clock, refreshed every 50 ms.
    assert before - 1000 <= first.timestamp.physical <= wall_ms() + 5
    time.sleep(0.4)
    (second,) = tso(pd_stub, [1])
    assert second.timestamp.physical - first.timestamp.physical >= 250
    assert second.timestamp.physical <= wall_ms() + 5


def test_logical_overflow_waits_for_the_next_millisecond(pd_stub):
    replies = tso(pd_stub, [MAX_LOGICAL - 1] * 50)
    after = wall_ms()
    assert len(replies) == 50
    physicals = [r.timestamp.physical for r in replies]
    assert physicals == sorted(set(physicals)), "each full batch needs a new physical ms"
    assert all(r.timestamp.logical == MAX_LOGICAL - 1 for r in replies)
    assert all(first_of(b) > last_of(a) for a, b in itertools.pairwise(replies))
    assert physicals[-1] <= after + GUARD_MS, "physical ran ahead of the wall clock"


def test_monotonic_and_unique_across_concurrent_streams(inprocess_server, open_stub):
    threads_n, requests_n = 16, 200
    counts = [1, 1, 1, 2, 3, 10, 64, 1000, MAX_LOGICAL // 4]
    results: dict[int, list[tuple[int, int, int]]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def worker(index: int) -> None:
        try:
            rng = random.Random(index)
            stream = Stream(open_stub(inprocess_server.address))
            barrier.wait(TIMEOUT_S)
            got = []
            for _ in range(requests_n):
                count = rng.choice(counts)
                reply = stream.ask(count)
                assert reply.count == count
                assert 1 <= reply.timestamp.logical - count + 1 <= reply.timestamp.logical < MAX_LOGICAL
                got.append((first_of(reply), last_of(reply), count))
            stream.close()
            results[index] = got
        except BaseException as exc:
            errors.append(exc)

    before = inprocess_server.counters()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert len(results) == threads_n

    for got in results.values():  # per stream: strictly increasing
        assert all(b[0] > a[1] for a, b in itertools.pairwise(got))
    ranges = sorted(r for got in results.values() for r in got)
    for a, b in itertools.pairwise(ranges):  # globally: disjoint
        assert b[0] > a[1], f"ranges overlap: {a} and {b}"
    delta = inprocess_server.counters() - before
    assert delta.rpcs == threads_n * requests_n
    assert delta.timestamps == sum(r[2] for r in ranges)
    assert delta.streams_opened == threads_n


# --- errors -------------------------------------------------------------------------------------


def test_wrong_cluster_id_fails_precondition(pd_stub):
    err = expect_error(pd_stub, [1], cluster_id=42)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == f"mismatch cluster id, need {DEFAULT_CLUSTER_ID} but got 42"


def test_missing_header_is_a_cluster_id_mismatch(pd_stub):
    with pytest.raises(grpc.RpcError) as info:
        list(pd_stub.Tso(iter([pdpb_pb2.TsoRequest(count=1)]), timeout=TIMEOUT_S))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == f"mismatch cluster id, need {DEFAULT_CLUSTER_ID} but got 0"


@pytest.mark.parametrize("count", [0, MAX_LOGICAL, MAX_LOGICAL + 1, (1 << 32) - 1])
def test_invalid_count_is_invalid_argument(pd_stub, count):
    err = expect_error(pd_stub, [count])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"invalid count {count}" in err.details()
    assert str(MAX_LOGICAL - 1) in err.details()


def test_largest_valid_count_is_accepted(pd_stub):
    (reply,) = tso(pd_stub, [MAX_LOGICAL - 1])
    assert reply.count == MAX_LOGICAL - 1
    assert reply.timestamp.logical == MAX_LOGICAL - 1


def test_error_ends_the_stream_after_earlier_replies(pd_stub):
    replies = pd_stub.Tso(iter([request(1), request(2), request(0), request(3)]), timeout=TIMEOUT_S)
    assert next(replies).count == 1
    assert next(replies).count == 2
    with pytest.raises(grpc.RpcError) as info:
        next(replies)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_streams_do_not_affect_other_streams(inprocess_server, pd_stub, open_stub):
    good = Stream(pd_stub)
    before = good.ask(5)
    other = open_stub(inprocess_server.address)
    for _ in range(5):
        assert expect_error(other, [1, 0]).code() == grpc.StatusCode.INVALID_ARGUMENT
        assert expect_error(other, [1], cluster_id=7).code() == grpc.StatusCode.FAILED_PRECONDITION
    garbage = grpc.insecure_channel(inprocess_server.address)
    try:
        with pytest.raises(grpc.RpcError) as info:
            list(garbage.stream_stream("/pdpb.PD/Tso")(iter([b"\xff\xff\xff\xff"]), timeout=TIMEOUT_S))
        assert info.value.code() != grpc.StatusCode.OK
        with pytest.raises(grpc.RpcError) as info:
            garbage.unary_unary("/pdpb.PD/NoSuchMethod")(b"", timeout=TIMEOUT_S)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        garbage.close()
    after = good.ask(7)
    assert after.count == 7
    assert first_of(after) > last_of(before)
    good.close()
    assert tso(other, [1])[0].count == 1  # and new streams still work
    assert inprocess_server.counters().errors == 10


# --- GetMembers, health, reflection ---------------------------------------------------------------


def test_get_members_names_this_server_as_leader(inprocess_server, pd_stub):
    for cluster_id in (0, DEFAULT_CLUSTER_ID):  # 0: PD clients call it before they know the id
        reply = pd_stub.GetMembers(
            pdpb_pb2.GetMembersRequest(header=pdpb_pb2.RequestHeader(cluster_id=cluster_id)), timeout=TIMEOUT_S
        )
        assert reply.header.cluster_id == DEFAULT_CLUSTER_ID
        assert reply.leader.name == LEADER_NAME
        assert f"http://{inprocess_server.address}" in reply.leader.client_urls
        assert list(reply.members) == [reply.leader]
    with pytest.raises(grpc.RpcError) as info:  # a client of another cluster is told, as PD tells it
        pd_stub.GetMembers(
            pdpb_pb2.GetMembersRequest(header=pdpb_pb2.RequestHeader(cluster_id=12345)), timeout=TIMEOUT_S
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_get_members_reports_a_configured_cluster_id(start_inprocess_server, open_stub):
    server = start_inprocess_server(cluster_id=777)
    stub = open_stub(server.address)
    assert stub.GetMembers(pdpb_pb2.GetMembersRequest(), timeout=TIMEOUT_S).header.cluster_id == 777
    (reply,) = tso(stub, [1], cluster_id=777)
    assert reply.header.cluster_id == 777
    assert expect_error(stub, [1]).details() == f"mismatch cluster id, need 777 but got {DEFAULT_CLUSTER_ID}"


# --- knobs and startup --------------------------------------------------------------------------


@pytest.mark.serial  # timing: runs alone, after the parallel phase
def test_delay_ms_adds_latency_to_every_reply(start_inprocess_server, open_stub):
    delay_s = 0.15
    server = start_inprocess_server(delay_ms=delay_s * 1000)
    stub = open_stub(server.address)
    stub.GetMembers(pdpb_pb2.GetMembersRequest(), timeout=TIMEOUT_S)  # connect first
    started = time.monotonic()
    (reply,) = tso(stub, [1])
    elapsed = time.monotonic() - started
    assert reply.count == 1
    assert delay_s <= elapsed < delay_s + 2.0
    stream = Stream(stub)
    started = time.monotonic()
    stream.ask(1)
    stream.ask(1)
    assert 2 * delay_s <= time.monotonic() - started < 2 * delay_s + 2.0
    stream.close()


@pytest.mark.serial  # timing: runs alone, after the parallel phase
def test_no_delay_by_default_is_fast(pd_stub):
    tso(pd_stub, [1])
    started = time.monotonic()
    tso(pd_stub, [1] * 20)
    assert time.monotonic() - started < 1.0


@pytest.mark.serial  # timing: runs alone, after the parallel phase
def test_rtt_delays_every_reply_without_holding_up_the_ones_behind(start_inprocess_server, open_stub):
    """Ten pipelined requests: each reply leaves a round trip after its request, not after the reply before."""
    rtt_s = 0.3
    stub = open_stub(start_inprocess_server(rtt_ms=rtt_s * 1000).address)
    started = time.monotonic()
    stub.GetMembers(pdpb_pb2.GetMembersRequest(), timeout=TIMEOUT_S)
    assert time.monotonic() - started >= rtt_s  # GetMembers travels the same distance
    started = time.monotonic()
    replies = tso(stub, [1] * 10)
    elapsed = time.monotonic() - started
    assert [r.count for r in replies] == [1] * 10
    assert rtt_s <= elapsed < 5 * rtt_s  # a serial delay would take 10 round trips
    stream = Stream(stub)
    started = time.monotonic()
    stream.ask(1)
    stream.ask(1)
    assert time.monotonic() - started >= 2 * rtt_s  # one at a time: a round trip each
    stream.close()


def test_rtt_jitter_never_reorders_a_stream(start_inprocess_server, open_stub):
    stub = open_stub(start_inprocess_server(rtt_ms=1, rtt_jitter_ms=20, seed=5).address)
    counts = [(i * 7919) % 50 + 1 for i in range(300)]
    replies = tso(stub, counts)
    assert [r.count for r in replies] == counts
    assert all(first_of(b) > last_of(a) for a, b in itertools.pairwise(replies))


def test_rtt_ends_a_stream_with_its_error_after_the_replies_before_it(start_inprocess_server, open_stub):
    server = start_inprocess_server(rtt_ms=50)
    stub = open_stub(server.address)
    replies = stub.Tso(iter([request(1), request(2), request(0), request(3)]), timeout=TIMEOUT_S)
    assert next(replies).count == 1
    assert next(replies).count == 2
    with pytest.raises(grpc.RpcError) as info:
        next(replies)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expect_error(stub, [1], cluster_id=7).code() == grpc.StatusCode.FAILED_PRECONDITION
    assert [r.count for r in tso(stub, [4, 5])] == [4, 5]  # and new streams still work
    counters = server.counters()
    assert (counters.rpcs, counters.errors) == (4, 2)


def test_fail_rate_one_aborts_every_stream_with_unavailable(start_inprocess_server, open_stub):
    server = start_inprocess_server(fail_rate=1.0, seed=1)
    stub = open_stub(server.address)
    for _ in range(3):
        err = expect_error(stub, [1])
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert "injected failure" in err.details()
    assert stub.GetMembers(pdpb_pb2.GetMembersRequest(), timeout=TIMEOUT_S).leader.name == LEADER_NAME
    counters = server.counters()
    assert (counters.rpcs, counters.errors, counters.streams_opened) == (0, 3, 3)


def test_fail_rate_is_drawn_per_reply(start_inprocess_server, open_stub):
    """Long-lived streams fail too: each request is aborted with probability --fail-rate."""
    server = start_inprocess_server(fail_rate=0.2, seed=11)
    stub = open_stub(server.address)
    replies = aborted = 0
    while replies + aborted < 400:
        stream = Stream(stub)
        try:
            while replies + aborted < 400:
                stream.ask(1)
                replies += 1
            stream.close()
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE
            assert "injected failure" in err.details()
            aborted += 1
    assert 0.10 <= aborted / (aborted + replies) <= 0.30, (aborted, replies)
    assert server.counters().rpcs == replies


def test_fail_rate_zero_never_fails(start_inprocess_server, open_stub):
    stub = open_stub(start_inprocess_server(fail_rate=0.0, seed=1).address)
    for _ in range(20):
        assert tso(stub, [1])[0].count == 1


def test_an_empty_host_is_refused():
    with pytest.raises(ValueError, match="host must not be empty"):
        ServerConfig(host="")


def test_timestamps_fit_the_pd_layout(pd_stub):
    (reply,) = tso(pd_stub, [9])
    composed = last_of(reply)
    assert composed >> LOGICAL_BITS == reply.timestamp.physical
    assert composed & (MAX_LOGICAL - 1) == reply.timestamp.logical
