"""Finding the PD leader, as PD's clients do: ask ``GetMembers`` of any endpoint
that answers, connect to the leader's first client URL, use the header's
cluster id; and the channel credentials (TLS, ``--cacert/--cert/--key`` as
``pd-tso-bench`` names them).

Both APIs share everything but the call itself: ``find_leader`` (threads) and
``find_leader_async`` (asyncio) ask the candidates in order and stop at the
first that names a leader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc

SCHEMES = ("http://", "https://")
PROBE_OPTIONS = [("grpc.max_receive_message_length", 4 << 20)]
_CAUSE = re.compile(r"^[A-Z_]+: (ipv[46]:\S+?: )?")


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


def channel_credentials(cacert: str | None, cert: str | None, key: str | None) -> grpc.ChannelCredentials | None:
    """TLS credentials from PEM files (None: plaintext): ``cacert`` verifies the server,
    ``cert`` + ``key`` identify the client (mutual TLS). Read here, in the process that makes channels."""
    if not (cacert or cert or key):
        return None

    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return grpc.ssl_channel_credentials(read(cacert), read(key), read(cert))


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


def describe(endpoint: str, exc: BaseException, tls: bool) -> str:
    """One endpoint's failure in words, with a hint where TLS is the likely cause."""
    if not isinstance(exc, grpc.RpcError):
        return f"{endpoint}: {exc}"
    details = exc.details() or ""
    # "failed to connect to all addresses; last error: UNKNOWN: ipv4:HOST:PORT: <the cause>": keep the cause
    details = _CAUSE.sub("", details.rsplit("last error:", 1)[-1].strip())
    text = f"{endpoint}: {exc.code().name} {details}"
    if "CERTIFICATE_VERIFY_FAILED" in details:
        return f"{text} (the server's certificate is not signed by --cacert)"
    if "handshake" in details.lower() or "ssl" in details.lower():
        hint = "check --cacert/--cert/--key" if tls else "does the server want TLS? give --cacert"
        return f"{text} ({hint})"
    return text


class _Search:
    """The candidates' answers so far, for the error when none names a leader."""

    def __init__(self, tls: bool) -> None:
        self.tls = tls
        self.answers: list[str] = []

    def failed(self, endpoint: str, exc: BaseException) -> None:
        self.answers.append(describe(endpoint, exc, self.tls))

    def no_leader(self, endpoint: str) -> None:
        self.answers.append(f"{endpoint}: answered without a leader (an election in progress?)")

    def error(self) -> NoLeader:
        return NoLeader("no endpoint named a PD leader: " + "; ".join(self.answers))


def find_leader(candidates: list[str], credentials: grpc.ChannelCredentials | None, timeout_s: float) -> Leader:
    """Ask each candidate in turn (thread API); raise NoLeader when none names a leader."""
    search = _Search(credentials is not None)
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
    candidates: list[str], credentials: grpc.ChannelCredentials | None, timeout_s: float
) -> Leader:
    """``find_leader`` for the asyncio API."""
    search = _Search(credentials is not None)
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
    raise search.error()


def leader_may_have_moved(exc: BaseException) -> bool:
    """What PD's client re-checks the leader after: UNAVAILABLE (a follower's "not leader",
    a dropped connection, a refused one) or a stream the server ended."""
    if isinstance(exc, grpc.RpcError):
        return exc.code() == grpc.StatusCode.UNAVAILABLE
    return isinstance(exc, ConnectionError)
