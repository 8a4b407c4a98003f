"""per-request: a new Tso stream for every request. Safe by construction; pays
a stream setup (and, with sync grpcio, a request-consumer thread) each time.
A failure that says the leader may have moved sends the next request to the new one.

After a failure the next stream waits out a backoff (``backoff``), as the
other strategies' reconnects do: without it, callers retry a dead server in a
tight loop that burns the CPU the restarting server needs."""

from __future__ import annotations

from .backoff import Backoff
from .base import ClientOptions, Strategy, Timestamp
from .stream import AsyncClientBase, AsyncStream, ThreadClientBase, open_tso, to_timestamp


class ThreadClient(ThreadClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self.backoff = Backoff()

    @property
    def reconnects(self) -> int:
        return self.backoff.attempts

    def get_ts(self, count: int = 1) -> Timestamp:
        self.backoff.wait()
        request = self.channels.request(count)
        replies = open_tso(self.channels.stub(), iter((request,)), timeout=self.options.timeout_s)
        try:
            ts = to_timestamp(next(replies), count)
        except Exception as exc:
            self.channels.stream_failed(exc)
            self.backoff.failed()
            raise
        finally:
            replies.cancel()
        self.backoff.succeeded()
        return ts


class AsyncClient(AsyncClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self.backoff = Backoff()

    @property
    def reconnects(self) -> int:
        return self.backoff.attempts

    async def get_ts(self, count: int = 1) -> Timestamp:
        await self.backoff.wait_async()
        stream = AsyncStream(await self.channels.stub(), timeout_s=self.options.timeout_s)
        try:
            await stream.send(self.channels.request(count))
            await stream.done_writing()
            ts = to_timestamp(await stream.recv(), count)
        except Exception as exc:
            self.channels.stream_failed(exc)
            self.backoff.failed()
            raise
        finally:
            stream.close()
        self.backoff.succeeded()
        return ts


STRATEGY = Strategy("per-request", "a new stream per request (safe, slow)", ThreadClient, AsyncClient)
