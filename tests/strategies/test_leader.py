"""Finding the leader, and TLS between the strategies and the server, with certificates made here (``cryptography``)."""

import asyncio
import datetime
import ipaddress
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tsobench import strategies
from tsobench.server import ChildServer, ServerConfig
from tsobench.strategies.leader import NoLeader, channel_credentials, find_leader


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(folder: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{stem}-key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def make_pki(folder: Path, ca_name: str = "test-ca") -> Path:
    """A CA, a server certificate for 127.0.0.1/localhost, an expired one (``expired``) and a
    client certificate, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder, "ca", ca_key, ca)
    names = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    day = datetime.timedelta(days=1)
    for stem, start, end in (("server", -day, day), ("client", -day, day), ("expired", -3 * day, -day)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"tsobench-{stem}"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + start)
            .not_valid_after(now + end)
            .add_extension(names, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write(folder, stem, key, cert)
    return folder


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> Path:
    return make_pki(tmp_path_factory.mktemp("other-pki"), "another-ca")


@pytest.fixture(scope="module")
def tls_server(pki, tmp_path_factory):
    """Mutual TLS: clients must show a certificate the CA signed."""
    config = ServerConfig(
        data_dir=str(tmp_path_factory.mktemp("tls-data")),
        tls_cert=str(pki / "server.pem"),
        tls_key=str(pki / "server-key.pem"),
        tls_client_ca=str(pki / "ca.pem"),
    )
    with ChildServer(config) as server:
        yield server


def _options(address: str, pki: Path, **overrides) -> strategies.ClientOptions:
    files = {"cacert": str(pki / "ca.pem"), "cert": str(pki / "client.pem"), "key": str(pki / "client-key.pem")}
    return strategies.ClientOptions(address, timeout_s=3, **{**files, **overrides})


@pytest.mark.parametrize("name", ["locked", "dispatcher"])
def test_a_tls_round_trip_on_both_apis(tls_server, pki, name):
    client = strategies.get(name).thread(_options(tls_server.address, pki))
    client.open()
    try:
        assert client.channels.leader == tls_server.address  # from the https:// client URL
        first, second = client.get_ts(), client.get_ts()
    finally:
        client.close()
    assert second.last > first.last

    async def round_trip() -> strategies.Timestamp:
        aclient = strategies.get(name).asyncio(_options(tls_server.address, pki))
        await aclient.open()
        try:
            return await aclient.get_ts()
        finally:
            await aclient.close()

    assert asyncio.run(round_trip()).last > second.last


def test_mutual_tls_refuses_a_client_without_a_certificate(tls_server, pki):
    client = strategies.get("locked").thread(_options(tls_server.address, pki, cert=None, key=None))
    with pytest.raises(ConnectionError, match="no endpoint named a PD leader") as failure:
        client.open()
    assert "the server refused this client: it requires a client certificate" in str(failure.value)


@pytest.fixture(scope="module")
def expired_server(pki, tmp_path_factory):
    """TLS with a server certificate that expired yesterday."""
    config = ServerConfig(
        data_dir=str(tmp_path_factory.mktemp("expired-data")),
        tls_cert=str(pki / "expired.pem"),
        tls_key=str(pki / "expired-key.pem"),
    )
    with ChildServer(config) as server:
        yield server


def _refusal(address: str, files: dict[str, Path | None]) -> str:
    paths = {k: str(v) if v else None for k, v in files.items()}
    credentials = channel_credentials(paths.get("cacert"), paths.get("cert"), paths.get("key"))
    with pytest.raises(NoLeader) as failure:
        find_leader([address], credentials, 3)
    return str(failure.value)


def test_each_tls_refusal_names_its_side_and_its_cause(tls_server, expired_server, child_server, pki, other_ca):
    ca, cert, key = pki / "ca.pem", pki / "client.pem", pki / "client-key.pem"
    missing = _refusal(tls_server.address, {"cacert": ca})
    assert "the server refused this client: it requires a client certificate (mutual TLS)" in missing
    stranger = _refusal(
        tls_server.address, {"cacert": ca, "cert": other_ca / "client.pem", "key": other_ca / "client-key.pem"}
    )
    assert f"the server refused the client certificate --cert {other_ca / 'client.pem'}" in stranger
    assert "unknown CA" in stranger
    unknown = _refusal(tls_server.address, {"cacert": other_ca / "ca.pem", "cert": cert, "key": key})
    assert f"this client refused the server's certificate: not signed by --cacert {other_ca / 'ca.pem'}" in unknown
    expired = _refusal(expired_server.address, {"cacert": ca})
    assert "this client refused the server's certificate: it has expired" in expired
    assert "--cacert is not the cause" in expired
    plaintext = _refusal(tls_server.address, {})
    assert "the server speaks TLS and closed this plaintext connection: give --cacert" in plaintext
    assert "the server does not speak TLS" in _refusal(child_server.address, {"cacert": ca})
    for message in (missing, stranger, unknown, expired, plaintext):
        assert message.count("refused") + message.count("speaks TLS") == 1, message


def test_the_asyncio_api_explains_a_refusal_too(tls_server, pki):
    async def refused() -> str:
        client = strategies.get("dispatcher").asyncio(_options(tls_server.address, pki, cert=None, key=None))
        with pytest.raises(NoLeader) as failure:
            await client.open()
        return str(failure.value)

    assert "requires a client certificate" in asyncio.run(refused())


def tsobench(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-P", "-m", "tsobench.bench", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_wrong_ca_exits_1_before_any_load_with_a_clear_message(tls_server, pki, other_ca, tmp_path):
    out = tsobench(
        "run",
        "-s",
        "dispatcher",
        "--target",
        tls_server.address,
        "--cacert",
        str(other_ca / "ca.pem"),
        "--cert",
        str(pki / "client.pem"),
        "--key",
        str(pki / "client-key.pem"),
        "--requests",
        "10",
        "-o",
        str(tmp_path / "r.json"),
    )
    assert out.returncode == 1, out.stderr
    message = " ".join(out.stderr.split())  # rich wraps long lines
    assert "could not start: no endpoint named a PD leader" in message
    assert "not signed by --cacert" in message
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "r.json").exists()


def test_an_endpoint_list_nobody_answers_on_exits_1(tmp_path):
    with socket.socket() as a, socket.socket() as b:  # bound, never listening: connections are refused
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        target = ",".join(f"127.0.0.1:{s.getsockname()[1]}" for s in (a, b))
        out = tsobench("run", "-s", "locked", "--target", target, "--requests", "10", "--timeout", "2")
    assert out.returncode == 1, out.stderr
    message = " ".join(out.stderr.split())
    assert "could not start: no endpoint named a PD leader" in message and "Connection refused" in message
    assert "Traceback" not in out.stderr


def test_tls_options_are_recorded_as_paths(tls_server, pki, tmp_path):
    out = tsobench(
        "run",
        "-s",
        "pool",
        "--target",
        tls_server.address,
        "--cacert",
        str(pki / "ca.pem"),
        "--cert",
        str(pki / "client.pem"),
        "--key",
        str(pki / "client-key.pem"),
        "--requests",
        "200",
        "--warmup",
        "0",
        "-c",
        "4",
        "-q",
        "-o",
        str(tmp_path / "r.json"),
    )
    assert out.returncode == 0, out.stderr
    config = json.loads((tmp_path / "r.json").read_text())["config"]
    assert config["cacert"] == str(pki / "ca.pem") and config["key"] == str(pki / "client-key.pem")
    assert config["cluster"]["tls"] is True
    assert config["cluster"]["endpoints"] == [tls_server.address]
    assert "PRIVATE KEY" not in json.dumps(config)
