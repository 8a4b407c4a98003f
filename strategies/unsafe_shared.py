"""unsafe-shared: THE BUG. One stream, every caller writes and reads it with no
lock, so concurrent reads race: replies go to the wrong caller, grpcio raises
"Internal gRPC call error 8", grpc.aio fails or hangs. Kept as the negative
control the harness must catch; never use this design."""

from __future__ import annotations

from .base import Strategy, Timestamp
from .stream import AsyncClientBase, AsyncStream, SyncStream, ThreadClientBase, to_timestamp


class ThreadClient(ThreadClientBase):
    def open(self) -> None:
        super().open()
        self._stream = SyncStream(self.channels.stub())

    def get_ts(self, count: int = 1) -> Timestamp:
        self._stream.send(self.channels.request(count))
        return to_timestamp(self._stream.recv(), count)

    def close(self) -> None:
        self._stream.close()
        super().close()


class AsyncClient(AsyncClientBase):
    async def open(self) -> None:
        await super().open()
        self._stream = AsyncStream(await self.channels.stub())

    async def get_ts(self, count: int = 1) -> Timestamp:
        await self._stream.send(self.channels.request(count))
        return to_timestamp(await self._stream.recv(), count)

    async def close(self) -> None:
        self._stream.close()
        await super().close()


STRATEGY = Strategy(
    "unsafe-shared",
    "NEGATIVE CONTROL: one stream, concurrent unlocked reads (the bug)",
    ThreadClient,
    AsyncClient,
    safe=False,
    benchmark=False,  # the negative control: it is meant to fail, not to be timed
)
