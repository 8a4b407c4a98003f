"""The PD gRPC service (asyncio): Tso and GetMembers over the oracle.

One asyncio task serves every stream, so the oracle needs no lock and replies
on a stream leave in request order. A request that finds the logical part of
the current millisecond used up waits, in arrival order, for the clock's next
millisecond (PD's overflow rule) rather than pushing physical ahead of it.

In a cluster (``leadership``), GetMembers lists every member and the current
leader, and a member that does not lead answers Tso with UNAVAILABLE "not
leader", as a PD follower does, so that clients ask GetMembers again.

``--rtt-ms`` emulates network distance: a stream's requests are answered as
they arrive, and each reply waits in the stream's queue until its round trip
is over, so requests behind it are not held up (``--delay-ms`` is serial server
work, they are). One reader task per stream and one sleep per batch of due
replies, never a timer per request; with no round trip the handler takes the
plain path, as if the emulation did not exist.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator

import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc

from .config import ServerConfig
from .disruptions import Disruptions
from .leadership import Member, Solo
from .metrics import ServerMetrics
from .oracle import MAX_LOGICAL, Allocation

LEADER_NAME = "tsobench-pd"
NOT_LEADER = "not leader"  # what a PD follower answers (UNAVAILABLE), so that clients ask GetMembers again
OVERFLOW_RETRY_S = 0.001  # the wall clock's resolution: the next millisecond brings a fresh logical part


class Refused(Exception):
    """A request that ends its stream with this status (after the replies before it)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class PDService(pdpb_pb2_grpc.PDServicer):
    def __init__(
        self,
        config: ServerConfig,
        role: Solo | Member,
        metrics: ServerMetrics,
        urls: list[str],
        disruptions: Disruptions,
    ) -> None:
        self.config = config
        self.role = role
        self.metrics = metrics
        self.disruptions = disruptions
        self._random = random.Random(config.seed)
        self._header = pdpb_pb2.ResponseHeader(cluster_id=config.cluster_id)
        self._overflow_queue = asyncio.Lock()  # FIFO: overflowed requests take the next milliseconds in turn
        self._round_trips = bool(config.rtt_ms or config.rtt_jitter_ms)  # an emulated network distance
        if len(urls) == 1:
            self._members = [
                pdpb_pb2.Member(name=LEADER_NAME, member_id=config.cluster_id, client_urls=urls, peer_urls=urls)
            ]
        else:
            self._members = [
                pdpb_pb2.Member(name=f"{LEADER_NAME}-{i}", member_id=i + 1, client_urls=[url], peer_urls=[url])
                for i, url in enumerate(urls)
            ]

    async def GetMembers(
        self, request: pdpb_pb2.GetMembersRequest, context: grpc.aio.ServicerContext
    ) -> pdpb_pb2.GetMembersResponse:
        if self._round_trips:
            await asyncio.sleep(self._round_trip_s())
        asked = request.header.cluster_id
        if asked and asked != self.config.cluster_id:  # 0: a client learning the id (PD's first call), answered
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"mismatch cluster id, need {self.config.cluster_id} but got {asked}",
            )
        reply = pdpb_pb2.GetMembersResponse(header=self._header, members=self._members)
        leader = await self.role.leader()
        if leader is not None:  # none while a cluster elects one
            reply.leader.CopyFrom(self._members[leader])
        return reply

    async def Tso(
        self,
        request_iterator: AsyncIterator[pdpb_pb2.TsoRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pdpb_pb2.TsoResponse]:
        self.metrics.stream_opened()
        epoch = self.disruptions.abort_epoch
        try:
            if not self._round_trips:
                async for request in request_iterator:
                    reply = await self._answer(request, epoch)
                    self.metrics.answered(request.count)
                    yield reply
            else:
                async for reply in self._after_round_trip(request_iterator, epoch):
                    self.metrics.answered(reply.count)
                    yield reply
        except Refused as refusal:
            self.metrics.failed()
            await context.abort(refusal.code, refusal.message)
        finally:
            self.metrics.stream_closed()

    async def _answer(self, request: pdpb_pb2.TsoRequest, epoch: int) -> pdpb_pb2.TsoResponse:
        """One request's reply, after the server's own time for it; Refused ends the stream."""
        self._validate(request)
        self.metrics.asked(request.count)  # PD observes the count before generating, the time whatever happens
        started = time.perf_counter()
        try:
            return await self._generate(request, epoch)
        finally:
            self.metrics.handled(time.perf_counter() - started)

    async def _generate(self, request: pdpb_pb2.TsoRequest, epoch: int) -> pdpb_pb2.TsoResponse:
        if self.disruptions.stalled:
            await self.disruptions.pass_stall()
        if self.disruptions.abort_epoch != epoch:
            raise Refused(grpc.StatusCode.UNAVAILABLE, "injected failure (AbortStreams)")
        if self.config.fail_rate and self._random.random() < self.config.fail_rate:
            raise Refused(grpc.StatusCode.UNAVAILABLE, "injected failure (--fail-rate)")
        allocation = self._allocate_now(request.count) or await self._allocate_in_turn(request.count)
        delay = self._delay_s()
        if delay:
            await asyncio.sleep(delay)
        return pdpb_pb2.TsoResponse(
            header=self._header,
            count=request.count,
            timestamp=pdpb_pb2.Timestamp(physical=allocation.physical, logical=allocation.logical),
        )

    async def _after_round_trip(
        self, request_iterator: AsyncIterator[pdpb_pb2.TsoRequest], epoch: int
    ) -> AsyncIterator[pdpb_pb2.TsoResponse]:
        """The stream's replies, each once its round trip is over, in request order.

        A reader task answers requests as they arrive and queues (due, reply); this side
        sleeps until the head is due, then sends everything due. Due times never decrease
        (a reply never overtakes the one before it, as on one TCP connection), so only the
        head needs watching. The queue ends with None (the client closed its side) or the
        exception that ended the reading (a Refused), which goes out in its turn."""
        loop = asyncio.get_running_loop()
        queue: deque[tuple[float, pdpb_pb2.TsoResponse | BaseException | None]] = deque()
        waiting: list[asyncio.Future[None]] = []  # the reply side, while the queue is empty

        def put(item: pdpb_pb2.TsoResponse | BaseException | None) -> None:
            due = loop.time() + self._round_trip_s()
            queue.append((max(due, queue[-1][0]) if queue else due, item))
            if waiting and not waiting[0].done():
                waiting[0].set_result(None)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    put(await self._answer(request, epoch))
            except Exception as exc:  # a Refused, or the stream broke: it ends the replies in its turn
                put(exc)
            else:
                put(None)

        reader = asyncio.create_task(read())
        try:
            while True:
                if not queue:
                    waiting.append(loop.create_future())
                    await waiting[0]
                    waiting.clear()
                wait = queue[0][0] - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                now = loop.time()
                while queue and queue[0][0] <= now:
                    item = queue.popleft()[1]
                    if item is None:
                        return
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            reader.cancel()

    async def _allocate_in_turn(self, count: int) -> Allocation:
        """The logical part is used up: wait for the wall clock to move on, in arrival order (the
        client's deadline bounds the wait: it cancels us), asking again each time."""
        async with self._overflow_queue:
            while (allocation := self._allocate_now(count)) is None:
                await asyncio.sleep(OVERFLOW_RETRY_S)
        return allocation

    def _allocate_now(self, count: int) -> Allocation | None:
        """From the oracle while this server leads; None when this millisecond's logical part is used up."""
        oracle = self.role.oracle()
        if oracle is None:
            self.metrics.event("not_leader")
            raise Refused(grpc.StatusCode.UNAVAILABLE, NOT_LEADER)
        allocation = oracle.allocate(count)
        if allocation is None:
            self.metrics.event("logical_overflow")
        return allocation

    def _validate(self, request: pdpb_pb2.TsoRequest) -> None:
        cluster_id = request.header.cluster_id
        if cluster_id != self.config.cluster_id:
            raise Refused(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"mismatch cluster id, need {self.config.cluster_id} but got {cluster_id}",
            )
        if not 0 < request.count < MAX_LOGICAL:
            raise Refused(
                grpc.StatusCode.INVALID_ARGUMENT, f"invalid count {request.count}: must be in [1, {MAX_LOGICAL - 1}]"
            )

    def _delay_s(self) -> float:
        delay_ms = self.config.delay_ms
        if self.config.jitter_ms:
            delay_ms += self._random.uniform(0, self.config.jitter_ms)
        return delay_ms / 1000.0 + self.disruptions.extra_delay_s()

    def _round_trip_s(self) -> float:
        jitter_ms = self._random.uniform(0, self.config.rtt_jitter_ms) if self.config.rtt_jitter_ms else 0.0
        return (self.config.rtt_ms + jitter_ms) / 1000.0
