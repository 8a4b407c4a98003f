"""Server counters: plain integers in-process, the same figures as Prometheus text for another process."""

from __future__ import annotations

from prometheus_client import generate_latest

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
    parsed = counters_from_prometheus(generate_latest(metrics.registry).decode())
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
