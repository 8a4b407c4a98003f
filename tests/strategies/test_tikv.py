"""tikv-client, the production client run as a reference strategy (skipped where the package is missing)."""

import pytest

from tsobench import strategies
from tsobench.bench.measure.shard import run_shard
from tsobench.bench.model.config import RunConfig, ShardConfig
from tsobench.options import ConfigError
from tsobench.strategies import tikv

pytestmark = pytest.mark.skipif(tikv.why_unavailable() is not None, reason=str(tikv.why_unavailable()))


def test_the_reference_client_gives_checked_timestamps(child_server):
    config = RunConfig(strategy="tikv-client", api="asyncio", concurrency=16, requests=800, warmup_s=0)
    result = run_shard(ShardConfig(config, 0, child_server.address))
    assert result.errors == {}
    assert result.requests_ok == result.checked == 800
    assert (result.ranges.duplicates, result.non_monotonic, result.mismatched) == (0, 0, 0)


def test_it_is_marked_as_a_reference_with_only_the_asyncio_api():
    strategy = strategies.get("tikv-client")
    record = strategy.record(strategies.ClientOptions("h:1"), 16)
    assert record["reference"] is True and record["benchmark"] is False
    assert record["bound"]["in_flight"] == 16
    assert strategy.apis == ("asyncio",)


def test_tls_is_refused_with_a_clear_message():
    with pytest.raises(ConfigError, match="without TLS"):
        strategies.get("tikv-client").asyncio(strategies.ClientOptions("h:1", cacert="ca.pem"))
