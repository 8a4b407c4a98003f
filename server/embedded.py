"""Start a server from Python: in this process (a thread with its own event
loop) or as a child process (what the harness uses, so that the server and the
clients do not share a GIL)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from tsobench.options import to_argv

from .admin import AdminClient
from .app import ServerError, TsoServer
from .config import ServerConfig
from .metrics import ServerCounters, counters_from_prometheus

START_TIMEOUT_S = 20.0


class InProcessServer:
    """``with InProcessServer(config) as s: s.address`` (tests and micro-benchmarks)."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self._tmp = None
        if config is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tso-")
            config = ServerConfig(data_dir=self._tmp.name, metrics_port=None)
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tso-server", daemon=True)
        self.server = TsoServer(config)

    @property
    def address(self) -> str:
        return self.server.address

    def counters(self) -> ServerCounters:
        return self.server.metrics.snapshot()

    def start(self) -> InProcessServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(START_TIMEOUT_S)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self._loop).result(START_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT_S)
        self._loop.close()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ChildServer:
    """The server as a separate process (``python -m tsobench.server``), stopped with SIGTERM.

    It leaves no debris: it holds a pipe to us as its stdin and stops when that
    closes, so whatever kills this process (kill -9 included) stops it too, and
    it then removes this object's temp dir (port files, log and, with
    ``temporary_data`` or no config, the data dir).
    """

    def __init__(
        self, config: ServerConfig | None = None, log_path: str | None = None, *, temporary_data: bool = False
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="tso-")
        if config is None or temporary_data:
            config = replace(config or ServerConfig(), data_dir=os.path.join(self._tmp.name, "data"))
        self.config = config
        self._log_path = log_path or os.path.join(self._tmp.name, "server.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.metrics_port: int | None = None

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def metrics_url(self) -> str | None:
        if self.metrics_port is None:
            return None
        return f"http://{self.config.host}:{self.metrics_port}/metrics"

    def _argv(self, port_file: str, metrics_port_file: str) -> list[str]:
        """``python -m tsobench.server`` with every option of the config (the current folder never shadows it)."""
        flags = to_argv(self.config, always=lambda spec: True)
        head = [sys.executable, "-P", "-m", "tsobench.server"]
        launcher = ["--port-file", port_file, "--metrics-port-file", metrics_port_file]
        # It stops (and removes our temp dir) when we die, even by kill -9: we hold its stdin.
        launcher += ["--exit-with-parent", "--parent-temp-dir", self._tmp.name]
        return [*head, *flags, *launcher]

    def start(self) -> ChildServer:
        port_file = os.path.join(self._tmp.name, "port")
        metrics_file = os.path.join(self._tmp.name, "metrics-port")
        for f in (port_file, metrics_file):
            Path(f).unlink(missing_ok=True)
        root = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        }
        with open(self._log_path, "ab") as log:
            # Its own session: a Ctrl-C meant for the benchmark does not kill the server mid-run.
            self.proc = subprocess.Popen(
                self._argv(port_file, metrics_file),
                stdin=subprocess.PIPE,  # never written: its end of file says we are gone
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                raise ServerError(f"TSO server exited with {self.proc.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(f"TSO server did not start within {START_TIMEOUT_S:.0f}s: {self.log_tail()}")
            time.sleep(0.02)
        self.port = int(Path(port_file).read_text())
        if self.config.metrics_port is not None:
            self.metrics_port = int(Path(metrics_file).read_text())
        return self

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(Path(self._log_path).read_text().strip().splitlines()[-lines:])
        except OSError:
            return ""

    def counters(self) -> ServerCounters | None:
        return fetch_counters(self.metrics_url) if self.metrics_url else None

    def restart(self) -> ChildServer:
        """Start again on the same port and data dir (stopping it first if it still runs):
        timestamps continue above everything issued before, kill -9 or not."""
        self.stop()
        self.config = replace(self.config, port=self.port)
        return self.start()

    # Faults, through the admin service (the config must have admin=True).

    def abort_streams(self) -> int:
        """Abort every open Tso stream with UNAVAILABLE once; returns how many were open."""
        return AdminClient(self.address).abort_streams()

    def stall(self, duration_s: float) -> None:
        """Answer nothing for duration_s, then everything queued, in order; returns at once."""
        AdminClient(self.address).stall(duration_s)

    def delay(self, duration_s: float, delay_ms: float) -> None:
        """Delay every reply by delay_ms for duration_s; returns at once."""
        AdminClient(self.address).delay(duration_s, delay_ms)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_pipe()
        return self.proc.returncode if self.proc else None

    def kill(self) -> None:
        """SIGKILL: no clean stop, no window save on the way out (what a crash looks like)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_pipe()

    def _close_pipe(self) -> None:
        # Only once the process is gone: closing it earlier tells the server we died.
        if self.proc and self.proc.stdin:
            self.proc.stdin.close()

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> ChildServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def fetch_counters(metrics_url: str, timeout_s: float = 5.0) -> ServerCounters:
    with urllib.request.urlopen(metrics_url, timeout=timeout_s) as response:
        return counters_from_prometheus(response.read().decode())
