"""Fault injection (abort, stall, delay) on a real child server, and kill + restart."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

import grpc
import pytest

from tsobench.protos import admin_pb2, admin_pb2_grpc, pdpb_pb2, pdpb_pb2_grpc
from tsobench.server import DEFAULT_CLUSTER_ID, ChildServer, ServerConfig, compose
from tsobench.server.admin import TOKEN_KEY, AdminClient

TIMEOUT_S = 10


def request(count: int = 1) -> pdpb_pb2.TsoRequest:
    return pdpb_pb2.TsoRequest(header=pdpb_pb2.RequestHeader(cluster_id=DEFAULT_CLUSTER_ID), count=count)


def last_of(reply: pdpb_pb2.TsoResponse) -> int:
    return compose(reply.timestamp.physical, reply.timestamp.logical)


class Stream:
    """A Tso stream on its own channel, driven one request at a time."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        self._requests: queue.Queue = queue.Queue()
        self._replies = pdpb_pb2_grpc.PDStub(self.channel).Tso(iter(self._requests.get, None), timeout=TIMEOUT_S * 3)

    def ask(self, count: int = 1) -> pdpb_pb2.TsoResponse:
        self._requests.put(request(count))
        return next(self._replies)

    def close(self) -> None:
        self._requests.put(None)
        self.channel.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = ServerConfig(data_dir=str(tmp_path_factory.mktemp("faults")), metrics_port=None, admin=True)
    with ChildServer(config) as child:
        yield child


def test_abort_fails_every_open_stream_once(server):
    streams = [Stream(server.address) for _ in range(3)]
    try:
        before = [s.ask() for s in streams]
        assert server.abort_streams() >= 3
        for s in streams:
            with pytest.raises(grpc.RpcError) as info:
                s.ask()
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "AbortStreams" in info.value.details()
    finally:
        for s in streams:
            s.close()
    fresh = Stream(server.address)  # once: streams opened afterwards are served
    try:
        replies = [fresh.ask() for _ in range(5)]
    finally:
        fresh.close()
    assert min(last_of(r) for r in replies) > max(last_of(r) for r in before)


def test_stall_answers_nothing_for_its_span_then_everything_in_order(server):
    stream = Stream(server.address)
    try:
        stream.ask()  # connected
        started = time.monotonic()
        server.admin("Stall", duration_s=0.5)
        replies = pdpb_pb2_grpc.PDStub(stream.channel).Tso(iter([request(c) for c in (1, 2, 3, 4)]), timeout=TIMEOUT_S)
        first = next(replies)
        waited = time.monotonic() - started
        rest = list(replies)
    finally:
        stream.close()
    assert waited >= 0.5, f"a reply came {waited:.3f}s into a 0.5s stall"
    assert [r.count for r in [first, *rest]] == [1, 2, 3, 4]  # queued requests answered, in order
    lasts = [last_of(r) for r in [first, *rest]]
    assert lasts == sorted(set(lasts))


@pytest.mark.serial  # timing: runs alone, after the parallel phase
def test_delay_slows_every_reply_within_its_span_only(server):
    stream = Stream(server.address)
    try:
        stream.ask()
        # long enough that a loaded host's hiccup cannot pass for it
        server.admin("Delay", duration_s=1.5, delay_ms=600)
        started = time.monotonic()
        stream.ask()
        stream.ask()
        within = time.monotonic() - started
        time.sleep(max(0.0, 1.6 - within))
        started = time.monotonic()
        stream.ask()
        after = time.monotonic() - started
    finally:
        stream.close()
    assert within >= 1.2, f"two replies in {within:.3f}s under a 600 ms delay"
    assert after < 0.6, f"a reply took {after:.3f}s after the delay's span"


@pytest.mark.parametrize(("method", "args"), [("Stall", {"duration_s": -1}), ("Delay", {"delay_ms": float("nan")})])
def test_bad_fault_arguments_are_invalid(server, method, args):
    with grpc.insecure_channel(server.address) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            request = getattr(admin_pb2, f"{method}Request")(**args)
            getattr(stub, method)(request, timeout=TIMEOUT_S, metadata=((TOKEN_KEY, server.admin_token),))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("method", "args"), [("Stall", {"duration_s": 1e300}), ("Delay", {"duration_s": 1e9, "delay_ms": 1})]
)
def test_durations_are_bounded_by_an_hour(server, method, args):
    with pytest.raises(grpc.RpcError) as info:
        getattr(AdminClient(server.address, server.admin_token), method.lower())(*args.values())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "from 0 to 3600" in info.value.details()


@pytest.mark.parametrize("token", [None, "", "a-stranger's-guess"])
def test_a_call_without_the_token_is_refused(server, token):
    with grpc.insecure_channel(server.address) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        metadata = None if token is None else ((TOKEN_KEY, token),)
        with pytest.raises(grpc.RpcError) as info:
            stub.Stall(admin_pb2.StallRequest(duration_s=5), timeout=TIMEOUT_S, metadata=metadata)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    stream = Stream(server.address)  # and nothing was stalled
    try:
        started = time.monotonic()
        stream.ask()
        assert time.monotonic() - started < 1.0
    finally:
        stream.close()


def test_health_says_not_serving_while_stalled_and_a_stall_can_be_cancelled(server):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    def status() -> int:
        with grpc.insecure_channel(server.address) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            return check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S).status

    assert status() == health_pb2.HealthCheckResponse.SERVING
    server.admin("Stall", duration_s=600)
    deadline = time.monotonic() + 5
    while status() != health_pb2.HealthCheckResponse.NOT_SERVING and time.monotonic() < deadline:
        time.sleep(0.02)
    assert status() == health_pb2.HealthCheckResponse.NOT_SERVING
    server.admin("Stall", duration_s=0)  # cancels it
    stream = Stream(server.address)
    try:
        started = time.monotonic()
        stream.ask()
        assert time.monotonic() - started < 1.0, "the stall went on after Stall(0)"
    finally:
        stream.close()
    assert status() == health_pb2.HealthCheckResponse.SERVING


def test_serve_admin_prints_its_token_and_warns_beyond_loopback(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "tsobench.server", "--admin", "--host", "0.0.0.0", "--port", "0",
         "--data-dir", str(tmp_path / "d"), "--metrics-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    token_line = next(line for line in lines if line.startswith("admin token: "))
    assert len(token_line.split()[2]) >= 24
    assert "listening on 0.0.0.0 without TLS" in err and "the admin (fault) service" in err and "metrics" in err


def test_kill_and_restart_under_load_never_goes_back(tmp_path):
    """A client keeps asking (reconnecting on errors) while the server is killed and restarted on
    the same port: every timestamp it gets is above every one it got before."""
    config = ServerConfig(data_dir=str(tmp_path / "data"), metrics_port=None, admin=True)
    got: list[int] = []
    errors: list[grpc.StatusCode] = []
    done = threading.Event()

    def load(address: str) -> None:
        while not done.is_set():
            stream = Stream(address)
            try:
                while not done.is_set():
                    got.append(last_of(stream.ask(7)))
            except grpc.RpcError as exc:
                errors.append(exc.code())
                time.sleep(0.01)
            finally:
                stream.close()

    with ChildServer(config) as child:
        client = threading.Thread(target=load, args=(child.address,))
        client.start()
        try:
            for _ in range(2):
                time.sleep(0.3)
                issued = len(got)
                port = child.port
                child.kill()
                child.restart()
                assert child.port == port
                deadline = time.monotonic() + TIMEOUT_S
                while len(got) <= issued + 10 and time.monotonic() < deadline:
                    time.sleep(0.01)
        finally:
            done.set()
            client.join(TIMEOUT_S)
    assert errors, "the kill went unnoticed"
    assert len(got) > 30
    assert got == sorted(set(got)), "a timestamp after the restart is not above one before"
