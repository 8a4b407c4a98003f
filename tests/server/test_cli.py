"""The server as a child process (``python -m tsobench.server``): persistence across restart and
kill -9, clean SIGTERM, port file, CLI errors and the Prometheus endpoint."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc
from tsobench.server import DEFAULT_CLUSTER_ID, MAX_LOGICAL, ChildServer, ServerConfig, ServerCounters, compose
from tsobench.server.oracle import GUARD_MS
from tsobench.server.window import WindowFile

TIMEOUT_S = 10
ROOT = Path(__file__).resolve().parents[2]


def request(count: int, cluster_id: int = DEFAULT_CLUSTER_ID) -> pdpb_pb2.TsoRequest:
    return pdpb_pb2.TsoRequest(header=pdpb_pb2.RequestHeader(cluster_id=cluster_id), count=count)


def tso(address: str, counts, cluster_id: int = DEFAULT_CLUSTER_ID) -> list[pdpb_pb2.TsoResponse]:
    with grpc.insecure_channel(address) as channel:
        stub = pdpb_pb2_grpc.PDStub(channel)
        return list(stub.Tso(iter([request(c, cluster_id) for c in counts]), timeout=TIMEOUT_S * 3))


def last_of(reply: pdpb_pb2.TsoResponse) -> int:
    return compose(reply.timestamp.physical, reply.timestamp.logical)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def server_argv(*args: str) -> list[str]:
    return [sys.executable, "-P", "-m", "tsobench.server", *args]


def server_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def wait_for_file(path: Path, proc: subprocess.Popen, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        assert time.monotonic() < deadline, "server did not write its port file"
        time.sleep(0.005)
    return path.read_text()


def issue_ahead(address: str, ahead_ms: int) -> int:
    """Issue timestamps from a server started on a window saved ahead_ms past the wall clock (as right
    after a restart); return the largest, which the wall clock alone would not exceed on a restart."""
    replies = tso(address, [1, 10, MAX_LOGICAL - 1, MAX_LOGICAL - 1, 1])
    assert replies[0].timestamp.physical > wall_ms() + ahead_ms // 2, "the server did not start above its window"
    return max(last_of(r) for r in replies)


@pytest.fixture
def child_config(tmp_path) -> ServerConfig:
    return ServerConfig(data_dir=str(tmp_path / "data"), metrics_port=None)


# --- persistence --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_timestamps_after_a_restart_exceed_all_before(child_config, how):
    """Physical is pushed seconds ahead of the wall clock, so only the persisted window can keep
    the restarted server above it (the wall clock alone would go back)."""
    window = WindowFile(child_config.data_dir)
    window.save(wall_ms() + 4000)
    with ChildServer(child_config) as child:
        issued_max = issue_ahead(child.address, ahead_ms=4000)
        port = child.port
        if how == "sigkill":
            child.kill()
            assert child.proc.returncode == -signal.SIGKILL
        else:
            assert child.stop() == 0
        saved = window.load()
        assert saved > issued_max >> 18, "a timestamp was issued beyond the persisted window"
        assert saved > wall_ms() + 1000  # the window is still ahead of the clock: the restart must honour it

        child.restart()
        assert child.port == port
        replies = tso(child.address, [1, 10, MAX_LOGICAL - 1, 1])
        assert replies[0].timestamp.physical > saved
        assert min(last_of(r) - r.count + 1 for r in replies) > issued_max
        assert window.load() > replies[-1].timestamp.physical


def test_repeated_kills_never_go_back(child_config):
    with ChildServer(child_config) as child:
        highest = 0
        for _ in range(3):
            replies = tso(child.address, [1, 7, MAX_LOGICAL - 1, 3])
            assert min(last_of(r) - r.count + 1 for r in replies) > highest
            highest = max(last_of(r) for r in replies)
            child.kill()
            child.restart()
        assert last_of(tso(child.address, [1])[0]) > highest


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_port_file_announce_and_clean_sigterm(tmp_path):
    port_file, data_dir = tmp_path / "port", tmp_path / "data"
    proc = subprocess.Popen(
        server_argv("--port", "0", "--port-file", str(port_file), "--data-dir", str(data_dir), "--metrics-port", "-1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server_env(),
    )
    try:
        port = int(wait_for_file(port_file, proc))
        assert 0 < port < 65536
        replies = tso(f"127.0.0.1:{port}", [5, 5])
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"listening on 127.0.0.1:{port}" in out.splitlines()
    assert "metrics on" not in out
    assert out.splitlines()[-1] == "stopped"
    assert port_file.read_text() == f"{port}\n"
    saved = WindowFile(data_dir).load()
    assert saved > max(r.timestamp.physical for r in replies)
    assert sorted(p.name for p in data_dir.iterdir()) == ["tso-window.json", "tso.lock"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGTERM, signal.SIGINT])
def test_signal_right_after_the_port_file_appears_stops_cleanly(tmp_path, sig):
    """The port file means "ready": by then the signal handlers and the metrics port file must exist."""
    port_file, metrics_file = tmp_path / "port", tmp_path / "metrics-port"
    proc = subprocess.Popen(
        server_argv(
            "--port-file",
            str(port_file),
            "--metrics-port-file",
            str(metrics_file),
            "--data-dir",
            str(tmp_path / "data"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server_env(),
    )
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():  # busy-wait: signal as early as possible
            assert proc.poll() is None and time.monotonic() < deadline
        assert metrics_file.exists(), "port file written before the metrics port file"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (proc.returncode, err)
    assert "stopped" in out
    assert WindowFile(tmp_path / "data").load() > 0


def test_cli_port_in_use_exits_2_with_a_clear_error(inprocess_server, tmp_path):
    port = inprocess_server.server.port
    result = subprocess.run(
        server_argv("--port", str(port), "--data-dir", str(tmp_path / "data"), "--metrics-port", "-1"),
        capture_output=True,
        text=True,
        timeout=30,
        env=server_env(),
    )
    assert result.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port}: address in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads /proc/<pid>/limits")
def test_the_server_raises_its_descriptor_limit_to_the_hard_limit(tmp_path):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)
    port_file = tmp_path / "port"
    argv = server_argv("--port-file", str(port_file), "--data-dir", str(tmp_path / "data"), "--metrics-port", "-1")
    proc = subprocess.Popen(  # the shell lowers the soft limit, then becomes the server
        ["sh", "-c", f'ulimit -Sn {low} && exec "$@"', "sh", *argv],
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_file(port_file, proc)
        limits = Path(f"/proc/{proc.pid}/limits").read_text().splitlines()
    finally:
        proc.terminate()
        proc.wait(TIMEOUT_S)
    (line,) = [line for line in limits if line.startswith("Max open files")]
    soft = line.split()[3]
    assert soft == str(hard) or (soft == "unlimited" and hard == resource.RLIM_INFINITY), line


def test_cli_refuses_a_corrupt_window_file(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "tso-window.json").write_text("{oops")
    result = subprocess.run(
        server_argv("--data-dir", str(data_dir), "--metrics-port", "-1"),
        capture_output=True,
        text=True,
        timeout=30,
        env=server_env(),
    )
    assert result.returncode == 2
    assert "error: corrupt TSO window file" in result.stderr


# --- knobs through the CLI ----------------------------------------------------------------------


@pytest.mark.serial  # timing: runs alone, after the parallel phase
def test_child_delay_ms_adds_latency(tmp_path):
    config = ServerConfig(data_dir=str(tmp_path / "data"), metrics_port=None, delay_ms=150)
    with ChildServer(config) as child, grpc.insecure_channel(child.address) as channel:
        stub = pdpb_pb2_grpc.PDStub(channel)
        stub.GetMembers(pdpb_pb2.GetMembersRequest(), timeout=TIMEOUT_S)  # connected
        started = time.monotonic()
        (reply,) = stub.Tso(iter([request(1)]), timeout=TIMEOUT_S)
        elapsed = time.monotonic() - started
    assert reply.count == 1
    assert 0.15 <= elapsed < 0.15 + 2.0


def test_child_fail_rate_one_aborts_streams_with_unavailable(tmp_path):
    config = ServerConfig(data_dir=str(tmp_path / "data"), fail_rate=1.0, seed=3)
    with ChildServer(config) as child:
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as info:
                tso(child.address, [1])
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "injected failure" in info.value.details()
        assert child.counters().errors == 2


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_endpoint_and_counters(tmp_path):
    with ChildServer(ServerConfig(data_dir=str(tmp_path / "data"))) as child:
        assert child.metrics_url is not None
        started = child.counters()
        assert replace(started, cpu_s=0.0) == ServerCounters()  # all zero, but for the CPU it took to start
        tso(child.address, [1, 2, 3])
        tso(child.address, [4])
        with pytest.raises(grpc.RpcError):
            tso(child.address, [1], cluster_id=1)

        deadline = time.monotonic() + 5
        while (counters := child.counters()).streams_open and time.monotonic() < deadline:
            time.sleep(0.02)
        assert counters.rpcs == 4
        assert counters.timestamps == 10
        assert counters.streams_opened == 3
        assert counters.streams_open == 0
        assert counters.errors == 1
        assert counters.mean_batch == 2.5

        with urllib.request.urlopen(child.metrics_url, timeout=TIMEOUT_S) as response:
            text = response.read().decode()
        for name in (  # numbers as Go's exposition writes them, as PD's names beside them (server/metrics.py)
            "tso_rpcs_total 4",
            "tso_timestamps_total 10",
            "tso_streams_opened_total 3",
            "tso_streams_open 0",
            "tso_errors_total 1",
            'tso_batch_size_bucket{le="4"} 4',
            "tso_batch_size_count 4",
        ):
            assert name in text.splitlines(), name


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the process collector reads /proc")
def test_the_server_counts_its_own_cpu_time(tmp_path):
    with ChildServer(ServerConfig(data_dir=str(tmp_path / "data"))) as child:
        before = child.counters()
        assert before.cpu_s > 0  # starting took some
        tso(child.address, [1] * 3000)
        spent = child.counters() - before
        with urllib.request.urlopen(child.metrics_url, timeout=TIMEOUT_S) as response:
            text = response.read().decode()
    assert spent.rpcs == 3000
    assert spent.cpu_s > 0
    assert any(line.startswith("process_cpu_seconds_total ") for line in text.splitlines())


def test_restart_resets_counters_but_not_timestamps(tmp_path):
    with ChildServer(ServerConfig(data_dir=str(tmp_path / "data"))) as child:
        highest = last_of(tso(child.address, [3])[0])
        assert child.counters().rpcs == 1
        child.stop()
        child.restart()
        assert child.counters().rpcs == 0  # a fresh process, fresh counters
        assert last_of(tso(child.address, [1])[0]) > highest


# --- one server per data dir, a window that can be trusted ----------------------------------------


def serve_once(*args: str) -> subprocess.CompletedProcess[str]:
    """Start the server CLI and expect it to refuse (a server that starts is stopped at the timeout)."""
    return subprocess.run(
        server_argv("--metrics-port", "-1", *args), capture_output=True, text=True, timeout=30, env=server_env()
    )


def assert_refused(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and words in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_second_server_on_the_same_data_dir_refuses_to_start(child_config):
    with ChildServer(child_config) as first:
        highest = last_of(tso(first.address, [5])[0])
        result = serve_once("--data-dir", child_config.data_dir)
        words = f"data dir {child_config.data_dir} is in use by another TSO server (pid {first.proc.pid})"
        assert_refused(result, words)
        assert last_of(tso(first.address, [1])[0]) > highest  # the first one is untouched
        first.kill()  # the kernel drops the lock with the process: no stale lock after kill -9
        first.restart()
        assert last_of(tso(first.address, [1])[0]) > highest


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory, self_signed_certificate) -> Path:
    """cert.pem with its key.pem; other-key.pem (not its key), encrypted-key.pem, garbage.pem."""
    folder = tmp_path_factory.mktemp("tls")
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    cert = self_signed_certificate(key)
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    (folder / "key.pem").write_bytes(key.private_bytes(*pkcs8, serialization.NoEncryption()))
    (folder / "other-key.pem").write_bytes(other.private_bytes(*pkcs8, serialization.NoEncryption()))
    (folder / "encrypted-key.pem").write_bytes(key.private_bytes(*pkcs8, serialization.BestAvailableEncryption(b"pw")))
    (folder / "garbage.pem").write_text("not a certificate\n")
    return folder


@pytest.mark.parametrize(
    ("cert", "key", "extra", "words"),
    [
        ("cert", "other-key", [], "--tls-key {other-key} is not the key of --tls-cert {cert}"),
        ("garbage", "key", [], "--tls-cert {garbage}: not a PEM certificate"),
        ("cert", "garbage", [], "--tls-key {garbage}: not a PEM private key"),
        ("cert", "encrypted-key", [], "--tls-key {encrypted-key}: the key is encrypted"),
        ("missing", "key", [], "--tls-cert {missing}: No such file or directory"),
        ("cert", "missing", [], "--tls-key {missing}: No such file or directory"),
        ("cert", "key", ["--tls-client-ca", "garbage"], "--tls-client-ca {garbage}: not a PEM certificate"),
        ("cert", "other-key", ["--members", "2"], "--tls-key {other-key} is not the key of --tls-cert {cert}"),
    ],
)
def test_a_bad_certificate_or_key_is_named_with_exit_2(tls_files, tmp_path, cert, key, extra, words):
    stems = ("cert", "key", "other-key", "encrypted-key", "garbage", "missing")
    path = {stem: str(tls_files / f"{stem}.pem") for stem in stems}
    args = ["--data-dir", str(tmp_path / "data"), "--tls-cert", path[cert], "--tls-key", path[key]]
    args += [path.get(word, word) for word in extra]
    # Not serve_once: with --members, each member picks a free metrics port itself.
    result = subprocess.run(server_argv(*args), capture_output=True, text=True, timeout=30, env=server_env())
    assert_refused(result, words.format_map(path))


YEAR_2100_MS = 4_102_444_800_000


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"high_water_ms": 9223372036854775807}', "not an integer number of ms"),
        ('{"high_water_ms": 1e30}', "not an integer number of ms"),
        ('{"high_water_ms": Infinity}', "not an integer number of ms"),
        ('{"high_water_ms": -5}', "not an integer number of ms"),
        ('{"high_water_ms": "soon"}', "not an integer number of ms"),
        ('{"high_water_ms": 1700000000000.5}', "not an integer number of ms"),
        ("{garbage", "corrupt TSO window file"),
        (f'{{"high_water_ms": {YEAR_2100_MS}}}', "days ahead of the wall clock"),
    ],
)
def test_a_bad_window_file_is_refused_with_exit_2(tmp_path, content, words):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "tso-window.json").write_text(content)
    assert_refused(serve_once("--data-dir", str(data_dir)), words)
    assert (data_dir / "tso-window.json").read_text() == content  # left for the operator to look at


def test_the_server_says_once_that_its_clock_is_behind_and_once_that_it_caught_up(child_config):
    WindowFile(child_config.data_dir).save(wall_ms() + 800)  # as right after a fast restart
    with ChildServer(child_config) as child:
        deadline = time.monotonic() + 10
        while "caught up" not in child.log_tail(10):
            assert time.monotonic() < deadline, child.log_tail(10)
            time.sleep(0.05)
        log = child.log_tail(10)
    assert log.count("system time may be incorrect") == 1 and log.count("caught up") == 1
    assert log.index("system time may be incorrect") < log.index("caught up")


def test_a_far_future_window_is_used_when_accepted(tmp_path):
    data_dir = tmp_path / "data"
    WindowFile(data_dir).save(YEAR_2100_MS)
    config = ServerConfig(data_dir=str(data_dir), metrics_port=None, accept_future_window=True)
    with ChildServer(config) as child:
        assert tso(child.address, [1])[0].timestamp.physical > YEAR_2100_MS


def test_a_flood_of_full_batches_keeps_physical_at_the_wall_clock(child_config):
    """PD's overflow rule: count 2**18-1 on every request, from several streams, never runs ahead."""
    streams_n, requests_n = 4, 150
    ahead: list[int] = []
    failures: list[BaseException] = []

    def flood() -> None:
        try:
            with grpc.insecure_channel(child.address) as channel:
                replies = pdpb_pb2_grpc.PDStub(channel).Tso(
                    iter([request(MAX_LOGICAL - 1)] * requests_n), timeout=TIMEOUT_S * 3
                )
                previous = 0
                for reply in replies:
                    ahead.append(reply.timestamp.physical - wall_ms())
                    assert last_of(reply) - reply.count + 1 > previous
                    previous = last_of(reply)
        except BaseException as exc:
            failures.append(exc)

    with ChildServer(child_config) as child:
        tso(child.address, [1])  # the window is fresh: physical starts at the wall clock
        threads = [threading.Thread(target=flood) for _ in range(streams_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures, failures
    assert len(ahead) == streams_n * requests_n
    assert max(ahead) <= GUARD_MS, f"physical ran {max(ahead)} ms ahead of the wall clock"
