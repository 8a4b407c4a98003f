"""unsafe-shared: THE BUG. One stream, every caller writes and reads it with no
lock, so concurrent reads race: replies go to the wrong caller, grpcio raises
"Internal gRPC call error 8", grpc.aio fails or hangs. Kept as the negative
control the harness must catch; never use this design."""

from __future__ import annotations

from .base import ClientOptions, Strategy, Timestamp
from .stream import AsyncChannels, AsyncStream, SyncChannels, SyncStream, to_timestamp, tso_request


class ThreadClient:
    def __init__(self, options: ClientOptions) -> None:
        self.options = options

    def open(self) -> None:
        self._channels = SyncChannels(self.options)
        self._stream = SyncStream(self._channels.stub())

    def get_ts(self, count: int = 1) -> Timestamp:
        self._stream.send(tso_request(self._channels.cluster_id, count))
        return to_timestamp(self._stream.recv(), count)

    def close(self) -> None:
        self._stream.close()
        self._channels.close()


class AsyncClient:
    def __init__(self, options: ClientOptions) -> None:
        self.options = options

    async def open(self) -> None:
        self._channels = AsyncChannels(self.options)
        await self._channels.discover()
        self._stream = AsyncStream(self._channels.stub())

    async def get_ts(self, count: int = 1) -> Timestamp:
        await self._stream.send(tso_request(self._channels.cluster_id, count))
        return to_timestamp(await self._stream.recv(), count)

    async def close(self) -> None:
        self._stream.close()
        await self._channels.close()


STRATEGY = Strategy(
    "unsafe-shared",
    "NEGATIVE CONTROL: one stream, concurrent unlocked reads (the bug)",
    ThreadClient,
    AsyncClient,
    safe=False,
)
