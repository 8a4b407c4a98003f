"""Wire plumbing shared by all strategies: channels to the leader, requests, one stream."""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc

from .backoff import LONGEST_S as LONGEST_BACKOFF_S
from .backoff import Backoff
from .base import ClientOptions, ReplyMismatch, Timestamp
from .deadline import DeadlineExceeded
from .leader import (
    Leader,
    NoLeader,
    channel_credentials,
    endpoints,
    find_leader,
    find_leader_async,
    leader_may_have_moved,
    leader_silent,
    make_channel,
    members_request,
)

_CLOSE = object()
RECHECK_TIMEOUT_S = 1.0  # a GetMembers while requests wait: a live member answers in milliseconds
PROVE_STEP_S = 0.1  # after a failure, how long to wait for the leader's connection before asking who leads again
UNREACHABLE = "no reachable leader within the request deadline"
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


# gRPC's own reconnect backoff (1 s, x1.6 up to 120 s) keeps growing while a server is down and
# then fails every call fast for up to that long after it is back: seconds after a restart.
# Capped like the strategies' backoff, the channel tries again at least every 500 ms.
RECONNECT_BACKOFF_MS = (100, round(LONGEST_BACKOFF_S * 1000))
# HTTP/2 keepalive as PD's clients (TiDB's) use it: a ping after 10 s without reads, the connection
# given up when 3 s pass without its answer, so a frozen (not dead) server's streams fail and their
# strategies ask who leads. Pings only while calls are open, and with no cap on pings between data
# frames (a stream waiting for its reply sends none). The server must permit a 10 s interval.
KEEPALIVE_MS = (10_000, 3_000)


def channel_options(index: int) -> list[tuple[str, int]]:
    # Channels with identical options share one subchannel (one TCP connection);
    # a distinct dummy option gives each of ``connections`` its own.
    first, longest = RECONNECT_BACKOFF_MS
    every, wait = KEEPALIVE_MS
    return [
        ("tsobench.channel", index),
        ("grpc.max_receive_message_length", 4 << 20),
        ("grpc.initial_reconnect_backoff_ms", first),
        ("grpc.max_reconnect_backoff_ms", longest),
        ("grpc.keepalive_time_ms", every),
        ("grpc.keepalive_timeout_ms", wait),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def _down(exc: grpc.RpcError) -> bool:
    """The leader's connection did not come up in time (any other answer means it is up)."""
    return exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def tso_request(cluster_id: int, count: int) -> pdpb_pb2.TsoRequest:
    return pdpb_pb2.TsoRequest(header=pdpb_pb2.RequestHeader(cluster_id=cluster_id), count=count)


def to_timestamp(response: pdpb_pb2.TsoResponse, count: int) -> Timestamp:
    if response.count != count:
        raise ReplyMismatch(f"asked for {count} timestamps, reply carries {response.count}")
    ts = response.timestamp
    return Timestamp(ts.physical, ts.logical, count)


class _Channels:
    """``connections`` channels to the PD leader; ``stub()`` hands them out round-robin.

    The leader is found at open: GetMembers of the first endpoint of ``target``
    that answers (with a cluster id and a single endpoint: that endpoint, as
    given). A strategy whose stream broke says so (``stream_failed``); when the
    error says the leader may have moved and the client knows more than one
    endpoint, the next ``stub()`` asks again (the current leader first, then
    every endpoint and member known; one check at a time, backing off while
    nobody names a leader) and connects to the new leader if it changed. After
    a missed deadline the current leader is asked last: it may be frozen while
    the others elect a new one, and a frozen member answers nothing until the
    re-check's own timeout. Channels to a former leader stay open until
    ``close``: streams still on them fail on their own and their strategies
    reopen on the new leader.

    After any failure the next ``stub()`` also waits, up to the request
    deadline, until the leader's connection is up (a ``GetMembers`` that waits
    for it: grpcio's own readiness future leaves a thread that dies when the
    channel closes), asking who leads again every ``PROVE_STEP_S`` while it is
    not: during an election (or a restart) the requests wait for the new
    leader, as PD's client waits for its stream, instead of each reconnect
    attempt failing the requests it carried. A wait that outlasts the deadline
    fails as ``DeadlineExceeded`` (a timeout). Nothing is waited for while the
    streams are healthy.
    """

    def __init__(self, options: ClientOptions, api: Any) -> None:
        self.options = options
        self._api = api
        self.endpoints = endpoints(options.target)
        self.credentials = channel_credentials(options.cacert, options.cert, options.key)
        self.cluster_id = options.cluster_id or 0
        self.leader = ""  # HOST:PORT of the leader the channels lead to
        self._members: tuple[str, ...] = ()
        self._channels: list[Any] = []
        self._retired: list[Any] = []
        self._next: Iterator[pdpb_pb2_grpc.PDStub] = iter(())
        self._unproven = False  # a stream failed: the next stub waits for its channel to be connected
        self._suspect = False  # a stream failed in a way that says the leader may have moved
        self._silent = False  # ... by missing its deadline: ask the others before the leader
        self._backoff = Backoff()

    @property
    def recheck_timeout_s(self) -> float:
        return min(self.options.timeout_s, RECHECK_TIMEOUT_S)

    def candidates(self) -> list[str]:
        known = [e for e in dict.fromkeys([self.leader, *self.endpoints, *self._members]) if e]
        if self._silent and self.leader:
            known.remove(self.leader)
            known.append(self.leader)
        return known

    def request(self, count: int) -> pdpb_pb2.TsoRequest:
        return tso_request(self.cluster_id, count)

    def stream_failed(self, exc: BaseException) -> None:
        """A stream broke with ``exc``: the next stub waits for a connection, and if the leader may have
        moved, asks for it first."""
        self._unproven = True
        if leader_may_have_moved(exc) and len(self.candidates()) > 1:
            self._suspect = True
            self._silent = self._silent or leader_silent(exc)

    def direct(self) -> Leader | None:
        """With a cluster id and one endpoint, that endpoint, no GetMembers (a port-forward, a stopped server)."""
        if self.options.cluster_id and len(self.endpoints) == 1:
            return Leader(self.endpoints[0], self.options.cluster_id, ())
        return None

    def _recheck_due(self) -> bool:
        return self._suspect and self._backoff.due()

    def _follow(self, leader: Leader | None) -> None:
        """Use what GetMembers said (None: nobody named a leader, back off); connect if the leader is new."""
        if leader is None:
            self._backoff.failed()
            return
        self._suspect = self._silent = False
        self._backoff.succeeded()
        self._members = leader.members
        if not self.options.cluster_id:
            self.cluster_id = leader.cluster_id
        if leader.address == self.leader:
            return
        self._retired += self._channels
        self.leader = leader.address
        self._channels = [
            make_channel(self._api, leader.address, self.credentials, channel_options(i))
            for i in range(self.options.connections)
        ]
        self._next = itertools.cycle([pdpb_pb2_grpc.PDStub(c) for c in self._channels])

    def _step(self, until: float) -> float:
        """How long the next wait for a connection may last; DeadlineExceeded once the deadline has passed."""
        left = until - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(UNREACHABLE)
        return min(PROVE_STEP_S, left)

    def _unreachable(self) -> None:
        """The leader's connection did not come up within a step: it may be gone, ask who leads."""
        self.stream_failed(ConnectionError("the leader's connection is down"))


class SyncChannels(_Channels):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options, grpc)
        self._lock = threading.Lock()
        self._follow(self.direct() or find_leader(self.endpoints, self.credentials, options.timeout_s))

    def stub(self) -> pdpb_pb2_grpc.PDStub:
        """A stub on the leader; after a failure, once its connection is up (within the request deadline)."""
        until = time.monotonic() + self.options.timeout_s if self._unproven else 0.0
        while True:
            if self._suspect:
                with self._lock:  # the others wait for its answer rather than try a former leader
                    if self._recheck_due():
                        self._follow(self._find())
            stub = next(self._next)
            if not self._unproven:
                return stub
            try:
                stub.GetMembers(members_request(), timeout=self._step(until), wait_for_ready=True)
            except grpc.RpcError as exc:
                if _down(exc):
                    self._unreachable()
                    continue
            self._unproven = False
            return stub

    def _find(self) -> Leader | None:
        try:
            return find_leader(self.candidates(), self.credentials, self.recheck_timeout_s, diagnose=False)
        except NoLeader:
            return None

    def close(self) -> None:
        for c in self._channels + self._retired:
            c.close()


class AsyncChannels(_Channels):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options, grpc.aio)
        self._lock = asyncio.Lock()

    async def discover(self) -> None:
        leader = self.direct() or await find_leader_async(self.endpoints, self.credentials, self.options.timeout_s)
        self._follow(leader)

    async def stub(self) -> pdpb_pb2_grpc.PDStub:
        """``SyncChannels.stub`` for the asyncio API."""
        until = time.monotonic() + self.options.timeout_s if self._unproven else 0.0
        while True:
            if self._suspect:
                async with self._lock:
                    if self._recheck_due():
                        self._follow(await self._find())
            stub = next(self._next)
            if not self._unproven:
                return stub
            try:
                await stub.GetMembers(members_request(), timeout=self._step(until), wait_for_ready=True)
            except grpc.RpcError as exc:
                if _down(exc):
                    self._unreachable()
                    continue
            self._unproven = False
            return stub

    async def _find(self) -> Leader | None:
        try:
            return await find_leader_async(self.candidates(), self.credentials, self.recheck_timeout_s, diagnose=False)
        except NoLeader:
            return None

    async def close(self) -> None:
        for c in self._channels + self._retired:
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
