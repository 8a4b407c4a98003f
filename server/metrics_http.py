"""The /metrics endpoint, behind the same door as the gRPC port.

One thread runs an asyncio loop that serves every connection (no thread per connection: 300
half-sent requests cost 300 coroutines, not 300 threads), with a listen backlog of
``BACKLOG``, a deadline to send the request (``READ_TIMEOUT_S``: the TLS handshake included),
and at most ``MAX_CONNECTIONS`` open at once (the next ones are closed at once). With TLS
on the gRPC port it serves TLS with the same certificate and key, and demands a client
certificate signed by the same CA when gRPC does.

``tsobench serve`` and ``tsobench run --metrics-port`` both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable

from tsobench import pd_metrics

BACKLOG = 128
READ_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 512
MAX_REQUEST_BYTES = 8192
CONTENT_TYPE = pd_metrics.CONTENT_TYPE.encode()


def tls_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    """The gRPC port's certificates for HTTPS (a client certificate required where gRPC requires one)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class MetricsHTTP:
    """Serve ``render()`` on GET /metrics (and /) until ``close()``."""

    def __init__(
        self,
        render: Callable[[], bytes],
        host: str,
        port: int,
        tls: ssl.SSLContext | None = None,
        *,
        read_timeout_s: float = READ_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.render, self.host, self.tls = render, host, tls
        self.port = port
        self.read_timeout_s, self.max_connections = read_timeout_s, max_connections
        self.open = 0  # connections open now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/metrics"

    def start(self) -> MetricsHTTP:
        """Bind (OSError if it cannot) and serve from a daemon thread."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True, name="metrics-http")
        self._thread.start()
        ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(
                    self._connection,
                    self.host,
                    self.port,
                    ssl=self.tls,
                    backlog=BACKLOG,
                    ssl_handshake_timeout=self.read_timeout_s if self.tls else None,
                    limit=MAX_REQUEST_BYTES,
                )
            )
        except BaseException as exc:
            self._error = exc
            ready.set()
            loop.close()
            return
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._server.wait_closed())
            loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open >= self.max_connections:
            writer.transport.abort()
            return
        self.open += 1
        try:
            await asyncio.wait_for(self._answer(reader, writer), self.read_timeout_s)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, _, rest = head.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if method not in (b"GET", b"HEAD"):
            status, body, kind = b"405 Method Not Allowed", b"GET /metrics\n", b"text/plain"
        elif path in (b"/metrics", b"/"):
            status, body, kind = b"200 OK", self.render(), CONTENT_TYPE
        else:
            status, body, kind = b"404 Not Found", b"GET /metrics\n", b"text/plain"
        writer.write(
            b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (status, kind, len(body))
        )
        if method != b"HEAD":
            writer.write(body)
        await writer.drain()

    def close(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
