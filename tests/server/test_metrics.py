"""Server counters: plain integers in-process, the same figures as Prometheus text for another process."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tsobench import pd_metrics as pd
from tsobench.protos import pdpb_pb2
from tsobench.server import ChildCluster, ServerConfig
from tsobench.server.config import DEFAULT_CLUSTER_ID
from tsobench.server.metrics import ServerCounters, ServerMetrics, counters_from_prometheus


def test_the_counters_and_the_prometheus_text_say_the_same():
    metrics = ServerMetrics()
    for _ in range(3):
        metrics.stream_opened()
    metrics.stream_closed()
    for count in (1, 2, 3, 4):
        metrics.answered(count)
    metrics.failed()
    snapshot = metrics.snapshot()
    assert (snapshot.rpcs, snapshot.timestamps, snapshot.streams_opened, snapshot.streams_open, snapshot.errors) == (
        4,
        10,
        3,
        2,
        1,
    )
    assert snapshot.mean_batch == 2.5 and snapshot.cpu_s is not None and snapshot.cpu_s > 0
    parsed = counters_from_prometheus(metrics.text().decode())
    assert parsed.rpcs == 4 and parsed.timestamps == 10 and parsed.streams_opened == 3
    assert parsed.streams_open == 2 and parsed.errors == 1


def test_text_without_the_process_collector_has_no_cpu_figure():
    parsed = counters_from_prometheus("tso_rpcs_total 7.0\n")
    assert parsed == ServerCounters(rpcs=7, cpu_s=None)
    assert ServerCounters().mean_batch == 0.0  # nothing answered: no batch, not a division by zero


def test_a_difference_keeps_the_open_streams_of_the_later_snapshot():
    before, after = ServerCounters(streams_opened=2, streams_open=2), ServerCounters(streams_opened=5, streams_open=1)
    assert (after - before).streams_opened == 3 and (after - before).streams_open == 1


def test_counters_without_a_cpu_figure_subtract_and_add_to_none():
    known, unknown = ServerCounters(rpcs=5, cpu_s=2.5), ServerCounters(rpcs=2, cpu_s=None)
    assert known - ServerCounters(rpcs=1, cpu_s=0.5) == ServerCounters(rpcs=4, cpu_s=2.0)
    assert (known - unknown).cpu_s is None and (known + unknown).cpu_s is None
    assert (known + known).cpu_s == 5.0


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample by its name as written (prometheus_client's parser would add ``_total`` to PD's counters)."""
    found = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name = fam.name if fam.type == "counter" and f"\n{fam.name}{{" in text else s.name
            found[(name, frozenset(s.labels.items()))] = s.value
    return found


def ask(stub, counts: list[int]) -> list:
    header = pdpb_pb2.RequestHeader(cluster_id=DEFAULT_CLUSTER_ID)
    return list(stub.Tso(iter([pdpb_pb2.TsoRequest(header=header, count=c) for c in counts]), timeout=5))


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, frozenset(labels.items()))]


def test_v26_names_count_each_request_once_and_its_count(start_inprocess_server, open_stub):
    server = start_inprocess_server(metrics_port=0)
    ask(open_stub(server.address), [1, 10, 100])
    text = scrape(server.server.metrics_port)
    assert value(text, "pd_server_handle_tso_duration_seconds_count") == 3
    assert value(text, "pd_server_handle_tso_batch_size_sum") == 111
    assert value(text, "pd_server_handle_tso_batch_size_bucket", le="8") == 1  # counts 1 (and 10, 100 above)
    assert value(text, "pd_server_handle_tso_batch_size_bucket", le="128") == 3
    assert value(text, "tso_rpcs_total") == 3 and value(text, "tso_timestamps_total") == 111
    assert value(text, "pd_tso_role", group="0") == 1
    assert value(text, "service_member_role", service="PD") == 1
    assert value(text, "pd_cluster_tso", type="tso", group="0") > 1.7e12  # Unix ms
    for kind in pd.TSO_EVENT_TYPES:  # every type, from the start
        assert ("pd_tso_events", frozenset({"type": kind, "group": "0"}.items())) in samples(text)
    assert value(text, "pd_tso_events", type="sync_ok", group="0") == 1
    assert value(text, "pd_tso_events", type="not_leader", group="0") == 0  # nothing that did not happen
    assert value(text, "pd_cluster_tso_gap_millionseconds", group="group") >= 0  # PD's literal label value
    les = [
        s.labels["le"]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "pd_server_handle_tso_duration_seconds_bucket"
    ]
    assert les == [pd.number(b) for b in pd.E05] + ["+Inf"]


def test_v85_adds_dc_global_and_has_no_batch_size_histogram(start_inprocess_server, open_stub):
    server = start_inprocess_server(metrics_port=0, pd_version="8.5")
    ask(open_stub(server.address), [5])
    text = scrape(server.server.metrics_port)
    assert "pd_server_handle_tso_batch_size" not in text
    assert value(text, "pd_server_handle_tso_duration_seconds_count") == 1
    assert value(text, "pd_tso_role", group="0", dc="global") == 1
    assert value(text, "pd_cluster_tso", type="tso", group="0", dc="global") > 0
    assert value(text, "pd_tso_events", type="save", group="0", dc="global") >= 0
    assert 'type="not_allowed_save_timestamp"' not in text  # v26.3 on


def test_a_refused_request_is_timed_too(start_inprocess_server, open_stub):
    server = start_inprocess_server(metrics_port=0, fail_rate=1.0)
    with pytest.raises(grpc.RpcError):
        ask(open_stub(server.address), [1])
    text = scrape(server.server.metrics_port)
    assert value(text, "pd_server_handle_tso_duration_seconds_count") == 1
    assert value(text, "tso_rpcs_total") == 0


def test_each_member_exports_its_own_role(tmp_path, open_stub):
    with ChildCluster(ServerConfig(data_dir=str(tmp_path / "data")), 3) as cluster:
        leader = cluster.wait_for_leader()
        ask(open_stub(cluster.members[leader].address), [1])
        roles = [value(scrape(m.metrics_port), "pd_tso_role", group="0") for m in cluster.members]
        assert roles == [1.0 if i == leader else 0.0 for i in range(3)]
        follower = scrape(cluster.members[(leader + 1) % 3].metrics_port)
        assert value(follower, "service_member_role", service="PD") == 0
        assert value(follower, "pd_cluster_tso", type="tso", group="0") == 0  # PD's followers show 0
