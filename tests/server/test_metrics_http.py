"""The metrics endpoint stays bounded under slow connections and sits behind the gRPC port's TLS."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tsobench.server.metrics_http import MetricsHTTP, tls_context


@pytest.fixture
def endpoint():
    http = MetricsHTTP(lambda: b"up 1\n", "127.0.0.1", 0, read_timeout_s=3.0).start()
    yield http
    http.close()


def scrape(url: str, context: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=5, context=context) as response:
        return response.read().decode()


def test_serves_metrics_and_refuses_other_paths(endpoint):
    assert scrape(endpoint.url) == "up 1\n"
    with pytest.raises(urllib.error.HTTPError, match="404"):
        scrape(endpoint.url.replace("/metrics", "/other"))


@pytest.mark.serial
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
        assert time.monotonic() - started < 2.5  # not queued behind the slow ones (they wait out 3 s)
        assert threading.active_count() <= threads_before + 1
        assert endpoint.open >= 250  # they are held open (each a coroutine), until their read deadline
        deadline = time.monotonic() + 10
        while endpoint.open and time.monotonic() < deadline:
            time.sleep(0.1)
        assert endpoint.open == 0  # the read deadline closed every one of them
    finally:
        for s in slow:
            s.close()


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory, self_signed_certificate):
    folder = tmp_path_factory.mktemp("metrics-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed_certificate(key)
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
