"""tikv-client: a production client as the yardstick, not a design to choose.

The ``tikv-client`` package (TiKV's Rust client, client-rust, for Python) takes
timestamps through ``tikv_client.asynchronous.TransactionClient.current_timestamp()``:
one timestamp per call, an int ``physical << 18 | logical``. Its PD client asks
GetMembers, then batches whatever callers queued (up to 64 per TsoRequest) on
one stream, with many batches in flight and no wait to fill them.

Run as it is: it has no per-request deadline for timestamps (a request a frozen
server never answers waits, and the harness calls it hung, as it would hang its
caller), no thread API (the package's sync wrapper drives an event loop per
call), no TLS through this entry point, and nothing to close. Optional:
``pip install "tsobench[reference]"``; without it the strategy is listed as
unavailable and runs that ask for it are refused with that hint.
"""

from __future__ import annotations

import functools
from typing import Any, NoReturn

from tsobench.options import ConfigError

from .base import LOGICAL_BITS, Bound, ClientOptions, Strategy, Timestamp
from .leader import endpoints

NAME = "tikv-client"
INSTALL_HINT = 'pip install "tsobench[reference]"'
_LOGICAL_MASK = (1 << LOGICAL_BITS) - 1


@functools.cache
def why_unavailable() -> str | None:
    """None when the package imports here; otherwise why not, with the install hint."""
    try:
        import tikv_client.asynchronous  # noqa: F401
    except Exception as exc:  # ImportError, or a native library that does not load on this machine
        return f"the tikv-client package cannot be imported ({type(exc).__name__}: {exc}); {INSTALL_HINT}"
    return None


class AsyncClient:
    def __init__(self, options: ClientOptions) -> None:
        if options.tls:
            raise ConfigError(f"{NAME} connects without TLS here: --cacert/--cert/--key are not supported")
        self.options = options
        self._client: Any = None

    async def open(self) -> None:
        from tikv_client.asynchronous import TransactionClient

        self._client = await TransactionClient.connect(endpoints(self.options.target))

    async def get_ts(self, count: int = 1) -> Timestamp:
        if count != 1:
            raise ValueError(f"{NAME} gives one timestamp per request (asked for {count})")
        ts = await self._client.current_timestamp()
        return Timestamp(ts >> LOGICAL_BITS, ts & _LOGICAL_MASK)

    async def close(self) -> None:
        self._client = None  # the package has no close: its connections go with the client


def _no_thread_api(options: ClientOptions) -> NoReturn:
    raise ConfigError(f"{NAME} has no thread API here: use --api asyncio")


def _bound(options: ClientOptions, callers: int) -> Bound:
    return Bound(
        callers, "requests", "every caller's request joins the next batch (up to 64), batches pipelined on one stream"
    )


STRATEGY = Strategy(
    NAME,
    "REFERENCE: TiKV's production Rust client (tikv-client), current_timestamp()",
    _no_thread_api,
    AsyncClient,
    reference=True,
    bound=_bound,
    benchmark=False,  # the suite tracks this project's designs; a third-party client is compared in runs
    apis=("asyncio",),
    max_count=1,
    why_unavailable=why_unavailable,
)
