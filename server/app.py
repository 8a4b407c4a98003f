"""Wires oracle, service, health, reflection and metrics into a running server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc

from .config import ServerConfig
from .metrics import ServerMetrics
from .oracle import UPDATE_INTERVAL_S, TimestampOracle
from .service import PDService
from .window import WindowFile

SERVICE_NAME = pdpb_pb2.DESCRIPTOR.services_by_name["PD"].full_name
# so_reuseport=0: a second server on a busy port fails loudly instead of
# silently sharing (and stealing) the first one's traffic.
SERVER_OPTIONS = [("grpc.so_reuseport", 0)]


class ServerError(RuntimeError):
    """A server could not start; the message says why, for humans."""


class TsoServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        self.oracle = TimestampOracle(WindowFile(config.data_dir), window_ms=config.window_ms)
        self.port = 0
        self.metrics_port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._http = None
        self._ticker: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    async def start(self) -> None:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        try:
            self.port = server.add_insecure_port(f"{self.config.host}:{self.config.port}")
        except RuntimeError as exc:
            self.port = 0
            cause = exc
        else:
            cause = None
        if not self.port:
            raise ServerError(f"cannot listen on {self.config.host}:{self.config.port} (in use?)") from cause
        pdpb_pb2_grpc.add_PDServicer_to_server(PDService(self.config, self.oracle, self.metrics, self.address), server)
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        await server.start()
        for name in ("", SERVICE_NAME):
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.config.metrics_port is not None:
            self._http, _ = start_http_server(
                self.config.metrics_port, addr=self.config.host, registry=self.metrics.registry
            )
            self.metrics_port = self._http.server_port
        self._server = server
        self._ticker = asyncio.create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        """PD's update loop. A failed window save must not stop it for good: the
        oracle did not move (it saves first), so say so and try again next tick."""
        failing = False
        while True:
            await asyncio.sleep(UPDATE_INTERVAL_S)
            try:
                self.oracle.tick()
            except OSError as exc:
                if not failing:
                    print(f"warning: cannot save the TSO window, timestamps are held back: {exc}", file=sys.stderr)
                failing = True
            else:
                failing = False

    async def stop(self, grace_s: float = 1.0) -> None:
        if self._ticker:
            self._ticker.cancel()
        if self._server:
            await self._server.stop(grace_s)
        if self._http:
            self._http.shutdown()
            self._http.server_close()
        self.oracle.save()

    async def wait(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    Path(tmp).write_text(text)
    os.replace(tmp, path)


async def serve(
    config: ServerConfig,
    port_file: str | None = None,
    metrics_port_file: str | None = None,
    announce=print,
) -> None:
    """Run until SIGTERM/SIGINT, then stop cleanly and save the window."""
    server = TsoServer(config)
    await server.start()
    # Handlers first, port file last: the port file says "ready", so a SIGTERM
    # sent as soon as it appears must already stop cleanly, and the metrics
    # port must already be readable.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if metrics_port_file and server.metrics_port is not None:
        _write_atomically(metrics_port_file, f"{server.metrics_port}\n")
    if port_file:
        _write_atomically(port_file, f"{server.port}\n")
    announce(f"listening on {server.address}", flush=True)
    if server.metrics_port is not None:
        announce(f"metrics on http://{config.host}:{server.metrics_port}/metrics", flush=True)
    waiter = asyncio.create_task(server.wait())
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait({waiter, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    await server.stop()
    announce("stopped", flush=True)
