"""Wire plumbing shared by all strategies: channels, requests, one stream."""

from __future__ import annotations

import itertools
import queue
import threading
from typing import Any

import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc

from .base import ClientOptions, ReplyMismatch, Timestamp

_CLOSE = object()
_opened_lock = threading.Lock()
_opened = 0


def streams_opened() -> int:
    """Tso streams this process has opened so far (all strategies)."""
    return _opened


def open_tso(stub: pdpb_pb2_grpc.PDStub, *args: object, **kwargs: object) -> Any:
    """Open a Tso stream (sync or aio, whichever ``stub`` is) and count it."""
    global _opened
    with _opened_lock:
        _opened += 1
    return stub.Tso(*args, **kwargs)


def channel_options(index: int) -> list[tuple[str, int]]:
    # Channels with identical options share one subchannel (one TCP connection);
    # a distinct dummy option gives each of ``connections`` its own.
    return [("tsobench.channel", index), ("grpc.max_receive_message_length", 4 << 20)]


def tso_request(cluster_id: int, count: int) -> pdpb_pb2.TsoRequest:
    return pdpb_pb2.TsoRequest(header=pdpb_pb2.RequestHeader(cluster_id=cluster_id), count=count)


def to_timestamp(response: pdpb_pb2.TsoResponse, count: int) -> Timestamp:
    if response.count != count:
        raise ReplyMismatch(f"asked for {count} timestamps, reply carries {response.count}")
    ts = response.timestamp
    return Timestamp(ts.physical, ts.logical, count)


def _members_request() -> pdpb_pb2.GetMembersRequest:
    return pdpb_pb2.GetMembersRequest(header=pdpb_pb2.RequestHeader())


class _Channels:
    """``connections`` channels to one target; ``stub()`` hands them out round-robin."""

    def __init__(self, options: ClientOptions, make_channel: Any) -> None:
        self.options = options
        self._channels = [make_channel(options.target, channel_options(i)) for i in range(options.connections)]
        self._stubs = [pdpb_pb2_grpc.PDStub(c) for c in self._channels]
        self._next = itertools.cycle(self._stubs)
        self.cluster_id = options.cluster_id or 0

    def stub(self) -> pdpb_pb2_grpc.PDStub:
        return next(self._next)

    def request(self, count: int) -> pdpb_pb2.TsoRequest:
        return tso_request(self.cluster_id, count)


class SyncChannels(_Channels):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options, grpc.insecure_channel)
        if not self.cluster_id:  # learn it as PD clients do
            reply = self._stubs[0].GetMembers(_members_request(), timeout=options.timeout_s)
            self.cluster_id = reply.header.cluster_id

    def close(self) -> None:
        for c in self._channels:
            c.close()


class AsyncChannels(_Channels):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options, grpc.aio.insecure_channel)

    async def discover(self) -> None:
        if not self.cluster_id:
            reply = await self._stubs[0].GetMembers(_members_request(), timeout=self.options.timeout_s)
            self.cluster_id = reply.header.cluster_id

    async def close(self) -> None:
        for c in self._channels:
            await c.close()


class ThreadClientBase:
    """Opens and closes the channels; a strategy adds how callers share streams."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options

    def open(self) -> None:
        self.channels = SyncChannels(self.options)

    def close(self) -> None:
        self.channels.close()


class AsyncClientBase:
    def __init__(self, options: ClientOptions) -> None:
        self.options = options

    async def open(self) -> None:
        self.channels = AsyncChannels(self.options)
        await self.channels.discover()

    async def close(self) -> None:
        await self.channels.close()


class SyncStream:
    """One Tso stream with the sync API: writes go through a queue the gRPC
    request-consumer thread drains; reads pull the response iterator."""

    def __init__(self, stub: pdpb_pb2_grpc.PDStub) -> None:
        self._requests: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._call = open_tso(stub, iter(self._requests.get, _CLOSE))

    def send(self, request: pdpb_pb2.TsoRequest) -> None:
        self._requests.put(request)

    def recv(self) -> pdpb_pb2.TsoResponse:
        try:
            return next(self._call)
        except StopIteration:
            raise ConnectionError("Tso stream ended by the server") from None

    def close(self) -> None:
        self._requests.put(_CLOSE)
        self._call.cancel()


class AsyncStream:
    def __init__(self, stub: pdpb_pb2_grpc.PDStub, timeout_s: float | None = None) -> None:
        self._call = open_tso(stub, timeout=timeout_s)

    async def send(self, request: pdpb_pb2.TsoRequest) -> None:
        await self._call.write(request)

    async def done_writing(self) -> None:
        await self._call.done_writing()

    async def recv(self) -> pdpb_pb2.TsoResponse:
        response = await self._call.read()
        if response is grpc.aio.EOF:
            raise ConnectionError("Tso stream ended by the server")
        return response

    def close(self) -> None:
        self._call.cancel()
