"""A minimal tsobench strategy: one Tso stream per client, held across each
request's write and read (the ``locked`` design, without its FIFO hand-off,
leader discovery, TLS, deadlines or reconnects, to stay short).

A strategy is a ``Strategy`` with a client factory per API. Each factory gets the
run's ``ClientOptions`` and returns an object with ``open``, ``get_ts(count)`` and
``close``; many callers (threads, or tasks on one loop) call ``get_ts`` at once,
and each must get back a ``Timestamp`` carrying ``count`` timestamps.
"""

from __future__ import annotations

import asyncio
import queue
import threading

import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc
from tsobench.strategies import Bound, ClientOptions, Strategy, Timestamp


def _address(options: ClientOptions) -> str:
    """The first endpoint of --target (a cluster's leader is not looked for here)."""
    return options.target.split(",")[0].removeprefix("http://")


def _request(cluster_id: int, count: int) -> pdpb_pb2.TsoRequest:
    return pdpb_pb2.TsoRequest(header=pdpb_pb2.RequestHeader(cluster_id=cluster_id), count=count)


def _timestamp(reply: pdpb_pb2.TsoResponse) -> Timestamp:
    """PD's reply carries the largest timestamp of its count."""
    return Timestamp(reply.timestamp.physical, reply.timestamp.logical, reply.count)


class ThreadClient:
    """Thread API: ``get_ts`` is called from many threads at once."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options

    def open(self) -> None:
        self._channel = grpc.insecure_channel(_address(self.options))
        stub = pdpb_pb2_grpc.PDStub(self._channel)
        members = stub.GetMembers(pdpb_pb2.GetMembersRequest(), timeout=self.options.timeout_s)
        self._cluster_id = self.options.cluster_id or members.header.cluster_id
        self._requests: queue.SimpleQueue[pdpb_pb2.TsoRequest | None] = queue.SimpleQueue()
        self._replies = stub.Tso(iter(self._requests.get, None))
        self._lock = threading.Lock()

    def get_ts(self, count: int = 1) -> Timestamp:
        with self._lock:  # one request on the stream at a time: its reply is ours
            self._requests.put(_request(self._cluster_id, count))
            return _timestamp(next(self._replies))

    def close(self) -> None:
        self._requests.put(None)
        self._replies.cancel()
        self._channel.close()


class AsyncClient:
    """asyncio API: ``get_ts`` is awaited by many tasks at once on one loop."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options

    async def open(self) -> None:
        self._channel = grpc.aio.insecure_channel(_address(self.options))
        stub = pdpb_pb2_grpc.PDStub(self._channel)
        members = await stub.GetMembers(pdpb_pb2.GetMembersRequest(), timeout=self.options.timeout_s)
        self._cluster_id = self.options.cluster_id or members.header.cluster_id
        self._call = stub.Tso()
        self._lock = asyncio.Lock()

    async def get_ts(self, count: int = 1) -> Timestamp:
        async with self._lock:
            await self._call.write(_request(self._cluster_id, count))
            return _timestamp(await self._call.read())

    async def close(self) -> None:
        self._call.cancel()
        await self._channel.close()


STRATEGY = Strategy(
    "example-locked",
    "EXAMPLE PLUGIN: one stream, a lock held across each request",
    ThreadClient,
    AsyncClient,
    bound=lambda options, callers: Bound(1, "requests", "one stream, one request on it at a time"),
    recovery={},  # it does not reconnect: a broken stream fails every later request
)
