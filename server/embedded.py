"""Start a server from Python: in this process (a thread with its own event
loop) or as a child process (what the harness uses, so that the server and the
clients do not share a GIL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from tsobench.options import to_argv

from .admin import AdminClient, new_token, read_token, write_token
from .app import ServerError, TsoServer, new_event_loop
from .config import ServerConfig
from .leadership import Terms, claim
from .metrics import ServerCounters, counters_from_prometheus
from .window import DataDirLock

START_TIMEOUT_S = 20.0


def _with_admin_token(config: ServerConfig, folder: str) -> tuple[ServerConfig, str]:
    """With admin on: the config reading a token from a file only this user can read, and the token
    (a random one, made here, when the config names no file); only the one who starts the server knows it."""
    if not config.admin:
        return config, ""
    if config.admin_token_file:
        return config, read_token(config.admin_token_file)
    token = new_token()
    return replace(config, admin_token_file=str(write_token(os.path.join(folder, "admin-token"), token))), token


class InProcessServer:
    """``with InProcessServer(config) as s: s.address`` (tests and micro-benchmarks)."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self._tmp = None
        if config is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tso-")
            config = ServerConfig(data_dir=self._tmp.name, metrics_port=None)
        self.config = config
        self._loop = new_event_loop(config)
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
        self,
        config: ServerConfig | None = None,
        log_path: str | None = None,
        *,
        temporary_data: bool = False,
        remove_with: tuple[str, ...] = (),
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="tso-")
        if config is None or temporary_data:
            config = replace(config or ServerConfig(), data_dir=os.path.join(self._tmp.name, "data"))
        self.config, self.admin_token = _with_admin_token(config, self._tmp.name)
        self._remove_with = remove_with  # more folders it removes if orphaned (a cluster's shared one)
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
        return f"{self.config.scheme}://{self.config.host}:{self.metrics_port}/metrics"  # TLS: behind the same door

    def _argv(self, port_file: str, metrics_port_file: str) -> list[str]:
        """``python -m tsobench.server`` with every option of the config (the current folder never shadows it)."""
        flags = to_argv(self.config, always=lambda spec: True)
        head = [sys.executable, "-P", "-m", "tsobench.server"]
        launcher = ["--port-file", port_file, "--metrics-port-file", metrics_port_file]
        # It stops (and removes our temp dir) when we die, even by kill -9: we hold its stdin.
        launcher += ["--exit-with-parent"]
        for folder in (self._tmp.name, *self._remove_with):
            launcher += ["--parent-temp-dir", folder]
        return [*head, *flags, *launcher]

    def start(self) -> ChildServer:
        return self.launch().wait_ready()

    @property
    def _port_file(self) -> str:
        return os.path.join(self._tmp.name, "port")

    @property
    def _metrics_file(self) -> str:
        return os.path.join(self._tmp.name, "metrics-port")

    def launch(self) -> ChildServer:
        """Start the process without waiting for it (``wait_ready`` does): a cluster starts its members at once."""
        port_file, metrics_file = self._port_file, self._metrics_file
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
        return self

    def wait_ready(self) -> ChildServer:
        port_file, metrics_file = self._port_file, self._metrics_file
        assert self.proc is not None
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

    def admin(self, request: str, **fields: float) -> None:
        """One admin request by name (``Stall``, duration_s=0.5): what a fault kind sends (``FaultKind.admin``)."""
        AdminClient(self.address, self.admin_token).request(request, **fields)

    def abort_streams(self) -> int:
        """Abort every open Tso stream with UNAVAILABLE once; returns how many were open."""
        return AdminClient(self.address, self.admin_token).abort_streams()

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


class ChildCluster:
    """``size`` members, each a ``ChildServer``, sharing one data dir (see ``leadership``) on
    consecutive ports (the config's port as the first, or free ones); member 0 leads first.

    What ``tsobench serve --members`` and ``tsobench run --server-members`` start. Faults:
    ``transfer_leader()`` (through the admin service: the config must have admin=True),
    ``kill_leader()`` (SIGKILL; another member takes over once its lease runs out) and
    ``restart(member)`` (back as a follower).
    """

    def __init__(self, config: ServerConfig | None = None, size: int = 3, *, temporary_data: bool = False) -> None:
        if size < 2:
            raise ValueError(f"a cluster has at least 2 members, got {size}")
        self._tmp = tempfile.TemporaryDirectory(prefix="tso-cluster-")
        if config is None or temporary_data:
            config = replace(config or ServerConfig(), data_dir=os.path.join(self._tmp.name, "data"))
        self.config, self.admin_token = _with_admin_token(config, self._tmp.name)
        self.size = size
        self.members: list[ChildServer] = []
        self.terms = Terms(config.data_dir)
        self._lock: DataDirLock | None = None
        self._past = ServerCounters()  # what members counted before they were restarted
        self._last: dict[int, ServerCounters] = {}

    @property
    def addresses(self) -> list[str]:
        """Every member's HOST:PORT, member 0 (the first leader) first."""
        return [m.address for m in self.members]

    @property
    def address(self) -> str:
        """The comma-separated list, what ``--target`` takes."""
        return ",".join(self.addresses)

    def start(self) -> ChildCluster:
        self._lock = claim(self.config.data_dir, hold_s=START_TIMEOUT_S)
        try:
            ports = consecutive_ports(self.config.host, self.size, self.config.port)
            addresses = tuple(f"{self.config.host}:{p}" for p in ports)
            for i, port in enumerate(ports):
                config = replace(self.config, port=port, member_addresses=addresses, member_index=i)
                self.members.append(ChildServer(config, remove_with=(self._tmp.name,)).launch())
            for member in self.members:
                member.wait_ready()
            self.wait_for_leader()
        except BaseException:
            self.close()
            raise
        return self

    def leader(self) -> int | None:
        """The member holding the lease now (None during an election)."""
        lease = self.terms.latest()
        return lease.leader if lease.held(time.monotonic()) else None

    def wait_for_leader(self, timeout_s: float = START_TIMEOUT_S) -> int:
        deadline = time.monotonic() + timeout_s
        while (leader := self.leader()) is None:
            if time.monotonic() > deadline:
                logs = "; ".join(f"member {i}: {m.log_tail(2)}" for i, m in enumerate(self.members))
                raise ServerError(f"no member became the leader within {timeout_s:.0f}s: {logs}")
            time.sleep(0.01)
        return leader

    def transfer_leader(self, to: int | None = None) -> tuple[int, int]:
        """The leader hands over to member ``to`` (default: the next); returns (from, to) at once."""
        return AdminClient(self.members[self.wait_for_leader()].address, self.admin_token).transfer_leader(to)

    def kill_leader(self) -> int:
        """SIGKILL the leader's process (no clean hand-over); returns which member it was."""
        leader = self.wait_for_leader()
        self._counters_of(leader)  # the last it counted
        self.members[leader].kill()
        return leader

    def restart(self, member: int) -> None:
        """Start a member again (same port, same folder); it follows until it wins an election."""
        self._past += self._counters_of(member)
        self._last.pop(member, None)
        self.members[member].restart()

    def _counters_of(self, member: int) -> ServerCounters:
        server = self.members[member]
        if server.proc is not None and server.proc.poll() is None:
            with contextlib.suppress(OSError):
                self._last[member] = server.counters() or ServerCounters()
        return self._last.get(member, ServerCounters())

    def counters(self) -> ServerCounters | None:
        """Summed over the members (a dead one as it last answered)."""
        if self.config.metrics_port is None:
            return None
        total = self._past
        for i in range(len(self.members)):
            total += self._counters_of(i)
        return total

    def close(self) -> None:
        for member in self.members:
            member.close()
        if self._lock is not None:
            self._lock.release()
        self._tmp.cleanup()

    def __enter__(self) -> ChildCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def consecutive_ports(host: str, count: int, first: int = 0) -> list[int]:
    """``first`` and the ports after it, or (first=0) ``count`` consecutive ports free now."""
    if first:
        if first + count > 65536:
            raise ServerError(f"ports {first}..{first + count - 1} do not all exist")
        return list(range(first, first + count))
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((host, 0))
            start = probe.getsockname()[1]
        if start + count <= 65536 and all(_free(host, p) for p in range(start + 1, start + count)):
            return list(range(start, start + count))
    raise ServerError(f"found no {count} consecutive free ports on {host}")


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def fetch_counters(metrics_url: str, timeout_s: float = 5.0) -> ServerCounters:
    with urllib.request.urlopen(metrics_url, timeout=timeout_s) as response:
        return counters_from_prometheus(response.read().decode())
