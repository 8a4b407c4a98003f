"""Whole runs: spawned shard processes, merging, the unsafe control."""

import socket
import time

import pytest

from tsobench.bench.measure import latency
from tsobench.bench.measure.fairness import fairness
from tsobench.bench.model import results
from tsobench.bench.model.config import RunConfig
from tsobench.bench.runs.runner import run


def test_multi_process_merge_is_exact(child_server):
    config = RunConfig(
        strategy="dispatcher",
        api="asyncio",
        concurrency=4,
        processes=2,
        requests=400,
        warmup_s=0,
        target=child_server.address,
        target_metrics=child_server.metrics_url,
    )
    result = run(config)
    m = result.metrics
    assert m["requests_ok"] == 400
    assert sum(s["requests_ok"] for s in result.shards) == 400
    assert [s["index"] for s in result.shards] == [0, 1]
    assert [(s["host"], s["worker"]) for s in result.shards] == [(socket.gethostname(), None)] * 2
    assert result.environment["scheduler"] is None and set(result.environment["hosts"]) == {socket.gethostname()}
    assert latency.decode(result.histograms["latency"]).get_total_count() == 400
    assert result.correctness == {
        "checked": 400,
        "duplicates": 0,
        "non_monotonic": 0,
        "mismatched": 0,
        "violations": 0,
        "non_monotonic_per_caller": 0,
    }
    assert m["server"]["timestamps"] == 400  # no warm-up: the server's window is the whole run
    assert result.clean


def test_embedded_server_run_records_everything_the_schema_names(tmp_path):
    config = RunConfig(strategy="pool", api="thread", concurrency=4, duration_s=0.5, warmup_s=0.2, rate=200)
    result = run(config, command=["tsobench", "run"])
    path = results.write(result, tmp_path / "r.json")
    data = results.read(path).to_dict()
    for key in (
        "schema_version",
        "run_id",
        "started_at",
        "config",
        "environment",
        "metrics",
        "correctness",
        "histograms",
    ):
        assert key in data
    for key in (
        "requests_ok",
        "requests_failed",
        "timestamps",
        "throughput_rps",
        "throughput_tps",
        "latency_us",
        "errors",
        "streams_opened",
        "client_cpu_s",
        "server",
    ):
        assert key in data["metrics"]
    assert set(data["metrics"]["latency_us"]) == {"p50", "p90", "p99", "p999", "max", "mean"}
    assert set(data["metrics"]["server"]) >= {"rpcs", "timestamps", "streams", "mean_batch"}
    assert set(data["correctness"]) == {
        "checked",
        "duplicates",
        "non_monotonic",
        "mismatched",
        "violations",
        "non_monotonic_per_caller",
    }
    assert set(data["histograms"]) == {"latency", "latency_uncorrected"}
    assert {"python", "grpcio", "protobuf", "platform", "cpu_count", "git_commit"} <= set(data["environment"])
    assert data["config"]["server"] == {
        "delay_ms": 0.0,
        "jitter_ms": 0.0,
        "fail_rate": 0.0,
        "rtt_ms": 0.0,
        "rtt_jitter_ms": 0.0,
    }
    assert data["metrics"]["client_cpu_s"] > 0


@pytest.mark.serial  # timing: runs alone, after the parallel phase
@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_unsafe_shared_is_caught_and_the_harness_returns_within_its_limit(child_server, api):
    config = RunConfig(
        strategy="unsafe-shared",
        api=api,
        concurrency=16,
        duration_s=1.5,
        warmup_s=0,
        timeout_s=1,
        target=child_server.address,
    )
    started = time.monotonic()
    result = run(config)
    assert time.monotonic() - started < config.hard_limit_s + 15
    assert result.correctness["violations"] + result.metrics["requests_failed"] > 0
    assert not result.clean


def test_results_of_another_schema_version_are_refused(tmp_path):
    path = tmp_path / "old.json"
    path.write_text('{"schema_version": 999}')
    with pytest.raises(ValueError, match="schema_version"):
        results.read(path)


def test_fairness_merges_across_processes():
    config = RunConfig(strategy="null", api="asyncio", concurrency=3, processes=2, duration_s=0.5, warmup_s=0)
    result = run(config)
    per_shard = [s["completions_per_caller"] for s in result.shards]
    assert [len(c) for c in per_shard] == [3, 3]
    assert result.metrics["fairness"] == fairness(per_shard[0] + per_shard[1])
    assert result.metrics["callers"] == 6
    assert result.judgement.clean


def test_the_embedded_server_serves_admin_only_with_faults_and_only_to_its_token(capfd):
    import grpc

    from tsobench.bench.model.faults import Fault
    from tsobench.bench.runs.runner import serving
    from tsobench.server.admin import AdminClient

    with serving(RunConfig(strategy="locked")) as plain:
        assert plain.server is not None and not plain.server.config.admin
        with pytest.raises(grpc.RpcError) as off:
            AdminClient(plain.address).stall(5)
        assert off.value.code() == grpc.StatusCode.UNIMPLEMENTED
    faults = (Fault.parse("stall@1s:100ms"),)
    with serving(RunConfig(strategy="locked", faults=faults)) as faulty:
        assert faulty.server is not None and faulty.server.config.admin
        with pytest.raises(grpc.RpcError) as stranger:
            AdminClient(faulty.address).stall(5)  # no token
        assert stranger.value.code() == grpc.StatusCode.UNAUTHENTICATED
        faulty.server.admin("Stall", duration_s=0.01)  # the harness knows it
    assert "warning" not in capfd.readouterr().err  # loopback: nothing exposed
