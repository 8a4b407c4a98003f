"""Name a failed request's error the way the results count it."""

from __future__ import annotations

import asyncio

import grpc


def error_kind(exc: BaseException) -> str:
    """gRPC status name, or the exception type for the non-gRPC ways a shared
    stream breaks (ValueError is grpcio's "Internal gRPC call error 8").
    Every missed deadline is ``timeout``, whoever enforced it."""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        code = exc.code()
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return "timeout"  # gRPC's own deadline: the same thing as the watchdog's
        return code.name if code is not None else "RpcError"
    if isinstance(exc, asyncio.InvalidStateError):
        return "InvalidStateError"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__


def one_line(exc: BaseException) -> str:
    """One readable line for a person (a gRPC error's repr spans many lines)."""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "details"):
        return f"{error_kind(exc)}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"
