"""How a failed request's error is named in the results, from real gRPC errors and plain exceptions."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tsobench.bench.measure.errors import error_kind, one_line
from tsobench.protos import pdpb_pb2


def test_a_missed_grpc_deadline_is_a_timeout_like_the_watchdogs(start_inprocess_server, open_stub):
    slow = open_stub(start_inprocess_server(rtt_ms=2_000).address)
    with pytest.raises(grpc.RpcError) as late:
        slow.GetMembers(pdpb_pb2.GetMembersRequest(), timeout=0.05)
    assert error_kind(late.value) == "timeout" == error_kind(TimeoutError())
    assert one_line(late.value).startswith("timeout: ")


def test_another_status_is_its_name_and_one_line_has_its_details(unused_address, open_stub):
    with pytest.raises(grpc.RpcError) as refused:
        open_stub(unused_address).GetMembers(pdpb_pb2.GetMembersRequest(), timeout=5)
    assert error_kind(refused.value) == "UNAVAILABLE"
    line = one_line(refused.value)
    assert line.startswith("UNAVAILABLE: ") and "\n" not in line


def test_other_exceptions_are_their_type():
    assert error_kind(asyncio.InvalidStateError()) == "InvalidStateError"
    assert error_kind(ValueError("Internal gRPC call error 8")) == "ValueError"
    assert one_line(ValueError("bad")) == "ValueError: bad"
