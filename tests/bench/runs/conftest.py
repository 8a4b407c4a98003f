"""An HTTP stand-in for what a run talks to besides the TSO server: a PD's /metrics, a Pushgateway."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class HttpStub:
    """GET answers ``text()``; every PUT is kept as (path, content type, body)."""

    url: str = ""
    text: Callable[[], str] = lambda: ""
    pushed: list[tuple[str, str, bytes]] = field(default_factory=list)


@pytest.fixture
def http_stub() -> Iterator[HttpStub]:
    stub = HttpStub()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(stub.text().encode())

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            stub.pushed.append((self.path, self.headers["Content-Type"], body))
            self._answer(b"")

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stub.url = f"http://127.0.0.1:{server.server_port}"
    yield stub
    server.shutdown()
