"""Every strategy on both APIs against a real server (a child process)."""

import asyncio
import time

import pytest

from tsobench import strategies
from tsobench.bench.measure.shard import run_shard
from tsobench.bench.model.config import RunConfig, ShardConfig


@pytest.mark.parametrize("api", strategies.APIS)
def test_safe_strategies_give_zero_violations_under_concurrency(child_server, safe_strategy, api):
    config = RunConfig(strategy=safe_strategy, api=api, concurrency=32, requests=640, warmup_s=0, count=3, timeout_s=10)
    result = run_shard(ShardConfig(config, 0, child_server.address))
    assert result.errors == {}
    assert result.requests_ok == 640
    assert result.timestamps == 640 * 3
    assert result.checked == 640 * 3
    assert (result.ranges.duplicates, result.non_monotonic, result.mismatched) == (0, 0, 0)


def test_a_stream_aborted_by_the_server_fails_the_request_with_its_status(safe_strategy, tmp_path):
    from tsobench.server import ChildServer, ServerConfig

    with ChildServer(ServerConfig(data_dir=str(tmp_path), fail_rate=1.0)) as bad:
        client = strategies.get(safe_strategy).thread(strategies.ClientOptions(bad.address, timeout_s=3))
        client.open()
        try:
            with pytest.raises(Exception) as failure:
                client.get_ts()
            assert "UNAVAILABLE" in str(failure.value) or "injected" in str(failure.value)
        finally:
            client.close()


def test_clients_recover_on_a_healthy_server_after_errors(child_server, safe_strategies):
    """Each safe strategy answers again after a request failed on a bad count."""
    for name in safe_strategies:
        client = strategies.get(name).thread(strategies.ClientOptions(child_server.address, timeout_s=3))
        client.open()
        try:
            with pytest.raises(Exception, match=r"INVALID_ARGUMENT|invalid count"):
                client.get_ts(1 << 18)
            assert client.get_ts().logical > 0
        finally:
            client.close()


def test_async_clients_recover_after_errors(child_server, safe_strategies):
    async def check(name: str) -> None:
        client = strategies.get(name).asyncio(strategies.ClientOptions(child_server.address, timeout_s=3))
        await client.open()
        try:
            with pytest.raises(Exception, match=r"INVALID_ARGUMENT|invalid count"):
                await client.get_ts(1 << 18)
            assert (await client.get_ts()).logical > 0
        finally:
            await client.close()

    for name in safe_strategies:
        asyncio.run(check(name))


@pytest.mark.serial  # timing: runs alone, after the parallel phase
@pytest.mark.parametrize("api", strategies.APIS)
def test_a_stopped_server_gives_timeouts_not_hangs(stopped_server, safe_strategy, api):
    config = RunConfig(
        strategy=safe_strategy, api=api, concurrency=4, duration_s=0.8, warmup_s=0, timeout_s=0.4, cluster_id=1
    )
    started = time.monotonic()
    result = run_shard(ShardConfig(config, 0, stopped_server.address))
    assert time.monotonic() - started < 0.8 + 0.4 + 2.0 + 2.5  # window, deadline, drain, close: bounded
    assert result.hung == 0
    assert result.errors.get("timeout", 0) > 0, result.errors
