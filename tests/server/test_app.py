"""The server process's gRPC side: it binds (or says why not), serves PD, health and reflection, and
admin only when asked."""

from __future__ import annotations

import asyncio
import errno
import selectors

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tsobench.protos import pdpb_pb2
from tsobench.server import DEFAULT_CLUSTER_ID, ServerConfig
from tsobench.server.app import ServerError, TsoServer, describe_bind_error, new_event_loop

TIMEOUT_S = 10


def tso(stub, counts) -> list[pdpb_pb2.TsoResponse]:
    requests = [
        pdpb_pb2.TsoRequest(header=pdpb_pb2.RequestHeader(cluster_id=DEFAULT_CLUSTER_ID), count=c) for c in counts
    ]
    return list(stub.Tso(iter(requests), timeout=TIMEOUT_S))


def test_health_check(inprocess_server):
    with grpc.insecure_channel(inprocess_server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "pdpb.PD"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as info:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=TIMEOUT_S)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_pd(inprocess_server):
    with grpc.insecure_channel(inprocess_server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="pdpb.PD"),
        ]
        listed, described = list(stub.ServerReflectionInfo(iter(requests), timeout=TIMEOUT_S))
    names = {s.name for s in listed.list_services_response.service}
    assert {"pdpb.PD", "grpc.health.v1.Health"} <= names
    from google.protobuf import descriptor_pb2

    files = [
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in described.file_descriptor_response.file_descriptor_proto
    ]
    pdpb = next(f for f in files if f.package == "pdpb")
    (service,) = pdpb.service
    assert service.name == "PD"
    assert {m.name for m in service.method} == {"Tso", "GetMembers"}


def test_port_in_use_raises_server_error(inprocess_server, tmp_path):
    port = inprocess_server.server.port
    config = ServerConfig(port=port, data_dir=str(tmp_path / "second"), metrics_port=None)

    async def start_second() -> None:
        second = TsoServer(config)
        try:
            await second.start()
        finally:
            await second.stop(0)

    with pytest.raises(ServerError, match=f"cannot listen on 127.0.0.1:{port}: address in use"):
        asyncio.run(start_second())


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "permission denied"),
        (errno.EADDRINUSE, "address in use"),
        (errno.EADDRNOTAVAIL, "address not available"),
        (errno.ENOMEM, "Cannot allocate memory"),
        (None, "unknown cause"),
    ],
)
def test_bind_errors_name_their_cause(code, words):
    assert words in describe_bind_error(code)


def test_first_server_still_serves_after_a_failed_second_bind(inprocess_server, pd_stub, tmp_path):
    test_port_in_use_raises_server_error(inprocess_server, tmp_path)
    (reply,) = tso(pd_stub, [2])
    assert reply.count == 2


def test_an_emulated_round_trip_gets_the_microsecond_loop():
    plain = new_event_loop(ServerConfig(data_dir="unused"))
    far = new_event_loop(ServerConfig(data_dir="unused", rtt_ms=1))
    try:
        assert isinstance(far, asyncio.SelectorEventLoop)
        assert isinstance(far._selector, selectors.SelectSelector)  # timers to the microsecond (tsobench.loops)
        assert not isinstance(getattr(plain, "_selector", None), selectors.SelectSelector)
    finally:
        plain.close()
        far.close()


def test_the_server_reports_its_address_and_client_urls(tmp_path):
    async def main() -> tuple[str, list[str]]:
        server = TsoServer(ServerConfig(data_dir=str(tmp_path), metrics_port=None))
        await server.start()
        try:
            return server.address, server.client_urls
        finally:
            await server.stop(0)

    address, urls = asyncio.run(main())
    assert address.startswith("127.0.0.1:") and not address.endswith(":0")
    assert urls == [f"http://{address}"]
