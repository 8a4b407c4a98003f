"""--target-metrics reads PD v8.5, v26, the TSO microservice and tsobench's own names.

The samples in data/ are written in PD's exposition format (client_golang's text output, with the
names, labels and buckets of tikv/pd v8.5.7 and v26.3.4); no live PD runs here."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from tsobench.bench.model.config import RunConfig
from tsobench.bench.runs import server_metrics
from tsobench.bench.runs.backend import RunError
from tsobench.server.metrics import ServerCounters

DATA = Path(__file__).parent / "data"


def test_each_dialect_gives_rpcs_timestamps_and_cpu():
    v26 = server_metrics.parse((DATA / "pd-v26.metrics").read_text())
    assert (v26.rpcs, v26.timestamps, v26.cpu_s, v26.source) == (100000, 412345, 1234.56, "pd v26")
    v85 = server_metrics.parse((DATA / "pd-v8.5.metrics").read_text())
    assert (v85.rpcs, v85.timestamps, v85.cpu_s, v85.source) == (100000, None, 1234.56, "pd v8.5")
    micro = server_metrics.parse((DATA / "pd-tso-microservice.metrics").read_text())
    assert (micro.rpcs, micro.timestamps, micro.source) == (820, None, "pd tso microservice")  # both groups
    own = server_metrics.parse("# TYPE tso_rpcs_total counter\ntso_rpcs_total 7\ntso_timestamps_total 70\n")
    assert (own.rpcs, own.timestamps, own.source) == (7, 70, "tsobench")


def test_an_endpoint_with_none_of_them_is_one_line():
    with pytest.raises(server_metrics.NoTsoMetrics, match="serves none of the TSO metrics") as caught:
        server_metrics.parse("# TYPE up gauge\nup 1\n")
    assert "\n" not in str(caught.value)


def test_fetch_and_check_through_http(http_stub):
    url = f"{http_stub.url}/metrics"
    config = RunConfig(strategy="pool", target="127.0.0.1:1", target_metrics=url)
    http_stub.text = (DATA / "pd-v26.metrics").read_text
    assert server_metrics.fetch(url, config).timestamps == 412345
    http_stub.text = lambda: "up 1\n"
    with pytest.raises(RunError, match=r"--target-metrics .* serves none of the TSO metrics"):
        server_metrics.check(url, config)


def window(rpcs: int, timestamps: int | None, cpu: float) -> tuple[ServerCounters, ServerCounters]:
    return ServerCounters(timestamps=0 if timestamps is not None else None), ServerCounters(
        rpcs=rpcs, timestamps=timestamps, cpu_s=cpu, source="pd v8.5"
    )


def test_a_v85_server_alone_takes_the_runs_timestamps_and_says_so():
    config = RunConfig(strategy="pool", target="127.0.0.1:1", concurrency=4)
    s = server_metrics.summary(config, *window(10_000, None, 0.5), 1.0, run_rpcs=10_000, run_timestamps=10_000)
    assert s is not None
    assert (s["timestamps"], s["timestamps_from"], s["others_rpcs"]) == (10_000, "run", None)
    assert s["cpu_us_per_ts"] == 50.0


def test_others_load_beyond_the_margin_is_recorded():
    config = RunConfig(strategy="pool", target="127.0.0.1:1", concurrency=4)
    s = server_metrics.summary(config, *window(20_000, None, 0.5), 1.0, run_rpcs=10_000, run_timestamps=10_000)
    assert s is not None
    assert (s["others_rpcs"], s["timestamps"], s["timestamps_from"]) == (10_000, None, "unknown")
    within = server_metrics.summary(config, *window(10_300, 10_300, 0.5), 1.0, run_rpcs=10_000, run_timestamps=1)
    assert within is not None and within["others_rpcs"] is None and within["timestamps_from"] == "server"


def test_a_run_against_an_endpoint_with_only_v85_pd_names(tmp_path, http_stub):
    """The server's RPCs and CPU from PD's names alone, the timestamps from the run (and it says so)."""
    from tsobench.bench.runs.runner import run
    from tsobench.server import ChildServer, ServerConfig

    url = f"{http_stub.url}/metrics"
    with ChildServer(ServerConfig(data_dir=str(tmp_path / "data"), pd_version="8.5")) as server:

        def pd_only() -> str:  # what a v8.5 PD serves: none of tsobench's own tso_* names
            with urllib.request.urlopen(server.metrics_url or "", timeout=5) as r:
                text = r.read().decode()
            own = ("tso_rpcs", "tso_timestamps", "tso_streams", "tso_errors", "tso_batch_size")
            return "".join(line + "\n" for line in text.splitlines() if not any(n in line for n in own))

        http_stub.text = pd_only
        config = RunConfig(
            strategy="pool", concurrency=4, duration_s=1.0, warmup_s=0.2, target=server.address, target_metrics=url
        )
        result = run(config)
    s = result.metrics["server"]
    assert s is not None and s["metrics_source"] == "pd v8.5" and s["timestamps_from"] == "run"
    assert s["rpcs"] > 0 and s["timestamps"] == result.metrics["timestamps"] and s["cpu_us_per_ts"] is not None
    assert s["others_rpcs"] is None
