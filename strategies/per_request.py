"""per-request: a new Tso stream for every request. Safe by construction; pays
a stream setup (and, with sync grpcio, a request-consumer thread) each time.
A failure that says the leader may have moved sends the next request to the new one.

After a failure the next stream waits out a backoff (``backoff``), as the
other strategies' reconnects do: without it, callers retry a dead server in a
tight loop that burns the CPU the restarting server needs."""

from __future__ import annotations

from .backoff import Backoff, CountsReconnects
from .base import Bound, ClientOptions, Strategy, Timestamp
from .stream import AsyncClientBase, AsyncStream, ThreadClientBase, open_tso, to_timestamp


class ThreadClient(CountsReconnects, ThreadClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self.backoff = Backoff()

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


class AsyncClient(CountsReconnects, AsyncClientBase):
    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self.backoff = Backoff()

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


def _bound(options: ClientOptions, callers: int) -> Bound:
    return Bound(callers, "requests", "a stream per request: every caller can have one in flight")


STRATEGY = Strategy(
    "per-request",
    "a new stream per request (safe, slow)",
    ThreadClient,
    AsyncClient,
    bound=_bound,
    recovery={
        "abort": "its streams live for one request, so an abort finds hardly any to break",
        "kill": "each request opens its own stream, so the first attempt after the backoff is answered",
    },
    fewest_failures="as its requests do not share a stream that could break",
)
