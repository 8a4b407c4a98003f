"""``tsobench serve --members N``: a cluster in the foreground that says where it listens, reports
members that die and leaders that change, and stops every member when told (or when its parent goes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc
from tsobench.server.window import DataDirLock

TIMEOUT_S = 10


def members_of(address: str) -> pdpb_pb2.GetMembersResponse:
    with grpc.insecure_channel(address) as channel:
        return pdpb_pb2_grpc.PDStub(channel).GetMembers(pdpb_pb2.GetMembersRequest(), timeout=TIMEOUT_S)


def serve(tmp_path: Path, *extra: str, stdin=None) -> tuple[subprocess.Popen, list[str]]:
    """Start ``serve --members 3`` and wait for its port file (the leader first)."""
    port_file = tmp_path / "ports"
    command = [sys.executable, "-P", "-m", "tsobench.bench", "serve", "--members", "3", "--election-timeout", "0.5"]
    command += ["--data-dir", str(tmp_path / "data"), "--port-file", str(port_file), *extra]
    proc = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60  # a bound for a hang only
    while not port_file.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc, port_file.read_text().split()


def member_pid(supervisor: int, address: str) -> int:
    """The member process (a child of the supervisor) serving ``address``."""
    port = address.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == supervisor and port.encode() in b" ".join(argv):
            return int(entry.name)
    raise AssertionError(f"no member serving {address}")


def test_serve_members_writes_every_member_leader_first_and_stops_on_sigterm(tmp_path):
    proc, addresses = serve(tmp_path)
    try:
        assert len(addresses) == 3
        ports = sorted(int(a.rsplit(":", 1)[1]) for a in addresses)
        assert ports == list(range(ports[0], ports[0] + 3))  # consecutive
        reply = members_of(addresses[1])
        assert list(reply.leader.client_urls) == [f"http://{addresses[0]}"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "member 0 listening on" in out and "--target " in out
    DataDirLock(tmp_path / "data").acquire().release()  # every member is gone: the folder is free


def test_a_member_that_dies_is_reported_and_so_is_the_next_leader(tmp_path):
    proc, addresses = serve(tmp_path, "--no-restart")  # a restarted member could lead again
    try:
        os.kill(member_pid(proc.pid, addresses[0]), signal.SIGKILL)  # the leader
        deadline = time.monotonic() + 30  # a bound for a hang only
        while True:
            leaders = {tuple(members_of(a).leader.client_urls) for a in addresses[1:]}
            if len(leaders) == 1 and leaders != {(f"http://{addresses[0]}",)}:
                break
            assert time.monotonic() < deadline, "no new leader"
            time.sleep(0.1)
        time.sleep(0.5)  # the supervisor looks ten times a second
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "exited with -9" in out and " leads" in out, out


def test_closing_its_stdin_stops_the_cluster_as_a_parent_gone(tmp_path):
    proc, _ = serve(tmp_path, "--exit-with-parent", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(30)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    assert "stopped (stdin closed: the parent is gone)" in out, (out, err)
    DataDirLock(tmp_path / "data").acquire().release()
