"""Finding the PD leader, as PD's clients do: ask ``GetMembers`` of any endpoint
that answers, connect to the leader's first client URL, use the header's
cluster id; and the channel credentials (TLS, ``--cacert/--cert/--key`` as
``pd-tso-bench`` names them).

Both APIs share everything but the call itself: ``find_leader`` (threads) and
``find_leader_async`` (asyncio) ask the candidates in order and stop at the
first that names a leader.

When none does, the error says why each endpoint failed, in words: for TLS,
which side refused and why (``tls_diagnosis``). gRPC reports a server that
refused the handshake (no client certificate, one from another CA, a plaintext
client) only as "Socket closed", so for that case a plain TLS handshake with the
same files (Python's ``ssl``) finds out what the server does; only when the
message is shown, never in a re-check under load.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc

from .deadline import DeadlineExceeded

SCHEMES = ("http://", "https://")
PROBE_OPTIONS = [("grpc.max_receive_message_length", 4 << 20)]
PROBE_TIMEOUT_S = 2.0  # the TLS handshake that finds out why a server closed the connection
_CAUSE = re.compile(r"^[A-Z_]+: (ipv[46]:\S+?: )?")
_CLOSED = ("socket closed", "connection reset", "broken pipe", "end of file", "eof")


class NoLeader(ConnectionError):
    """No endpoint named a leader; the message says what each one answered."""


@dataclass(frozen=True)
class Leader:
    address: str  # HOST:PORT of the leader's first client URL
    cluster_id: int
    members: tuple[str, ...]  # every member's first client URL, HOST:PORT


def endpoints(target: str) -> list[str]:
    """``--target``: a comma-separated list of HOST:PORT (a PD-style URL is accepted too)."""
    found = [strip_scheme(e.strip()) for e in target.split(",") if e.strip()]
    return list(dict.fromkeys(found))


def strip_scheme(url: str) -> str:
    for scheme in SCHEMES:
        if url.startswith(scheme):
            return url[len(scheme) :].rstrip("/")
    return url.rstrip("/")


class TlsCredentials(grpc.ChannelCredentials):
    """gRPC's TLS credentials, remembering the PEM files they came from, so that an
    error can say which file a refusal is about."""

    def __init__(self, cacert: str | None, cert: str | None, key: str | None) -> None:
        def read(path: str | None) -> bytes | None:
            return Path(path).read_bytes() if path else None

        super().__init__(grpc.ssl_channel_credentials(read(cacert), read(key), read(cert))._credentials)
        self.cacert, self.cert, self.key = cacert, cert, key


def channel_credentials(cacert: str | None, cert: str | None, key: str | None) -> TlsCredentials | None:
    """TLS credentials from PEM files (None: plaintext): ``cacert`` verifies the server,
    ``cert`` + ``key`` identify the client (mutual TLS). Read here, in the process that makes channels."""
    if not (cacert or cert or key):
        return None
    return TlsCredentials(cacert, cert, key)


def make_channel(api: Any, address: str, credentials: grpc.ChannelCredentials | None, options: list) -> Any:
    """A channel of ``api`` (``grpc`` or ``grpc.aio``), TLS when there are credentials."""
    if credentials is None:
        return api.insecure_channel(address, options)
    return api.secure_channel(address, credentials, options)


def members_request() -> pdpb_pb2.GetMembersRequest:
    return pdpb_pb2.GetMembersRequest(header=pdpb_pb2.RequestHeader())


def _leader_of(reply: pdpb_pb2.GetMembersResponse) -> Leader | None:
    urls = reply.leader.client_urls
    if not reply.HasField("leader") or not urls:
        return None  # an election in progress
    members = tuple(strip_scheme(m.client_urls[0]) for m in reply.members if m.client_urls)
    return Leader(strip_scheme(urls[0]), reply.header.cluster_id, members)


def endpoint_failure(
    endpoint: str, exc: BaseException, credentials: grpc.ChannelCredentials | None, diagnose: bool = True
) -> str:
    """One endpoint's failed GetMembers in words: gRPC's cause and (``diagnose``) for TLS, who refused and why."""
    if not isinstance(exc, grpc.RpcError):
        return f"{endpoint}: {exc}"
    details = exc.details() or ""
    # "failed to connect to all addresses; last error: UNKNOWN: ipv4:HOST:PORT: <the cause>": keep the cause
    details = _CAUSE.sub("", details.rsplit("last error:", 1)[-1].strip())
    text = f"{endpoint}: {exc.code().name} {details}"
    why = tls_diagnosis(endpoint, details, credentials) if diagnose else None
    return f"{text} ({why})" if why else text


def tls_diagnosis(endpoint: str, details: str, credentials: grpc.ChannelCredentials | None) -> str | None:
    """Which side refused the connection and why, when TLS (or its absence) is the cause; None otherwise."""
    files = credentials if isinstance(credentials, TlsCredentials) else None
    lowered = details.lower()
    if "certificate_verify_failed" in lowered or "peer name" in lowered:
        return _server_certificate_refused(lowered, files)
    if "wrong_version_number" in lowered:
        return "the server does not speak TLS (a plaintext server?): drop --cacert/--cert/--key"
    if not any(word in lowered for word in _CLOSED):
        return "check --cacert/--cert/--key" if files and "handshake" in lowered else None
    # The server closed the connection: gRPC does not say why, a TLS handshake of our own does.
    try:
        accepted = _tls_handshake(endpoint, files)
    except ssl.SSLError as exc:
        # A plaintext client, and the server does not speak TLS either: not a TLS matter.
        return None if files is None else _client_refused(files, (exc.reason or str(exc)).upper())
    except OSError:
        return None  # gone, refused or silent: not a TLS matter
    if files is None:
        return "the server speaks TLS and closed this plaintext connection: give --cacert (--cert/--key for mutual TLS)"
    return None if accepted else _client_refused(files, "")


def _server_certificate_refused(lowered: str, files: TlsCredentials | None) -> str:
    refused = "this client refused the server's certificate"
    if "expired" in lowered:
        return f"{refused}: it has expired (the server must renew it; --cacert is not the cause)"
    if "not yet valid" in lowered:
        return f"{refused}: it is not valid yet (are the clocks right?)"
    if "peer name" in lowered:
        return f"{refused}: it does not name the address dialled (its subject alternative names)"
    cacert = f" {files.cacert}" if files and files.cacert else " (gRPC's default roots)"
    return f"{refused}: not signed by --cacert{cacert} (unknown CA)"


def _client_refused(files: TlsCredentials, alert: str) -> str:
    """The server refused this client's TLS: ``alert`` is the TLS alert it sent, upper case
    ("" when it closed without one, as gRPC's servers do)."""
    if files.cert is None:
        if alert and "CERTIFICATE_REQUIRED" not in alert and "HANDSHAKE_FAILURE" not in alert:
            return f"the server refused the TLS handshake: {alert}"
        return "the server refused this client: it requires a client certificate (mutual TLS): give --cert and --key"
    refused = f"the server refused the client certificate --cert {files.cert}"
    if "CERTIFICATE_EXPIRED" in alert:
        return f"{refused}: it has expired"
    if not alert or "UNKNOWN_CA" in alert or "BAD_CERTIFICATE" in alert:
        return f"{refused}: not signed by a CA the server trusts (unknown CA){'' if alert else ', or expired'}"
    return f"{refused}: {alert}"


def _tls_handshake(endpoint: str, files: TlsCredentials | None) -> bool:
    """A TLS handshake with ``endpoint`` (this client's certificate, if any), then a read:
    True when the server accepts (it sends its HTTP/2 settings), False when it closes.
    Raises ``ssl.SSLError`` for an alert, ``OSError`` when the server cannot be reached."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server's certificate is not what this probe asks about
    context.set_alpn_protocols(["h2"])
    if files is not None and files.cert and files.key:
        context.load_cert_chain(files.cert, files.key)
    host, _, port = endpoint.rpartition(":")
    host = host.strip("[]")
    with (
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        try:
            return bool(tls.recv(1))
        except TimeoutError:
            return True  # no alert, no close: accepted


class _Search:
    """The candidates' answers so far, for the error when none names a leader."""

    def __init__(self, credentials: grpc.ChannelCredentials | None, diagnose: bool) -> None:
        self.credentials = credentials
        self.diagnose = diagnose
        self.failures: list[tuple[str, BaseException | None]] = []  # None: answered without a leader

    def failed(self, endpoint: str, exc: BaseException) -> None:
        self.failures.append((endpoint, exc))

    def no_leader(self, endpoint: str) -> None:
        self.failures.append((endpoint, None))

    def error(self) -> NoLeader:
        """The error, each endpoint's failure in words (``diagnose``: with a TLS probe where that says more)."""
        answers = []
        for endpoint, exc in self.failures:
            if exc is None:
                answers.append(f"{endpoint}: answered without a leader (an election in progress?)")
            else:
                answers.append(endpoint_failure(endpoint, exc, self.credentials, self.diagnose))
        return NoLeader("no endpoint named a PD leader: " + "; ".join(answers))


def find_leader(
    candidates: list[str], credentials: grpc.ChannelCredentials | None, timeout_s: float, diagnose: bool = True
) -> Leader:
    """Ask each candidate in turn (thread API); raise NoLeader when none names a leader
    (``diagnose``: its message says why each failed, probing TLS where gRPC does not say)."""
    search = _Search(credentials, diagnose)
    for endpoint in candidates:
        try:
            with make_channel(grpc, endpoint, credentials, PROBE_OPTIONS) as channel:
                reply = pdpb_pb2_grpc.PDStub(channel).GetMembers(members_request(), timeout=timeout_s)
        except grpc.RpcError as exc:
            search.failed(endpoint, exc)
            continue
        if (leader := _leader_of(reply)) is not None:
            return leader
        search.no_leader(endpoint)
    raise search.error()


async def find_leader_async(
    candidates: list[str], credentials: grpc.ChannelCredentials | None, timeout_s: float, diagnose: bool = True
) -> Leader:
    """``find_leader`` for the asyncio API."""
    search = _Search(credentials, diagnose)
    for endpoint in candidates:
        channel = make_channel(grpc.aio, endpoint, credentials, PROBE_OPTIONS)
        try:
            reply = await pdpb_pb2_grpc.PDStub(channel).GetMembers(members_request(), timeout=timeout_s)
        except grpc.RpcError as exc:
            search.failed(endpoint, exc)
            continue
        finally:
            await channel.close()
        if (leader := _leader_of(reply)) is not None:
            return leader
        search.no_leader(endpoint)
    raise await asyncio.to_thread(search.error) if diagnose else search.error()


def leader_may_have_moved(exc: BaseException) -> bool:
    """What PD's client re-checks the leader after: UNAVAILABLE (a follower's "not leader",
    a dropped connection, a refused one), a stream the server ended, or a silent leader."""
    if isinstance(exc, grpc.RpcError):
        return exc.code() == grpc.StatusCode.UNAVAILABLE or leader_silent(exc)
    return isinstance(exc, ConnectionError) or leader_silent(exc)


def leader_silent(exc: BaseException) -> bool:
    """A missed deadline: the leader may be frozen (paused, stuck) while the others elect a new
    one, so the re-check asks the other members first."""
    if isinstance(exc, grpc.RpcError):
        return exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    return isinstance(exc, DeadlineExceeded)
