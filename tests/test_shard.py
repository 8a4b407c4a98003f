"""One shard in-process: load shapes, warm-up, deadlines, a server that dies."""

import threading
import time

import pytest

from tsobench.bench import latency
from tsobench.bench.config import RunConfig, ShardConfig
from tsobench.bench.shard import run_shard
from tsobench.server import ChildServer


def shard(config: RunConfig, target: str) -> ShardConfig:
    return ShardConfig(config, 0, target)


@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_open_loop_honours_the_rate(child_server, api):
    config = RunConfig(strategy="dispatcher", api=api, concurrency=8, rate=400, duration_s=1.5, warmup_s=0.2)
    result = run_shard(shard(config, child_server.address))
    sent = result.requests_ok + result.requests_failed
    # Poisson with mean 600: +-20% is more than 4 standard deviations.
    assert 480 <= sent <= 720
    corrected = latency.decode(result.latency)
    uncorrected = latency.decode(result.latency_uncorrected)
    assert corrected.get_total_count() == uncorrected.get_total_count() == sent + result.censored
    assert corrected.get_max_value() >= uncorrected.get_max_value()


def test_requests_mode_runs_exactly_the_quota(child_server):
    config = RunConfig(strategy="pool", api="thread", concurrency=7, requests=100, warmup_s=0)
    result = run_shard(shard(config, child_server.address))
    assert result.requests_ok == 100
    assert latency.decode(result.latency).get_total_count() == 100


def test_warmup_is_excluded_from_the_figures(child_server):
    config = RunConfig(strategy="locked", api="asyncio", concurrency=2, duration_s=0.5, warmup_s=0.5)
    result = run_shard(shard(config, child_server.address))
    assert result.checked > result.timestamps  # warm-up replies were checked, not counted
    assert latency.decode(result.latency).get_total_count() == result.requests_ok + result.censored


@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_a_server_stopped_mid_run_gives_errors_not_a_hang(api):
    server = ChildServer().start()
    config = RunConfig(strategy="dispatcher", api=api, concurrency=8, duration_s=2.5, warmup_s=0, timeout_s=1)
    threading.Timer(0.8, server.kill).start()
    started = time.monotonic()
    try:
        result = run_shard(shard(config, server.address))
    finally:
        server.close()
    assert time.monotonic() - started < 2.5 + 1 + 2 + 3
    assert result.requests_ok > 0
    assert result.requests_failed > 0
    assert set(result.errors) & {"UNAVAILABLE", "CANCELLED", "timeout", "hung", "ConnectionError", "INTERNAL"}


def test_thread_callers_stuck_past_the_deadline_are_reported_as_hung(child_server, monkeypatch):
    """A client whose get_ts never returns: the shard gives up on it and says so."""
    from tsobench import strategies

    class Stuck:
        def __init__(self, options):
            self.release = threading.Event()

        def open(self):
            pass

        def get_ts(self, count=1):
            self.release.wait(30)
            raise TimeoutError

        def close(self):
            self.release.set()

    stuck = strategies.Strategy("stuck", "never answers", Stuck, Stuck)
    monkeypatch.setattr(strategies, "get", lambda name: stuck)
    config = RunConfig(strategy="dispatcher", concurrency=3, duration_s=0.2, warmup_s=0, timeout_s=0.5)
    started = time.monotonic()
    result = run_shard(shard(config, child_server.address))
    assert time.monotonic() - started < 8
    assert result.hung == 3
    assert result.errors == {"hung": 3}
