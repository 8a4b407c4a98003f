"""Launchers: a server in this process, in a child process (no debris, whatever kills us), and a cluster."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import time

import grpc
import pytest

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc
from tsobench.server import DEFAULT_CLUSTER_ID, ChildCluster, ChildServer, InProcessServer, ServerConfig
from tsobench.server.app import ServerError
from tsobench.server.embedded import consecutive_ports, fetch_counters

TIMEOUT_S = 10


def members(address: str) -> pdpb_pb2.GetMembersResponse:
    with grpc.insecure_channel(address) as channel:
        return pdpb_pb2_grpc.PDStub(channel).GetMembers(pdpb_pb2.GetMembersRequest(), timeout=TIMEOUT_S)


def test_an_in_process_server_serves_until_its_block_ends(tmp_path):
    with InProcessServer(ServerConfig(data_dir=str(tmp_path), metrics_port=None)) as server:
        assert members(server.address).header.cluster_id == DEFAULT_CLUSTER_ID
        assert server.counters().rpcs == 0
        address = server.address
    with pytest.raises(grpc.RpcError):
        members(address)


def test_a_child_server_answers_counts_and_leaves_no_temp_dir(tmp_path):
    with ChildServer(ServerConfig(data_dir=str(tmp_path / "data"))) as child:
        assert members(child.address).leader.client_urls == [f"http://{child.address}"]
        assert child.metrics_url is not None
        scraped, read = fetch_counters(child.metrics_url), child.counters()  # the same counters, two ways
        assert dataclasses.replace(scraped, cpu_s=0.0) == dataclasses.replace(read, cpu_s=0.0)
        assert (scraped.cpu_s or 0.0) <= (read.cpu_s or 0.0)  # CPU time goes on between the two reads
        folder = child._tmp.name
        assert os.path.isdir(folder)
    assert child.proc is not None and child.proc.poll() is not None
    assert not os.path.exists(folder)


def test_a_child_server_stops_when_its_parent_is_killed(tmp_path):
    """A launcher killed with SIGKILL: its server (holding a pipe to it) goes too, and nobody serves."""
    import subprocess
    import sys

    code = (
        "import sys, time; from tsobench.server import ChildServer, ServerConfig; "
        f"c = ChildServer(ServerConfig(data_dir={str(tmp_path / 'data')!r})).start(); "
        "print(c.address, c.proc.pid, flush=True); time.sleep(60)"
    )
    launcher = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        _, pid = launcher.stdout.readline().split()
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(10)
        deadline = time.monotonic() + 20  # a bound for a hang only
        while _alive(int(pid)):
            assert time.monotonic() < deadline, "the server outlived its parent"
            time.sleep(0.05)
    finally:
        if launcher.poll() is None:
            launcher.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def test_child_server_on_a_busy_port_raises_server_error(inprocess_server, tmp_path):
    port = inprocess_server.server.port
    child = ChildServer(ServerConfig(port=port, data_dir=str(tmp_path / "data"), metrics_port=None))
    try:
        with pytest.raises(ServerError, match=f"exited with 2.*cannot listen on 127.0.0.1:{port}"):
            child.start()
    finally:
        child.close()
    # The first server is untouched.
    with grpc.insecure_channel(inprocess_server.address) as channel:
        reply = pdpb_pb2_grpc.PDStub(channel).GetMembers(pdpb_pb2.GetMembersRequest(), timeout=TIMEOUT_S)
    assert reply.header.cluster_id == DEFAULT_CLUSTER_ID


def test_a_cluster_elects_one_leader_that_every_member_names(tmp_path):
    config = ServerConfig(data_dir=str(tmp_path), election_timeout_s=0.5)
    with ChildCluster(config, 3) as cluster:
        leader = cluster.wait_for_leader()
        assert cluster.address == ",".join(cluster.addresses) and len(cluster.addresses) == 3
        named = {tuple(members(a).leader.client_urls) for a in cluster.addresses}
        assert named == {(f"http://{cluster.addresses[leader]}",)}


def test_consecutive_ports_are_free_now_or_exactly_those_asked_for():
    ports = consecutive_ports("127.0.0.1", 3)
    assert ports == list(range(ports[0], ports[0] + 3))
    for port in ports:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))
    assert consecutive_ports("127.0.0.1", 2, first=9000) == [9000, 9001]
    with pytest.raises(ServerError, match="do not all exist"):
        consecutive_ports("127.0.0.1", 3, first=65535)
