"""The PD gRPC service (asyncio): Tso and GetMembers over the oracle.

One asyncio task serves every stream, so the oracle needs no lock and replies
on a stream leave in request order. A request that finds the logical part of
the current millisecond used up waits, in arrival order, for the clock's next
millisecond (PD's overflow rule) rather than pushing physical ahead of it.

In a cluster (``leadership``), GetMembers lists every member and the current
leader, and a member that does not lead answers Tso with UNAVAILABLE "not
leader", as a PD follower does, so that clients ask GetMembers again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc

from .config import ServerConfig
from .disruptions import Disruptions
from .leadership import Member, NotLeader, Solo
from .metrics import ServerMetrics
from .oracle import MAX_LOGICAL, Allocation

LEADER_NAME = "tsobench-pd"
NOT_LEADER = "not leader"  # what a PD follower answers (UNAVAILABLE), so that clients ask GetMembers again
OVERFLOW_RETRY_S = 0.001  # the wall clock's resolution: the next millisecond brings a fresh logical part


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
        reply = pdpb_pb2.GetMembersResponse(header=self._header, members=self._members)
        leader = self.role.leader()
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
            async for request in request_iterator:
                await self._validate(request, context)
                await self.disruptions.pass_stall()
                if self.disruptions.abort_epoch != epoch:
                    await self._abort(context, grpc.StatusCode.UNAVAILABLE, "injected failure (AbortStreams)")
                if self.config.fail_rate and self._random.random() < self.config.fail_rate:
                    await self._abort(context, grpc.StatusCode.UNAVAILABLE, "injected failure (--fail-rate)")
                allocation = await self._allocate(request.count, context)
                delay = self._delay_s()
                if delay:
                    await asyncio.sleep(delay)
                self.metrics.answered(request.count)
                yield pdpb_pb2.TsoResponse(
                    header=self._header,
                    count=request.count,
                    timestamp=pdpb_pb2.Timestamp(physical=allocation.physical, logical=allocation.logical),
                )
        finally:
            self.metrics.stream_closed()

    async def _allocate(self, count: int, context: grpc.aio.ServicerContext) -> Allocation:
        """From the oracle while this server leads. When the logical part is used up, wait for the
        wall clock to move on (the client's deadline bounds the wait: it cancels us), asking again each time."""
        try:
            allocation = self._allocate_now(count)
            if allocation is None:
                async with self._overflow_queue:
                    while (allocation := self._allocate_now(count)) is None:
                        await asyncio.sleep(OVERFLOW_RETRY_S)
        except NotLeader:
            await self._abort(context, grpc.StatusCode.UNAVAILABLE, NOT_LEADER)
            raise  # not reached: abort raises
        return allocation

    def _allocate_now(self, count: int) -> Allocation | None:
        oracle = self.role.oracle()
        if oracle is None:
            raise NotLeader(NOT_LEADER)
        try:
            return oracle.allocate(count)
        except NotLeader as exc:  # a fenced window save was refused: the lease is gone
            self.role.lost(str(exc))
            raise

    async def _validate(self, request: pdpb_pb2.TsoRequest, context: grpc.aio.ServicerContext) -> None:
        cluster_id = request.header.cluster_id
        if cluster_id != self.config.cluster_id:
            await self._abort(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"mismatch cluster id, need {self.config.cluster_id} but got {cluster_id}",
            )
        if not 0 < request.count < MAX_LOGICAL:
            await self._abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"invalid count {request.count}: must be in [1, {MAX_LOGICAL - 1}]",
            )

    async def _abort(self, context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> None:
        self.metrics.failed()
        await context.abort(code, message)

    def _delay_s(self) -> float:
        delay_ms = self.config.delay_ms
        if self.config.jitter_ms:
            delay_ms += self._random.uniform(0, self.config.jitter_ms)
        return delay_ms / 1000.0 + self.disruptions.extra_delay_s()
