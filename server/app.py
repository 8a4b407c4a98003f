"""Wires oracle, service, health, reflection and metrics into a running server."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import signal
import socket
import ssl
import sys
import threading
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from tsobench.files import write_atomically
from tsobench.loops import select_event_loop
from tsobench.protos import admin_pb2_grpc, pdpb_pb2, pdpb_pb2_grpc

from . import admin
from .config import ServerConfig
from .disruptions import Disruptions
from .leadership import Member, Solo
from .metrics import ServerMetrics
from .metrics_http import MetricsHTTP, tls_context
from .oracle import UPDATE_INTERVAL_S
from .service import PDService
from .window import DataDirLock

SERVICE_NAME = pdpb_pb2.DESCRIPTOR.services_by_name["PD"].full_name
IDLE_CONNECTION_MS = 60_000  # a connection with no RPC for a minute is closed (clients reconnect on their next call)
HANDSHAKE_TIMEOUT_MS = 10_000  # a connection that never speaks HTTP/2 is dropped after 10 s
CLIENT_PING_MS = 5_000  # the most often a client may ping: PD's clients ping every 10 s (3 s timeout)
SERVER_OPTIONS = [
    # A second server on a busy port fails loudly instead of silently sharing (and stealing) its traffic.
    ("grpc.so_reuseport", 0),
    # Idle or silent connections must not hold descriptors that new clients need.
    ("grpc.max_connection_idle_ms", IDLE_CONNECTION_MS),
    ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
    # Client keepalive (how a client gives up a frozen server's stream) is welcome, with or without
    # calls in flight, without a GOAWAY "too_many_pings".
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", CLIENT_PING_MS),
]


def new_event_loop(config: ServerConfig) -> asyncio.AbstractEventLoop:
    """The server's event loop: with a round trip to emulate, one on select() (``tsobench.loops``). On epoll, with
    several streams waiting, their replies left up to a millisecond late (a pool of 8 streams at
    --rtt-ms 1 got 80 % of the 8-per-round-trip it got on select)."""
    if config.rtt_ms or config.rtt_jitter_ms:
        return select_event_loop()
    return asyncio.new_event_loop()


class ServerError(RuntimeError):
    """A server could not start; the message says why, for humans."""


class TsoServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics(config.pd_version, config.cluster_id)
        self._lock = DataDirLock(config.data_dir).acquire(shared=bool(config.member_addresses))
        try:
            self.role = self._role(config)
        except BaseException:
            self._lock.release()
            raise
        self.port = 0
        self.metrics_port: int | None = None
        # the admin service's token (None: no admin service): read from its file, else made here and printed
        self.admin_token: str | None = None
        if config.admin:
            try:
                self.admin_token = (
                    admin.read_token(config.admin_token_file) if config.admin_token_file else admin.new_token()
                )
            except (OSError, ValueError) as exc:
                self._lock.release()
                raise ServerError(f"--admin-token-file: {exc}") from None
        self._server: grpc.aio.Server | None = None
        self._http: MetricsHTTP | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[None]] = set()

    @staticmethod
    def _role(config: ServerConfig) -> Solo | Member:
        if config.member_addresses:
            return Member(
                config.data_dir,
                config.member_index,
                len(config.member_addresses),
                config.election_timeout_s,
                config.window_ms,
                config.accept_future_window,
            )
        return Solo(config.data_dir, config.window_ms, config.accept_future_window)

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def client_urls(self) -> list[str]:
        """Every member's client URL as PD reports them (``http://`` or ``https://``)."""
        return [f"{self.config.scheme}://{a}" for a in self.config.member_addresses or [self.address]]

    async def start(self) -> None:
        checks = [admin.TokenCheck(self.admin_token)] if self.admin_token is not None else []
        server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=checks)
        address = f"{self.config.host}:{self.config.port}"
        credentials = server_credentials(self.config)  # first: a bad certificate or key is named, not a bind error
        try:
            if credentials is None:
                self.port = server.add_insecure_port(address)
            else:
                self.port = server.add_secure_port(address, credentials)
        except RuntimeError as exc:
            self.port = 0
            cause: RuntimeError | None = exc
        else:
            cause = None
        if not self.port:
            reason = bind_failure(self.config.host, self.config.port)
            raise ServerError(f"cannot listen on {self.config.host}:{self.config.port}: {reason}") from cause
        disruptions = Disruptions()
        pdpb_pb2_grpc.add_PDServicer_to_server(
            PDService(self.config, self.role, self.metrics, self.client_urls, disruptions), server
        )
        services = [SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        if self.config.admin:
            admin_pb2_grpc.add_AdminServicer_to_server(admin.AdminService(disruptions, self.metrics, self.role), server)
            services.append(admin.SERVICE_NAME)
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection(services, server)
        # The first tick before the first request: a lone server's window saves off the loop from here
        # on, and a cluster's first member takes the lease it was handed before it says "listening".
        await self.metrics.tick(self.role)
        await server.start()
        for name in ("", SERVICE_NAME):
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        disruptions.on_stall = lambda stalled: self._health(health, stalled)
        c = self.config
        if c.metrics_port is not None:  # behind the gRPC port's door: its TLS, its client CA
            tls = tls_context(c.tls_cert, c.tls_key, c.tls_client_ca) if c.tls_cert and c.tls_key else None
            self._http = MetricsHTTP(self.metrics.text, c.host, c.metrics_port, tls).start()
            self.metrics_port = self._http.port
        self._server = server
        self._ticker = asyncio.create_task(self._tick_forever())

    def _health(self, health: HealthServicer, stalled: bool) -> None:
        """NOT_SERVING while stalled: a balancer or a probe sees what the clients see."""
        status = health_pb2.HealthCheckResponse.NOT_SERVING if stalled else health_pb2.HealthCheckResponse.SERVING
        for name in ("", SERVICE_NAME):
            self._background.add(task := asyncio.ensure_future(health.set(name, status)))
            task.add_done_callback(self._background.discard)

    async def _tick_forever(self) -> None:
        """PD's update loop (the roles say what went wrong, and go on)."""
        while True:
            await asyncio.sleep(UPDATE_INTERVAL_S)
            await self.metrics.tick(self.role)  # the role's tick, and PD's events in it

    async def stop(self, grace_s: float = 1.0) -> None:
        if self._ticker:
            self._ticker.cancel()
        if self._server:
            await self._server.stop(grace_s)
        if self._http:
            self._http.close()
        await self.role.resign()
        self._lock.release()

    async def wait(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS from PEM files (None: plaintext); with a client CA, clients must show a certificate it signed."""
    if not config.tls_cert or not config.tls_key:
        return None
    check_tls(config)
    client_ca = Path(config.tls_client_ca).read_bytes() if config.tls_client_ca else None
    pair = (Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=client_ca is not None)


class _Encrypted(Exception):
    """The key wants a passphrase (asked instead of prompting on the terminal)."""


def _no_passphrase() -> bytes:
    raise _Encrypted


def check_tls(config: ServerConfig) -> None:
    """Raise ServerError naming the TLS file that is wrong, and how: gRPC takes any bytes and then
    only fails to bind. Read with Python's ssl, which parses PEM as gRPC does."""
    cert, key = config.tls_cert, config.tls_key
    if not cert or not key:
        return
    files = {"--tls-cert": cert, "--tls-key": key, "--tls-client-ca": config.tls_client_ca}
    for flag, path in files.items():
        if path is not None:
            try:
                Path(path).read_bytes()
            except OSError as exc:
                raise ServerError(f"{flag} {path}: {exc.strerror or exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for flag in ("--tls-cert", "--tls-client-ca"):
        if (path := files[flag]) is not None:
            try:
                context.load_verify_locations(cafile=path)
            except ssl.SSLError:
                raise ServerError(f"{flag} {path}: not a PEM certificate") from None
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except _Encrypted:
        raise ServerError(f"--tls-key {key}: the key is encrypted; gRPC needs it unencrypted") from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ServerError(f"--tls-key {key} is not the key of --tls-cert {cert}") from None
        raise ServerError(f"--tls-key {key}: not a PEM private key") from None


def describe_bind_error(code: int | None) -> str:
    """What a failed bind means, in words an operator can act on."""
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    if code == errno.EADDRINUSE:
        return "address in use (another server on this port?)"
    if code == errno.EADDRNOTAVAIL:
        return "address not available (not an address of this machine)"
    return os.strerror(code) if code else "unknown cause"


def bind_failure(host: str, port: int) -> str:
    """Why gRPC could not bind (its error does not say): try the same bind with a plain socket."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        return f"cannot resolve {host!r} ({exc.strerror})"
    with socket.socket(family, kind, proto) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            return describe_bind_error(exc.errno)
    return "unknown cause (a plain bind works)"


def raise_descriptor_limit() -> None:
    """One descriptor per client connection: take all the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):  # macOS refuses an unlimited hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _set_on_stdin_eof(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    """The parent holds the other end of our stdin; its exit, even by kill -9, closes it."""
    while os.read(sys.stdin.fileno(), 4096):
        pass
    with contextlib.suppress(RuntimeError):  # the loop already closed: we are exiting anyway
        loop.call_soon_threadsafe(event.set)


async def serve(
    config: ServerConfig,
    port_file: str | None = None,
    metrics_port_file: str | None = None,
    announce=print,
    exit_with_parent: bool = False,
) -> bool:
    """Run until SIGTERM/SIGINT (or, with ``exit_with_parent``, until stdin closes),
    then stop cleanly and save the window. True when it stopped because stdin closed."""
    raise_descriptor_limit()
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
        write_atomically(metrics_port_file, f"{server.metrics_port}\n")
    if port_file:
        write_atomically(port_file, f"{server.port}\n")
    announce(f"listening on {server.address}", flush=True)
    if server.metrics_port is not None:
        scheme = "https" if config.tls_cert else "http"
        announce(f"metrics on {scheme}://{config.host}:{server.metrics_port}/metrics", flush=True)
    if server.admin_token is not None and not config.admin_token_file:
        announce(f"admin token: {server.admin_token} (gRPC metadata {admin.TOKEN_KEY} on every admin call)", flush=True)
    if (exposed := exposure(config, server.metrics_port)) is not None:
        print(f"warning: {exposed}", file=sys.stderr, flush=True)
    orphaned = asyncio.Event()
    if exit_with_parent:
        threading.Thread(target=_set_on_stdin_eof, args=(loop, orphaned), daemon=True, name="parent-watch").start()
    waiters = {asyncio.create_task(w) for w in (server.wait(), stop.wait(), orphaned.wait())}
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    await server.stop()
    announce("stopped" + (" (stdin closed: the parent is gone)" if orphaned.is_set() else ""), flush=True)
    return orphaned.is_set()


LOOPBACK = ("127.", "::1", "localhost")


def exposure(config: ServerConfig, metrics_port: int | None = None) -> str | None:
    """What a server bound beyond loopback without TLS shows to anyone who can reach the host (None:
    loopback, or TLS)."""
    host = config.host.strip("[]")
    if host.startswith(LOOPBACK) or host == "localhost" or config.tls_cert:
        return None
    what = ["the Tso service (timestamps for anyone)", "health", "reflection"]
    if config.admin:
        what.append("the admin (fault) service, behind its token only, sent in the clear")
    if metrics_port is not None or config.metrics_port is not None:
        what.append(f"metrics on port {metrics_port}" if metrics_port else "metrics (Prometheus)")
    return f"listening on {config.host} without TLS: {', '.join(what)} reachable by anyone who can reach this host"
