"""Every strategy on both APIs against a real server (a child process)."""

import asyncio
import threading
import time
from importlib.metadata import EntryPoint

import pytest

from tsobench import strategies
from tsobench.bench.config import RunConfig, ShardConfig
from tsobench.bench.shard import run_shard
from tsobench.protos import pdpb_pb2
from tsobench.strategies import registry
from tsobench.strategies.dispatcher import Batch, split

SAFE = [s.name for s in registry.BUILTIN if s.safe and not s.baseline]


@pytest.mark.parametrize("api", strategies.APIS)
@pytest.mark.parametrize("name", SAFE)
def test_safe_strategies_give_zero_violations_under_concurrency(child_server, name, api):
    config = RunConfig(strategy=name, api=api, concurrency=32, requests=640, warmup_s=0, count=3, timeout_s=10)
    result = run_shard(ShardConfig(config, 0, child_server.address))
    assert result.errors == {}
    assert result.requests_ok == 640
    assert result.timestamps == 640 * 3
    assert result.checked == 640 * 3
    assert (result.ranges.duplicates, result.non_monotonic, result.mismatched) == (0, 0, 0)


@pytest.mark.parametrize("name", SAFE)
def test_a_stream_aborted_by_the_server_fails_the_request_with_its_status(name, tmp_path):
    from tsobench.server import ChildServer, ServerConfig

    with ChildServer(ServerConfig(data_dir=str(tmp_path), fail_rate=1.0)) as bad:
        client = strategies.get(name).thread(strategies.ClientOptions(bad.address, timeout_s=3))
        client.open()
        try:
            with pytest.raises(Exception) as failure:
                client.get_ts()
            assert "UNAVAILABLE" in str(failure.value) or "injected" in str(failure.value)
        finally:
            client.close()


def test_clients_recover_on_a_healthy_server_after_errors(child_server):
    """Each safe strategy answers again after a request failed on a bad count."""
    for name in SAFE:
        client = strategies.get(name).thread(strategies.ClientOptions(child_server.address, timeout_s=3))
        client.open()
        try:
            with pytest.raises(Exception, match=r"INVALID_ARGUMENT|invalid count"):
                client.get_ts(1 << 18)
            assert client.get_ts().logical > 0
        finally:
            client.close()


def test_async_clients_recover_after_errors(child_server):
    async def check(name: str) -> None:
        client = strategies.get(name).asyncio(strategies.ClientOptions(child_server.address, timeout_s=3))
        await client.open()
        try:
            with pytest.raises(Exception, match=r"INVALID_ARGUMENT|invalid count"):
                await client.get_ts(1 << 18)
            assert (await client.get_ts()).logical > 0
        finally:
            await client.close()

    for name in SAFE:
        asyncio.run(check(name))


def test_dispatcher_split_hands_out_consecutive_slices_in_order():
    batch = Batch()
    for count in (1, 3, 2):
        batch.add(count, None)
    reply = pdpb_pb2.TsoResponse(count=6, timestamp=pdpb_pb2.Timestamp(physical=7, logical=10))
    out = split(batch, reply)
    assert [(t.first & 0x3FFFF, t.last & 0x3FFFF) for t in out] == [(5, 5), (6, 8), (9, 10)]


def test_dispatcher_split_refuses_a_reply_of_the_wrong_size():
    batch = Batch()
    batch.add(2, None)
    with pytest.raises(strategies.ReplyMismatch):
        split(batch, pdpb_pb2.TsoResponse(count=1, timestamp=pdpb_pb2.Timestamp(physical=1, logical=1)))


def test_dispatcher_respects_max_batch(child_server):
    options = strategies.ClientOptions(child_server.address, max_batch=4, batch_wait_us=2000)
    client = strategies.get("dispatcher").thread(options)
    client.open()
    before = child_server.counters()
    try:
        threads = [threading.Thread(target=lambda: [client.get_ts() for _ in range(20)]) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        client.close()
    after = child_server.counters()
    done = after - before
    assert done.timestamps == 320
    assert done.rpcs >= 320 / 4


def test_registry_lists_builtins_and_rejects_unknown_names():
    assert registry.names()[:6] == ["per-request", "locked", "pool", "dispatcher", "unsafe-shared", "null"]
    with pytest.raises(registry.UnknownStrategy, match="choose from per-request"):
        strategies.get("nope")


def test_registry_loads_plugins_from_entry_points(monkeypatch, tmp_path):
    (tmp_path / "my_tso_plugin.py").write_text(
        "from tsobench.strategies import Strategy\n"
        "from tsobench.strategies.pool import AsyncClient, ThreadClient\n"
        "STRATEGY = Strategy('my-plugin', 'a third-party strategy', ThreadClient, AsyncClient)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint(name="my-plugin", value="my_tso_plugin:STRATEGY", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == registry.ENTRY_POINT_GROUP else [])
    assert strategies.get("my-plugin").summary == "a third-party strategy"
    assert registry.names()[-1] == "my-plugin"


def test_a_plugin_that_is_not_a_strategy_is_refused(monkeypatch):
    ep = EntryPoint(name="bad", value="tsobench.strategies.base:APIS", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep])
    with pytest.raises(TypeError, match=r"not a tsobench\.strategies\.Strategy"):
        registry.names()


@pytest.fixture
def stopped_server(tmp_path):
    """A server frozen with SIGSTOP: it accepts connections and answers nothing."""
    import os
    import signal

    from tsobench.server import ChildServer, ServerConfig

    with ChildServer(ServerConfig(data_dir=str(tmp_path))) as server:
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            yield server
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)


@pytest.mark.parametrize("api", strategies.APIS)
@pytest.mark.parametrize("name", SAFE)
def test_a_stopped_server_gives_timeouts_not_hangs(stopped_server, name, api):
    config = RunConfig(strategy=name, api=api, concurrency=4, duration_s=0.8, warmup_s=0, timeout_s=0.4, cluster_id=1)
    started = time.monotonic()
    result = run_shard(ShardConfig(config, 0, stopped_server.address))
    assert time.monotonic() - started < 0.8 + 0.4 + 2.0 + 2.5  # window, deadline, drain, close: bounded
    assert result.hung == 0
    assert result.errors.get("timeout", 0) > 0, result.errors


def test_closing_a_thread_dispatcher_fails_its_waiting_callers_cleanly(stopped_server):
    """Callers waiting on a stalled stream get an error when the client closes; no background thread dies."""
    crashes = []
    previous, threading.excepthook = threading.excepthook, crashes.append
    try:
        options = strategies.ClientOptions(stopped_server.address, cluster_id=1, timeout_s=30)
        client = strategies.get("dispatcher").thread(options)
        client.open()
        errors = []

        def call():
            try:
                client.get_ts()
            except Exception as exc:
                errors.append(exc)

        callers = [threading.Thread(target=call) for _ in range(4)]
        for t in callers:
            t.start()
        time.sleep(0.3)
        client.close()
        for t in callers:
            t.join(5)
        time.sleep(0.2)
    finally:
        threading.excepthook = previous
    assert len(errors) == 4
    assert all(not t.is_alive() for t in callers)
    assert crashes == []
