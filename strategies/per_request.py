"""per-request: a new Tso stream for every request. Safe by construction; pays
a stream setup (and, with sync grpcio, a request-consumer thread) each time."""

from __future__ import annotations

from .base import ClientOptions, Strategy, Timestamp
from .stream import AsyncChannels, AsyncStream, SyncChannels, open_tso, to_timestamp, tso_request


class ThreadClient:
    def __init__(self, options: ClientOptions) -> None:
        self.options = options

    def open(self) -> None:
        self._channels = SyncChannels(self.options)

    def get_ts(self, count: int = 1) -> Timestamp:
        request = tso_request(self._channels.cluster_id, count)
        replies = open_tso(self._channels.stub(), iter((request,)), timeout=self.options.timeout_s)
        try:
            return to_timestamp(next(replies), count)
        finally:
            replies.cancel()

    def close(self) -> None:
        self._channels.close()


class AsyncClient:
    def __init__(self, options: ClientOptions) -> None:
        self.options = options

    async def open(self) -> None:
        self._channels = AsyncChannels(self.options)
        await self._channels.discover()

    async def get_ts(self, count: int = 1) -> Timestamp:
        stream = AsyncStream(self._channels.stub(), timeout_s=self.options.timeout_s)
        try:
            await stream.send(tso_request(self._channels.cluster_id, count))
            await stream.done_writing()
            return to_timestamp(await stream.recv(), count)
        finally:
            stream.close()

    async def close(self) -> None:
        await self._channels.close()


STRATEGY = Strategy("per-request", "a new stream per request (safe, slow)", ThreadClient, AsyncClient)
