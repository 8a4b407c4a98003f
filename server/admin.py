"""The admin service (tsobench.admin.Admin) that injects faults, and a client for it.

Served only with ``--admin``: any client could use it to disrupt the server.
"""

from __future__ import annotations

import math

import grpc
from grpc.aio import ServicerContext

from tsobench.protos import admin_pb2, admin_pb2_grpc

from .disruptions import Disruptions
from .leadership import Member, NotLeader, Solo
from .metrics import ServerMetrics

SERVICE_NAME = admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(self, disruptions: Disruptions, metrics: ServerMetrics, role: Solo | Member) -> None:
        self.disruptions = disruptions
        self.metrics = metrics
        self.role = role

    async def AbortStreams(
        self, request: admin_pb2.AbortStreamsRequest, context: ServicerContext
    ) -> admin_pb2.AbortStreamsResponse:
        self.disruptions.abort_streams()
        return admin_pb2.AbortStreamsResponse(streams=self.metrics.snapshot().streams_open)

    async def Stall(self, request: admin_pb2.StallRequest, context: ServicerContext) -> admin_pb2.StallResponse:
        await _check(context, duration_s=request.duration_s)
        self.disruptions.stall(request.duration_s)
        return admin_pb2.StallResponse()

    async def Delay(self, request: admin_pb2.DelayRequest, context: ServicerContext) -> admin_pb2.DelayResponse:
        await _check(context, duration_s=request.duration_s, delay_ms=request.delay_ms)
        self.disruptions.delay(request.duration_s, request.delay_ms)
        return admin_pb2.DelayResponse()

    async def TransferLeader(
        self, request: admin_pb2.TransferLeaderRequest, context: ServicerContext
    ) -> admin_pb2.TransferLeaderResponse:
        try:
            to = await self.role.transfer(request.member if request.HasField("member") else None)
        except NotLeader as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return admin_pb2.TransferLeaderResponse(from_member=self.role.me, to_member=to)


async def _check(context: ServicerContext, **values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value >= 0):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name} must be a finite number >= 0, got {value}")


class AdminClient:
    """Calls the admin service of a server started with ``--admin`` (one short-lived channel per call)."""

    def __init__(self, address: str, timeout_s: float = 5.0) -> None:
        self.address = address
        self.timeout_s = timeout_s

    def _call(self, method: str, request):
        with grpc.insecure_channel(self.address) as channel:
            return getattr(admin_pb2_grpc.AdminStub(channel), method)(request, timeout=self.timeout_s)

    def request(self, method: str, **fields: float):
        """Any admin request by its name and fields (``request("Delay", duration_s=2, delay_ms=20)``)."""
        return self._call(method, getattr(admin_pb2, f"{method}Request")(**fields))

    def abort_streams(self) -> int:
        """Abort every open Tso stream with UNAVAILABLE once; returns how many were open."""
        return self._call("AbortStreams", admin_pb2.AbortStreamsRequest()).streams

    def stall(self, duration_s: float) -> None:
        """Answer nothing for duration_s, then everything queued, in order (returns at once)."""
        self._call("Stall", admin_pb2.StallRequest(duration_s=duration_s))

    def delay(self, duration_s: float, delay_ms: float) -> None:
        """Delay every reply by delay_ms for duration_s (returns at once)."""
        self._call("Delay", admin_pb2.DelayRequest(duration_s=duration_s, delay_ms=delay_ms))

    def transfer_leader(self, member: int | None = None) -> tuple[int, int]:
        """Ask the leader to hand over (to the next member by default); returns (from, to)."""
        reply = self._call("TransferLeader", admin_pb2.TransferLeaderRequest(member=member))
        return reply.from_member, reply.to_member
