"""Errors in words: how the results count a failed request (``error_kind``) and one line for a person
(``one_line``). Every layer uses these two (strategies, the run, the analysis), so they live at the base."""

from __future__ import annotations

import asyncio

import grpc

ONE_LINE_MOST = 300  # characters: a message longer than this is cut (a plugin's traceback, a huge JSON error)


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


def one_line(exc: BaseException, most: int = ONE_LINE_MOST) -> str:
    """``Kind: message`` on one line for a person (a gRPC error's repr spans many lines), at most ``most``
    characters; the kind alone when the message is empty."""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "details"):
        head, text = error_kind(exc), str(exc.details() or "")
    else:
        head, text = type(exc).__name__, str(exc)
    text = " ".join(text.split())
    line = f"{head}: {text}" if text else head
    return line if len(line) <= most else line[: most - 3] + "..."
