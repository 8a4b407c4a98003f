"""PD-like clusters: members, followers, leader changes, and every strategy riding them."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tsobench import strategies
from tsobench.bench.measure.shard import run_shard
from tsobench.bench.model.config import RunConfig, ShardConfig
from tsobench.bench.model.faults import Fault
from tsobench.options import ConfigError
from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc
from tsobench.server import DEFAULT_CLUSTER_ID, ChildCluster, ServerConfig, compose
from tsobench.server.oracle import UPDATE_INTERVAL_S
from tsobench.server.window import DataDirLocked, WindowFile
from tsobench.strategies.stream import tso_request

TIMEOUT_S = 5.0


def members_of(address: str) -> pdpb_pb2.GetMembersResponse:
    with grpc.insecure_channel(address) as channel:
        return pdpb_pb2_grpc.PDStub(channel).GetMembers(pdpb_pb2.GetMembersRequest(), timeout=TIMEOUT_S)


def tso_error(address: str) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel:
        replies = pdpb_pb2_grpc.PDStub(channel).Tso(iter([tso_request(DEFAULT_CLUSTER_ID, 1)]), timeout=TIMEOUT_S)
        with pytest.raises(grpc.RpcError) as failure:
            next(replies)
    return failure.value


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    config = ServerConfig(data_dir=str(tmp_path_factory.mktemp("cluster")), admin=True, election_timeout_s=1.0)
    with ChildCluster(config, 3) as c:
        yield c


def follower_first(cluster: ChildCluster) -> str:
    leader = cluster.wait_for_leader()
    others = [a for i, a in enumerate(cluster.addresses) if i != leader]
    return ",".join([*others, cluster.addresses[leader]])


def test_the_members_agree_on_members_and_leader_and_followers_refuse_tso(cluster):
    leader = cluster.wait_for_leader()
    replies = [members_of(a) for a in cluster.addresses]
    urls = [f"http://{a}" for a in cluster.addresses]
    for reply in replies:
        assert [list(m.client_urls) for m in reply.members] == [[u] for u in urls]
        assert list(reply.leader.client_urls) == [urls[leader]]
        assert reply.members[leader] == reply.leader
    assert len({r.header.cluster_id for r in replies}) == 1
    for i, address in enumerate(cluster.addresses):
        if i != leader:
            error = tso_error(address)
            assert (error.code(), error.details()) == (grpc.StatusCode.UNAVAILABLE, "not leader")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the process collector reads /proc")
def test_a_clusters_counters_sum_its_members_cpu_time(cluster):
    members = [m.counters().cpu_s for m in cluster.members]
    assert all(cpu > 0 for cpu in members)
    assert cluster.counters().cpu_s >= sum(members)  # read later: each member's only grew


@pytest.mark.parametrize("api", strategies.APIS)
def test_every_strategy_finds_the_leader_behind_a_follower_listed_first(cluster, safe_strategy, api):
    config = RunConfig(strategy=safe_strategy, api=api, concurrency=8, requests=200, warmup_s=0, count=2, timeout_s=5)
    result = run_shard(ShardConfig(config, 0, follower_first(cluster)))
    assert result.errors == {}
    assert result.requests_ok == 200
    assert (result.ranges.duplicates, result.non_monotonic, result.mismatched) == (0, 0, 0)


def _run_with_fault(cluster: ChildCluster, name: str, api: str, fault) -> tuple:
    """Load the cluster for 2.5 s; ``fault(cluster)`` at 0.8 s. Returns the shard result and the old leader."""
    config = RunConfig(strategy=name, api=api, concurrency=4, duration_s=2.5, warmup_s=0, timeout_s=3)
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(result=run_shard(ShardConfig(config, 0, cluster.address))))
    thread.start()
    time.sleep(0.8)
    old = fault(cluster)
    thread.join(30)
    return box["result"], old


@pytest.mark.serial  # timing: runs alone, after the parallel phase
@pytest.mark.parametrize(
    ("name", "api", "fault"),
    [
        ("dispatcher", "thread", "transfer"),
        ("locked", "asyncio", "transfer"),
        ("pool", "thread", "kill"),
        ("per-request", "asyncio", "kill"),
    ],
)
def test_a_leader_change_mid_run_recovers_without_violations(tmp_path, name, api, fault):
    config = ServerConfig(data_dir=str(tmp_path), admin=True, election_timeout_s=1.0)
    with ChildCluster(config, 3) as cluster:
        high_water_before = WindowFile(tmp_path).load()
        if fault == "transfer":
            result, (old, _) = _run_with_fault(cluster, name, api, lambda c: c.transfer_leader())
        else:
            result, old = _run_with_fault(cluster, name, api, lambda c: c.kill_leader())
        new = cluster.wait_for_leader()
        served_by_new = cluster.members[new].counters().rpcs
    assert new != old
    assert served_by_new > 0  # later requests succeeded, on the new leader
    assert result.requests_ok > 0
    # Nothing below a timestamp already handed out: the new leader started above the old one's window.
    assert (result.ranges.duplicates, result.non_monotonic, result.non_monotonic_per_caller) == (0, 0, 0)
    assert WindowFile(tmp_path).load() > high_water_before


def test_a_new_leader_starts_above_the_old_leaders_window(tmp_path):
    config = ServerConfig(data_dir=str(tmp_path), admin=True, election_timeout_s=1.0, metrics_port=None)
    with ChildCluster(config, 2) as cluster:
        client = strategies.get("locked").thread(strategies.ClientOptions(cluster.address, timeout_s=3))
        client.open()
        try:
            before = client.get_ts()
            window = WindowFile(tmp_path).load()  # the old leader issued nothing at or above this
            cluster.kill_leader()
            while True:
                try:
                    after = client.get_ts()
                    break
                except grpc.RpcError:
                    pass
        finally:
            client.close()
    assert after.physical > window >= before.physical


def serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.serial  # timing: runs alone, after the parallel phase
def test_a_frozen_leader_freezes_nobody_else_and_never_answers_after_it_wakes(tmp_path):
    """SIGSTOP the leader: the followers keep answering GetMembers and health and elect a new
    leader within the election timeout (and a tick); after SIGCONT the old one answers no Tso,
    not even a request that reached it while it was frozen, and no timestamp goes back."""
    timeout_s = 1.0
    config = ServerConfig(data_dir=str(tmp_path), election_timeout_s=timeout_s, metrics_port=None)
    with ChildCluster(config, 3) as cluster, grpc.insecure_channel(cluster.addresses[0]) as channel:
        old = cluster.wait_for_leader()
        assert old == 0
        requests: queue.Queue = queue.Queue()
        replies = pdpb_pb2_grpc.PDStub(channel).Tso(iter(requests.get, None), timeout=30)
        requests.put(tso_request(DEFAULT_CLUSTER_ID, 1))
        before = next(replies)
        pid = cluster.members[old].proc.pid
        os.kill(pid, signal.SIGSTOP)
        frozen = time.monotonic()
        try:
            requests.put(tso_request(DEFAULT_CLUSTER_ID, 1))  # reaches the frozen leader's socket
            while True:
                for address in cluster.addresses[1:]:
                    assert serving(address)
                named = {tuple(members_of(a).leader.client_urls) for a in cluster.addresses[1:]}
                if len(named) == 1 and (urls := named.pop()) and urls != (f"http://{cluster.addresses[old]}",):
                    break
                assert time.monotonic() - frozen < 10 * timeout_s, "no new leader while the old one is frozen"
                time.sleep(0.02)
            elected_after_s = time.monotonic() - frozen
            new = cluster.wait_for_leader()
            first_new = one_timestamp(cluster.addresses[new])
        finally:
            os.kill(pid, signal.SIGCONT)
        with pytest.raises(grpc.RpcError) as woken:
            next(replies)
        assert (woken.value.code(), woken.value.details()) == (grpc.StatusCode.UNAVAILABLE, "not leader")
        error = tso_error(cluster.addresses[old])
        assert (error.code(), error.details()) == (grpc.StatusCode.UNAVAILABLE, "not leader")
        later = one_timestamp(cluster.addresses[new])
    assert new != old
    assert elected_after_s < timeout_s + UPDATE_INTERVAL_S + 0.5  # with room for a busy machine
    assert composed(before) < first_new < later


def one_timestamp(address: str) -> int:
    """One timestamp from ``address``, composed."""
    with grpc.insecure_channel(address) as channel:
        (reply,) = pdpb_pb2_grpc.PDStub(channel).Tso(iter([tso_request(DEFAULT_CLUSTER_ID, 1)]), timeout=TIMEOUT_S)
    return composed(reply)


def composed(reply: pdpb_pb2.TsoResponse) -> int:
    return compose(reply.timestamp.physical, reply.timestamp.logical)


def test_a_lone_server_cannot_share_a_clusters_folder(tmp_path):
    from tsobench.server import ChildServer

    with ChildCluster(ServerConfig(data_dir=str(tmp_path), metrics_port=None), 2):
        with pytest.raises(Exception, match="in use by another TSO server"):
            ChildServer(ServerConfig(data_dir=str(tmp_path), metrics_port=None)).start()
        with pytest.raises(DataDirLocked):
            ChildCluster(ServerConfig(data_dir=str(tmp_path)), 2).start()


def test_run_with_server_members_records_the_cluster(tmp_path):
    command = [sys.executable, "-P", "-m", "tsobench.bench", "run", "-s", "dispatcher", "--server-members", "3"]
    command += ["--requests", "300", "--warmup", "0", "-c", "4", "-q", "-o", str(tmp_path / "r.json")]
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    config = json.loads((tmp_path / "r.json").read_text())["config"]
    assert config["server_members"] == 3
    cluster = config["cluster"]
    assert len(cluster["endpoints"]) == 3 and cluster["members"] == cluster["endpoints"]
    assert cluster["leader"] == cluster["endpoints"][0] and cluster["tls"] is False


@pytest.mark.serial  # timing: runs alone, after the parallel phase
def test_leader_faults_in_a_run_are_recorded_and_recovered():
    """`--fault leader@..` and `kill-leader@..` on an embedded 3-member cluster."""
    from tsobench.bench.runs.runner import run

    config = RunConfig(
        strategy="dispatcher",
        api="asyncio",
        concurrency=4,
        server_members=3,
        duration_s=4.0,
        warmup_s=0.3,
        faults=(Fault.parse("leader@0.8s"), Fault.parse("kill-leader@2s")),
    )
    result = run(config)
    faults = {f["kind"]: f for f in result.faults}
    assert set(faults) == {"leader", "kill-leader"}
    assert all(f["recovered"] for f in faults.values()), result.faults
    assert result.correctness["violations"] == 0
    assert result.judgement.clean, result.judgement


def test_leader_faults_need_members_and_the_others_a_single_server():
    with pytest.raises(ConfigError, match="needs --server-members"):
        RunConfig(strategy="locked", duration_s=3, faults=(Fault.parse("leader@1s"),))
    with pytest.raises(ConfigError, match="needs a single embedded server"):
        RunConfig(strategy="locked", duration_s=3, server_members=3, faults=(Fault.parse("kill@1s:0.5s"),))


def test_leader_transfers_are_paced_so_physical_time_stays_within_one_window(tmp_path):
    """40 TransferLeader calls in 2 s (issue 28 put physical time 114 s ahead): one goes through, the rest
    are refused while the new leader's physical time is ahead of the wall clock."""
    window_ms = 3000
    config = ServerConfig(
        data_dir=str(tmp_path), admin=True, election_timeout_s=1.0, metrics_port=None, window_ms=window_ms
    )
    with ChildCluster(config, 3) as cluster:
        done, refused = 0, []
        deadline = time.monotonic() + 2.0
        for _ in range(40):
            try:
                cluster.transfer_leader()
                done += 1
            except grpc.RpcError as exc:
                refused.append(exc)
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        client = strategies.get("locked").thread(strategies.ClientOptions(cluster.address, timeout_s=5))
        client.open()
        try:
            ts = client.get_ts()
        finally:
            client.close()
    assert done <= 2, f"{done} transfers in 2 s"
    assert any(
        e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "ahead of the wall clock" in e.details() for e in refused
    )
    ahead_ms = ts.physical - time.time() * 1000
    assert ahead_ms <= window_ms + 1000, f"physical time {ahead_ms:.0f} ms ahead of the wall clock"


def _member_pid(supervisor: int, index: int) -> int:
    tasks = Path(f"/proc/{supervisor}/task").glob("*/children")  # started from worker threads too
    for child in (int(c) for t in tasks for c in t.read_text().split()):
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"--member-index" in argv and argv[argv.index(b"--member-index") + 1] == str(index).encode():
            return child
    raise AssertionError(f"member {index} is not running")


def _serve_members(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    port_file = tmp_path / "ports"
    command = [sys.executable, "-P", "-m", "tsobench.bench", "serve", "--members", "3", *extra]
    command += ["--data-dir", str(tmp_path / "data"), "--port-file", str(port_file)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    while not port_file.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    return proc, sorted(port_file.read_text().split(), key=lambda a: int(a.rsplit(":", 1)[1]))


def _line(proc: subprocess.Popen[str], text: str, timeout_s: float = 20.0) -> str:
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if text in line:
                found.put(line)
                return

    threading.Thread(target=read, daemon=True).start()
    return found.get(timeout=timeout_s)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the members through /proc")
def test_serve_members_restarts_a_member_that_dies(tmp_path):
    proc, addresses = _serve_members(tmp_path)
    try:
        os.kill(_member_pid(proc.pid, 1), signal.SIGKILL)
        assert "member 1 restarted" in _line(proc, "member 1 restarted")
        assert members_of(addresses[1]).header.cluster_id == DEFAULT_CLUSTER_ID  # it answers again
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the members through /proc")
def test_no_restart_leaves_it_dead_and_serve_member_runs_it_by_hand(tmp_path):
    proc, addresses = _serve_members(tmp_path, "--no-restart")
    first_port = addresses[0].rsplit(":", 1)[1]
    by_hand = None
    try:
        os.kill(_member_pid(proc.pid, 1), signal.SIGKILL)
        _line(proc, "member 1 exited")
        time.sleep(1.5)  # more than the restart pause: nobody brings it back
        with pytest.raises(grpc.RpcError):
            members_of(addresses[1])
        by_hand = subprocess.Popen(
            [sys.executable, "-P", "-m", "tsobench.bench", "serve", "--members", "3", "--member", "1",
             "--port", first_port, "--data-dir", str(tmp_path / "data"), "--metrics-port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert f"listening on {addresses[1]}" in _line(by_hand, "listening on")
        reply = members_of(addresses[1])
        assert len(reply.members) == 3 and reply.HasField("leader")
    finally:
        if by_hand is not None:
            by_hand.send_signal(signal.SIGTERM)
            by_hand.communicate(timeout=30)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_get_members_refuses_a_wrong_cluster_id_and_answers_one_learning_it(cluster):
    with grpc.insecure_channel(cluster.addresses[0]) as channel:
        stub = pdpb_pb2_grpc.PDStub(channel)
        wrong = pdpb_pb2.GetMembersRequest(header=pdpb_pb2.RequestHeader(cluster_id=DEFAULT_CLUSTER_ID + 1))
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetMembers(wrong, timeout=TIMEOUT_S)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "mismatch cluster id" in refused.value.details()
        right = pdpb_pb2.GetMembersRequest(header=pdpb_pb2.RequestHeader(cluster_id=DEFAULT_CLUSTER_ID))
        assert stub.GetMembers(right, timeout=TIMEOUT_S).header.cluster_id == DEFAULT_CLUSTER_ID
        assert stub.GetMembers(pdpb_pb2.GetMembersRequest(), timeout=TIMEOUT_S).header.cluster_id == DEFAULT_CLUSTER_ID
