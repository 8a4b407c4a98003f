"""The PD gRPC service (asyncio): Tso and GetMembers over the oracle.

One asyncio task serves every stream, so the oracle needs no lock and replies
on a stream leave in request order. A request that finds the logical part of
the current millisecond used up waits, in arrival order, for the clock's next
millisecond (PD's overflow rule) rather than pushing physical ahead of it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc

from .config import ServerConfig
from .faults import Faults
from .metrics import ServerMetrics
from .oracle import MAX_LOGICAL, Allocation, TimestampOracle

LEADER_NAME = "tsobench-pd"
OVERFLOW_RETRY_S = 0.001  # the wall clock's resolution: the next millisecond brings a fresh logical part


class PDService(pdpb_pb2_grpc.PDServicer):
    def __init__(
        self, config: ServerConfig, oracle: TimestampOracle, metrics: ServerMetrics, address: str, faults: Faults
    ) -> None:
        self.config = config
        self.oracle = oracle
        self.metrics = metrics
        self.address = address
        self.faults = faults
        self._random = random.Random(config.seed)
        self._header = pdpb_pb2.ResponseHeader(cluster_id=config.cluster_id)
        self._overflow_queue = asyncio.Lock()  # FIFO: overflowed requests take the next milliseconds in turn

    async def GetMembers(
        self, request: pdpb_pb2.GetMembersRequest, context: grpc.aio.ServicerContext
    ) -> pdpb_pb2.GetMembersResponse:
        me = pdpb_pb2.Member(
            name=LEADER_NAME,
            member_id=self.config.cluster_id,
            client_urls=[f"http://{self.address}"],
            peer_urls=[f"http://{self.address}"],
        )
        return pdpb_pb2.GetMembersResponse(header=self._header, members=[me], leader=me)

    async def Tso(
        self,
        request_iterator: AsyncIterator[pdpb_pb2.TsoRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pdpb_pb2.TsoResponse]:
        self.metrics.stream_opened()
        epoch = self.faults.abort_epoch
        try:
            async for request in request_iterator:
                await self._validate(request, context)
                await self.faults.pass_stall()
                if self.faults.abort_epoch != epoch:
                    await self._abort(context, grpc.StatusCode.UNAVAILABLE, "injected failure (AbortStreams)")
                if self.config.fail_rate and self._random.random() < self.config.fail_rate:
                    await self._abort(context, grpc.StatusCode.UNAVAILABLE, "injected failure (--fail-rate)")
                allocation = self.oracle.allocate(request.count)
                if allocation is None:
                    allocation = await self._allocate_after_overflow(request.count)
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

    async def _allocate_after_overflow(self, count: int) -> Allocation:
        """Wait for the wall clock to move on; the client's deadline bounds the wait (it cancels us)."""
        async with self._overflow_queue:
            while (allocation := self.oracle.allocate(count)) is None:
                await asyncio.sleep(OVERFLOW_RETRY_S)
        return allocation

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
        return delay_ms / 1000.0 + self.faults.extra_delay_s()
