"""per-request: a new Tso stream for every request. Safe by construction; pays
a stream setup (and, with sync grpcio, a request-consumer thread) each time.
A failure that says the leader may have moved sends the next request to the new one."""

from __future__ import annotations

from .base import Strategy, Timestamp
from .stream import AsyncClientBase, AsyncStream, ThreadClientBase, open_tso, to_timestamp


class ThreadClient(ThreadClientBase):
    def get_ts(self, count: int = 1) -> Timestamp:
        request = self.channels.request(count)
        replies = open_tso(self.channels.stub(), iter((request,)), timeout=self.options.timeout_s)
        try:
            return to_timestamp(next(replies), count)
        except Exception as exc:
            self.channels.stream_failed(exc)
            raise
        finally:
            replies.cancel()


class AsyncClient(AsyncClientBase):
    async def get_ts(self, count: int = 1) -> Timestamp:
        stream = AsyncStream(await self.channels.stub(), timeout_s=self.options.timeout_s)
        try:
            await stream.send(self.channels.request(count))
            await stream.done_writing()
            return to_timestamp(await stream.recv(), count)
        except Exception as exc:
            self.channels.stream_failed(exc)
            raise
        finally:
            stream.close()


STRATEGY = Strategy("per-request", "a new stream per request (safe, slow)", ThreadClient, AsyncClient)
