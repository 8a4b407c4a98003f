"""The PD gRPC service (asyncio): Tso and GetMembers over the oracle.

One asyncio task serves every stream, so the oracle needs no lock and replies
on a stream leave in request order.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc

from .config import ServerConfig
from .metrics import ServerMetrics
from .oracle import MAX_LOGICAL, TimestampOracle

LEADER_NAME = "tsobench-pd"


class PDService(pdpb_pb2_grpc.PDServicer):
    def __init__(self, config: ServerConfig, oracle: TimestampOracle, metrics: ServerMetrics, address: str) -> None:
        self.config = config
        self.oracle = oracle
        self.metrics = metrics
        self.address = address
        self._random = random.Random(config.seed)
        self._header = pdpb_pb2.ResponseHeader(cluster_id=config.cluster_id)

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
        try:
            fail_this_stream = self._random.random() < self.config.fail_rate
            async for request in request_iterator:
                await self._validate(request, context)
                if fail_this_stream:
                    await self._abort(context, grpc.StatusCode.UNAVAILABLE, "injected failure (--fail-rate)")
                allocation = self.oracle.allocate(request.count)
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
        return delay_ms / 1000.0
