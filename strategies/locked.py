"""locked: one shared stream; a lock held across the write and its matching read,
so at most one request is ever in flight."""

from __future__ import annotations

import asyncio
import threading

from .base import ClientOptions, Strategy, Timestamp
from .stream import AsyncClientBase, AsyncStream, SyncStream, ThreadClientBase, to_timestamp


class ThreadClient(ThreadClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self._lock = threading.Lock()
        self._stream: SyncStream | None = None

    def get_ts(self, count: int = 1) -> Timestamp:
        if not self._lock.acquire(timeout=self.options.timeout_s):
            raise TimeoutError("waited too long for the stream lock")
        try:
            if self._stream is None:
                self._stream = SyncStream(self.channels.stub())
            try:
                self._stream.send(self.channels.request(count))
                return to_timestamp(self._stream.recv(), count)
            except BaseException:
                self._stream.close()  # unknown state: reconnect on the next request
                self._stream = None
                raise
        finally:
            self._lock.release()

    def close(self) -> None:
        if self._stream:
            self._stream.close()
        super().close()


class AsyncClient(AsyncClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self._lock = asyncio.Lock()
        self._stream: AsyncStream | None = None

    async def get_ts(self, count: int = 1) -> Timestamp:
        async with asyncio.timeout(self.options.timeout_s), self._lock:
            if self._stream is None:
                self._stream = AsyncStream(self.channels.stub())
            try:
                await self._stream.send(self.channels.request(count))
                return to_timestamp(await self._stream.recv(), count)
            except BaseException:
                self._stream.close()
                self._stream = None
                raise

    async def close(self) -> None:
        if self._stream:
            self._stream.close()
        await super().close()


STRATEGY = Strategy("locked", "one shared stream, a lock held across send+receive", ThreadClient, AsyncClient)
