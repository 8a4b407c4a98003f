"""Shared server fixtures: an in-process TSO server and sync PD stubs to reach it."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from collections.abc import Callable, Iterator

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tsobench.protos import pdpb_pb2_grpc
from tsobench.server import ChildServer, InProcessServer, ServerConfig
from tsobench.strategies import registry

# The built-in strategies a test may hold to every safety promise (unsafe-shared breaks them on purpose; null
# is a baseline that talks to no server): the one list the tests parametrize over.
SAFE_STRATEGIES = [s.name for s in registry.BUILTIN if s.safe and not s.baseline]


@pytest.fixture(params=SAFE_STRATEGIES)
def safe_strategy(request: pytest.FixtureRequest) -> str:
    """Each safe built-in strategy's name in turn: a test taking it runs once per strategy."""
    return request.param


@pytest.fixture
def safe_strategies() -> list[str]:
    """Every safe built-in strategy's name, for a test that loops over them in one run."""
    return list(SAFE_STRATEGIES)


TEST_TIMEOUT_S = 120.0


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Each test at most TEST_TIMEOUT_S where pytest-timeout is installed (the test extra), unless
    --timeout or PYTEST_TIMEOUT says otherwise; a plain install runs without it and without a warning."""
    given = config.getoption("timeout", None) is not None or os.environ.get("PYTEST_TIMEOUT")
    if config.pluginmanager.hasplugin("timeout") and not given:
        config.option.timeout = TEST_TIMEOUT_S


@pytest.fixture
def start_inprocess_server(tmp_path) -> Iterator[Callable[..., InProcessServer]]:
    """A factory: ``start_inprocess_server(delay_ms=5)`` starts a server (own tmp data dir) stopped at teardown."""
    started: list[InProcessServer] = []

    def start(**overrides) -> InProcessServer:
        options = {"data_dir": str(tmp_path / f"data-{len(started)}"), "metrics_port": None, **overrides}
        server = InProcessServer(ServerConfig(**options)).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def inprocess_server(start_inprocess_server) -> InProcessServer:
    """A running in-process server on 127.0.0.1, an ephemeral port and a tmp data dir."""
    return start_inprocess_server()


@pytest.fixture
def open_stub() -> Iterator[Callable[[str], pdpb_pb2_grpc.PDStub]]:
    """``open_stub(address)``: a sync PD stub on its own channel, closed at teardown."""
    channels: list[grpc.Channel] = []

    def open_(address: str) -> pdpb_pb2_grpc.PDStub:
        channel = grpc.insecure_channel(address)
        channels.append(channel)
        return pdpb_pb2_grpc.PDStub(channel)

    yield open_
    for channel in channels:
        channel.close()


@pytest.fixture
def pd_stub(inprocess_server, open_stub) -> pdpb_pb2_grpc.PDStub:
    """A sync PD stub connected to ``inprocess_server``."""
    return open_stub(inprocess_server.address)


@pytest.fixture(scope="module")
def child_server(tmp_path_factory) -> Iterator[ChildServer]:
    """A TSO server in its own process (as the harness runs it), shared by a test module."""
    config = ServerConfig(data_dir=str(tmp_path_factory.mktemp("child-server")))
    with ChildServer(config) as server:
        yield server


@pytest.fixture
def unused_address() -> str:
    """HOST:PORT where nothing listens: a port the OS gave out and took back."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(scope="session")
def self_signed_certificate() -> Callable[[ec.EllipticCurvePrivateKey], x509.Certificate]:
    """``self_signed_certificate(key)``: see ``_self_signed``."""
    return _self_signed


def _self_signed(key: ec.EllipticCurvePrivateKey, name: str = "tsobench-server") -> x509.Certificate:
    """A day-long certificate for 127.0.0.1, its own CA (serves as server, client and CA certificate in tests)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
