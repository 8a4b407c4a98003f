"""The Strategy record and ClientOptions' checks (the one place they live)."""

import pytest

from tsobench import strategies
from tsobench.bench.model.config import RunConfig
from tsobench.options import ConfigError
from tsobench.strategies import ClientOptions, Strategy, registry
from tsobench.strategies.pool import AsyncClient, ThreadClient


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("locked", {}, (1, "requests")),
        ("pool", {"pool_size": 5}, (5, "requests")),
        ("per-request", {}, (64, "requests")),
        ("dispatcher", {"streams": 2, "max_inflight": 3, "rpc_concurrency": 4}, (24, "batches")),
    ],
)
def test_each_design_states_its_bound(name, options, expected):
    record = strategies.get(name).record(ClientOptions("h:1", **options), 64)
    assert (record["bound"]["in_flight"], record["bound"]["unit"]) == expected
    assert record["bound"]["why"]


@pytest.mark.parametrize("name", ["null", "unsafe-shared"])
def test_the_baseline_and_the_control_state_no_bound_and_skip_the_benchmark_suite(name):
    record = strategies.get(name).record(ClientOptions("h:1"), 8)
    assert record["bound"] is None
    assert record["benchmark"] is False


def test_the_record_carries_what_reports_need_without_the_registry():
    record = strategies.get("dispatcher").record(ClientOptions("h:1"), 8)
    assert set(record) == {
        "name",
        "safe",
        "baseline",
        "reference",
        "summary",
        "settings",
        "bound",
        "recovery",
        "fewest_failures",
        "benchmark",
        "overrun_s",
    }
    assert "rpc_concurrency" in record["settings"]
    assert record["recovery"]["kill"].startswith("one reconnect")
    assert strategies.get("pool").record(ClientOptions("h:1"), 8)["settings"] == ["pool_size"]
    assert strategies.get("locked").fewest_failures


def test_every_settings_key_is_a_run_option():
    fields = set(RunConfig.__dataclass_fields__)
    for strategy in registry.BUILTIN + registry.REFERENCE:
        assert set(strategy.settings) <= fields, strategy.name


def test_a_plugin_written_before_the_knowledge_fields_still_works():
    old = Strategy("old", "a plugin of before", ThreadClient, AsyncClient)
    record = old.record(ClientOptions("h:1"), 4)
    assert record["bound"] is None and record["recovery"] == {} and record["settings"] == []
    assert (old.benchmark, old.reference, old.apis, old.max_count) == (True, False, ("thread", "asyncio"), None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cert": "c.pem"}, "--cert and --key go together"),
        ({"rpc_concurrency": 2, "batch_wait_us": 100}, "does not go with --batch-wait-us"),
        ({"rpc_concurrency": 0}, "rpc-concurrency must be at least 1"),
    ],
)
def test_client_options_refuse_what_does_not_go_together(options, message):
    with pytest.raises(ConfigError, match=message):
        ClientOptions("h:1", **options)


def test_run_config_relies_on_the_client_options_checks(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="--cert and --key go together"):
        RunConfig(strategy="pool", target="h:1", cert=str(cert))
    with pytest.raises(ConfigError, match="does not go with --batch-wait-us"):
        RunConfig(strategy="dispatcher", rpc_concurrency=2, batch_wait_us=50)
    assert RunConfig(strategy="dispatcher", rpc_concurrency=4).client_options("h:1").rpc_concurrency == 4


def test_a_client_option_is_declared_once_and_a_misspelt_one_is_an_error():
    from tsobench.options import specs
    from tsobench.strategies.base import CLIENT_FIELDS, client_option, client_values

    by_key = {s.key: s for s in specs(RunConfig)}
    for name in CLIENT_FIELDS:  # the run's option is the client's declaration, bounds and help alike
        assert by_key[name].option is ClientOptions.__dataclass_fields__[name].metadata["tsobench.option"]
    with pytest.raises(TypeError, match="'stream' is not a client option"):
        client_option("stream")
    with pytest.raises(TypeError, match="lacks the client option"):
        client_values(object())
    with pytest.raises(ConfigError, match="pool-size must be at least 1"):
        ClientOptions("h:1", pool_size=0)  # the declared bound, not a second hand-written check


def test_a_plugin_with_a_longer_backoff_states_it_and_the_run_s_timing_follows():
    slow = Strategy("slow", "backs off for 3 s", ThreadClient, AsyncClient, overrun_s=lambda options: 3.0)
    stated = slow.record(ClientOptions("h:1", timeout_s=1.0), 4)["overrun_s"]
    builtin = strategies.get("pool").record(ClientOptions("h:1", timeout_s=1.0), 4)["overrun_s"]
    assert stated == 3.0 and builtin < 1.0  # the built-ins' shared parts: 0.5 s backoff + a watchdog period
    config = RunConfig(strategy="pool", timeout_s=1.0)
    assert config.late_s(stated) - config.late_s(builtin) == pytest.approx(3.0 - builtin)
    assert config.recovery_horizon_s(stated) > config.late_s(stated)
