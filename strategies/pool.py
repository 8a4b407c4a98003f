"""pool: ``pool_size`` streams; a caller checks one out exclusively for its
write+read and returns it. Like ``locked``, times ``pool_size``."""

from __future__ import annotations

import asyncio
import queue

from .base import ClientOptions, Strategy, Timestamp
from .stream import AsyncClientBase, AsyncStream, SyncStream, ThreadClientBase, to_timestamp


class ThreadClient(ThreadClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self._idle: queue.LifoQueue[SyncStream | None] = queue.LifoQueue()
        self._all: list[SyncStream] = []

    def open(self) -> None:
        super().open()
        for _ in range(self.options.pool_size):
            self._idle.put(None)  # streams open lazily, on first checkout

    def get_ts(self, count: int = 1) -> Timestamp:
        try:
            stream = self._idle.get(timeout=self.options.timeout_s)
        except queue.Empty:
            raise TimeoutError("no pooled stream became free in time") from None
        try:
            if stream is None:
                stream = SyncStream(self.channels.stub())
                self._all.append(stream)
            stream.send(self.channels.request(count))
            return to_timestamp(stream.recv(), count)
        except BaseException:
            if stream is not None:
                stream.close()
            stream = None  # its slot reconnects on the next checkout
            raise
        finally:
            self._idle.put(stream)

    def close(self) -> None:
        for stream in self._all:
            stream.close()
        super().close()


class AsyncClient(AsyncClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self._idle: asyncio.LifoQueue[AsyncStream | None] = asyncio.LifoQueue()
        self._all: list[AsyncStream] = []

    async def open(self) -> None:
        await super().open()
        for _ in range(self.options.pool_size):
            self._idle.put_nowait(None)

    async def get_ts(self, count: int = 1) -> Timestamp:
        async with asyncio.timeout(self.options.timeout_s):
            stream = await self._idle.get()
            try:
                if stream is None:
                    stream = AsyncStream(self.channels.stub())
                    self._all.append(stream)
                await stream.send(self.channels.request(count))
                return to_timestamp(await stream.recv(), count)
            except BaseException:
                if stream is not None:
                    stream.close()
                stream = None
                raise
            finally:
                self._idle.put_nowait(stream)

    async def close(self) -> None:
        for stream in self._all:
            stream.close()
        await super().close()


STRATEGY = Strategy("pool", "N streams, each checked out exclusively", ThreadClient, AsyncClient)
