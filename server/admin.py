"""The admin service (tsobench.admin.Admin) that injects faults, and a client for it.

Served only with ``--admin``, and only to callers that know its token: every call carries it as gRPC
metadata (``TOKEN_KEY``), checked by ``TokenCheck`` before any admin method runs (UNAUTHENTICATED
otherwise). The harness starts its server with admin only when a run has faults, with a random token
it alone knows (a file only it can read); ``tsobench serve --admin`` prints its own or reads
``--admin-token-file``. Durations are bounded (``MAX_DURATION_S``); ``Stall(0)`` and ``Delay(0, 0)``
end one under way.
"""

from __future__ import annotations

import hmac
import math
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from grpc.aio import ServicerContext

from tsobench.protos import admin_pb2, admin_pb2_grpc

from .disruptions import Disruptions
from .leadership import Member, NotLeader, Solo, TooSoon
from .metrics import ServerMetrics

SERVICE_NAME = admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name
TOKEN_KEY = "tsobench-admin-token"  # the gRPC metadata key every admin call carries
MAX_DURATION_S = 3600.0  # a stall or delay lasts at most an hour (a run's faults are seconds)
MAX_DELAY_MS = 60_000.0  # a delayed reply waits at most a minute


def new_token() -> str:
    return secrets.token_urlsafe(24)


def read_token(path: str | Path) -> str:
    """The token in ``path`` (surrounding whitespace dropped); raises ValueError when there is none."""
    token = Path(path).read_text().strip()
    if not token:
        raise ValueError(f"{path}: no admin token in it")
    return token


def write_token(path: str | Path, token: str) -> Path:
    """``token`` into a new file only this user can read."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return path


class TokenCheck(grpc.aio.ServerInterceptor):
    """Refuses every admin call without the token (UNAUTHENTICATED); other services pass untouched."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if not details.method.startswith(f"/{SERVICE_NAME}/"):
            return await continuation(details)
        given = dict(details.invocation_metadata or ()).get(TOKEN_KEY, "")
        given_bytes = given if isinstance(given, bytes) else str(given).encode()
        if hmac.compare_digest(given_bytes, self._token):
            return await continuation(details)
        return grpc.unary_unary_rpc_method_handler(_refuse)


async def _refuse(request: Any, context: ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"admin calls need the server's token ({TOKEN_KEY} metadata)")


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
        if request.duration_s == 0:
            self.disruptions.end_stall()  # Stall(0): cancel the one under way
        else:
            self.disruptions.stall(request.duration_s)
        return admin_pb2.StallResponse()

    async def Delay(self, request: admin_pb2.DelayRequest, context: ServicerContext) -> admin_pb2.DelayResponse:
        await _check(context, duration_s=request.duration_s, delay_ms=request.delay_ms)
        self.disruptions.delay(request.duration_s, request.delay_ms)  # Delay(0, 0): ends the one under way
        return admin_pb2.DelayResponse()

    async def TransferLeader(
        self, request: admin_pb2.TransferLeaderRequest, context: ServicerContext
    ) -> admin_pb2.TransferLeaderResponse:
        try:
            to = await self.role.transfer(request.member if request.HasField("member") else None)
        except TooSoon as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except NotLeader as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return admin_pb2.TransferLeaderResponse(from_member=self.role.me, to_member=to)


LIMITS = {"duration_s": MAX_DURATION_S, "delay_ms": MAX_DELAY_MS}


async def _check(context: ServicerContext, **values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and 0 <= value <= LIMITS[name]):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"{name} must be a number from 0 to {LIMITS[name]:g}, got {value}"
            )


class AdminClient:
    """Calls the admin service of a server started with ``--admin`` (one short-lived channel per call)."""

    def __init__(self, address: str, token: str = "", timeout_s: float = 5.0) -> None:
        self.address = address
        self.token = token
        self.timeout_s = timeout_s

    def _call(self, method: str, request):
        with grpc.insecure_channel(self.address) as channel:
            stub = getattr(admin_pb2_grpc.AdminStub(channel), method)
            return stub(request, timeout=self.timeout_s, metadata=((TOKEN_KEY, self.token),))

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
