"""What a run is asked to do: checks with the command line's messages, and what follows from a config."""

from __future__ import annotations

import dataclasses

import pytest

from tsobench.bench.model.config import DEFAULT_DURATION_S, RunConfig, ServerKnobs, ShardConfig
from tsobench.bench.model.faults import Fault
from tsobench.options import ConfigError


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"duration_s": 1.0, "requests": 10}, "not both"),
        ({"target": "nohost"}, "HOST:PORT"),
        ({"target": "a:1", "server_members": 3}, "--server-members is for the embedded server"),
        ({"target": "a:1", "server": ServerKnobs(delay_ms=5)}, "is for the embedded server, not --target"),
        ({"cacert": "ca.pem"}, "need --target"),
        ({"target": "a:1", "cacert": "/no/such/ca.pem"}, "--cacert /no/such/ca.pem: no such file"),
        ({"scheduler": "nowhere"}, "--scheduler must be"),
        ({"scheduler": "tcp://10.0.0.9:8786"}, "give --server-host"),
        ({"server_host": "0.0.0.0"}, "not a wildcard"),
        ({"server_host": "10.0.0.1", "target": "a:1"}, "does not go with --target"),
        ({"faults": (Fault.parse("abort@1s"),), "target": "a:1"}, "faults cannot be injected into a --target"),
        ({"faults": (Fault.parse("abort@1s"),), "requests": 10}, "--fault needs --duration"),
        ({"faults": (Fault.parse("abort@5s"),), "duration_s": 2.0}, "not inside the 2s measured window"),
        ({"faults": (Fault.parse("abort@1s"),), "duration_s": 2.0, "server_members": 3}, "a single embedded"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_a_bad_config_is_refused_with_one_line_that_names_the_option(options, message):
    with pytest.raises(ConfigError, match=message) as refused:
        RunConfig(strategy="locked", **options)
    assert "\n" not in str(refused.value)


def test_a_remote_scheduler_on_loopback_or_with_a_reachable_server_is_accepted():
    assert RunConfig(strategy="locked", scheduler="tcp://127.0.0.1:8786").local_scheduler
    remote = RunConfig(strategy="locked", scheduler="tcp://10.0.0.9:8786", server_host="10.0.0.1")
    assert not remote.local_scheduler


def test_the_window_is_the_duration_the_default_or_none_with_a_quota():
    assert RunConfig(strategy="locked").window_s == DEFAULT_DURATION_S
    assert RunConfig(strategy="locked", duration_s=2.5).window_s == 2.5
    assert RunConfig(strategy="locked", requests=100).window_s is None


def test_limits_grow_with_what_the_run_may_take():
    short = RunConfig(strategy="locked", duration_s=1.0, warmup_s=0.5, timeout_s=1.0)
    assert short.expected_seconds() == 1.5
    longer = dataclasses.replace(short, duration_s=10.0)
    assert longer.hard_limit_s - short.hard_limit_s == pytest.approx(9.0)
    assert short.hard_limit_s > short.expected_seconds() + short.timeout_s
    # a wait longer than late_s is hung: past the deadline, and a later deadline means later
    assert short.late_s(0.0) > short.timeout_s
    assert short.late_s(2.0) > short.late_s(0.0)  # a strategy that states an overrun is given it
    assert dataclasses.replace(short, timeout_s=3.0).late_s(0.0) > short.late_s(0.0)
    assert short.recovery_horizon_s(0.0) > short.late_s(0.0)


def test_client_options_carry_the_same_named_fields_and_a_pool_size_from_the_callers():
    config = RunConfig(strategy="dispatcher", concurrency=3, max_batch=7, streams=2, timeout_s=1.5)
    options = config.client_options("127.0.0.1:1")
    assert (options.target, options.max_batch, options.streams, options.timeout_s) == ("127.0.0.1:1", 7, 2, 1.5)
    assert options.pool_size == 3  # min(concurrency, 8)
    assert RunConfig(strategy="pool", concurrency=64).client_options("x:1").pool_size == 8
    assert RunConfig(strategy="pool", pool_size=5).client_options("x:1").pool_size == 5


def test_shards_split_the_quota_exactly_and_the_rate_evenly():
    run = RunConfig(strategy="locked", concurrency=3, processes=2, requests=20)
    quotas = [ShardConfig(run, shard, "x:1").caller_quota(c) for shard in range(2) for c in range(3)]
    assert sum(quotas) == 20 and max(quotas) - min(quotas) <= 1
    assert ShardConfig(RunConfig(strategy="locked"), 0, "x:1").caller_quota(0) is None
    assert ShardConfig(RunConfig(strategy="locked", concurrency=4, rate=100), 0, "x:1").caller_rate() == 25
    assert ShardConfig(RunConfig(strategy="locked"), 0, "x:1").caller_rate() is None
    seeded = RunConfig(strategy="locked", seed=3)
    assert ShardConfig(seeded, 0, "x:1").seed != ShardConfig(seeded, 1, "x:1").seed  # each shard its own draws


def test_a_config_is_frozen_and_its_dict_is_every_field():
    config = RunConfig(strategy="locked", faults=(Fault.parse("abort@1s"),), duration_s=2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.concurrency = 2  # type: ignore[misc]
    data = config.to_dict()
    assert set(data) == {f.name for f in dataclasses.fields(RunConfig)}
    assert data["server"] == dataclasses.asdict(config.server)


def test_an_unknown_strategy_is_refused_at_once_and_what_cannot_run_here_when_asked():
    with pytest.raises(ConfigError, match="unknown strategy"):
        RunConfig(strategy="nope")
    RunConfig(strategy="locked", count=1000).runnable()
    config = RunConfig(strategy="tikv-client", api="asyncio", count=2)  # a plan may name a pair it skips
    with pytest.raises(ConfigError, match="tikv-client"):
        config.runnable()  # one timestamp per request at most (or not installed here): refused either way
