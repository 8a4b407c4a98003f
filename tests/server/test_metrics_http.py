"""The metrics endpoint stays bounded under slow connections and sits behind the gRPC port's TLS."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tsobench.server.metrics_http import MetricsHTTP, tls_context


@pytest.fixture
def endpoint():
    http = MetricsHTTP(lambda: b"up 1\n", "127.0.0.1", 0, read_timeout_s=2.0).start()
    yield http
    http.close()


def scrape(url: str, context: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=5, context=context) as response:
        return response.read().decode()


def test_serves_metrics_and_refuses_other_paths(endpoint):
    assert scrape(endpoint.url) == "up 1\n"
    with pytest.raises(urllib.error.HTTPError, match="404"):
        scrape(endpoint.url.replace("/metrics", "/other"))


def test_300_slow_connections_keep_threads_bounded_and_a_scrape_answers(endpoint):
    threads_before = threading.active_count()
    slow = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", endpoint.port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # half a request, never finished
        slow.append(s)
    try:
        started = time.monotonic()
        assert scrape(endpoint.url) == "up 1\n"
        assert time.monotonic() - started < 1.5  # not queued behind the slow ones
        assert threading.active_count() <= threads_before + 1
        assert endpoint.open >= 250  # they are held open (each a coroutine), until their read deadline
        time.sleep(2.5)
        assert endpoint.open == 0  # the read deadline closed every one of them
    finally:
        for s in slow:
            s.close()


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metrics-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tsobench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    (folder / "key.pem").write_bytes(key.private_bytes(*pkcs8, serialization.NoEncryption()))
    return str(folder / "cert.pem"), str(folder / "key.pem")


def test_mutual_tls_refuses_plain_http_and_a_client_without_a_certificate(cert_files):
    cert, key = cert_files
    http = MetricsHTTP(lambda: b"up 1\n", "127.0.0.1", 0, tls_context(cert, key, cert), read_timeout_s=2.0).start()
    try:
        assert http.url.startswith("https://")
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            scrape(http.url.replace("https://", "http://"))
        anonymous = ssl.create_default_context(cafile=cert)
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            scrape(http.url, anonymous)
        client = ssl.create_default_context(cafile=cert)
        client.load_cert_chain(cert, key)
        assert scrape(http.url, client) == "up 1\n"
    finally:
        http.close()
