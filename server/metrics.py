"""Server counters, kept both as plain integers (cheap to read in-process) and
as Prometheus metrics (how the harness, and any monitoring stack, reads them
from another process).

The server's own CPU time (process user+sys, ``process_cpu_seconds_total`` as
every Prometheus client exports it, a real PD included) is what a capacity
ceiling rests on: how much of its cores the server spent on the RPCs it answered.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

BATCH_BUCKETS = tuple(float(1 << i) for i in range(18))


@dataclass(frozen=True)
class ServerCounters:
    """A snapshot; subtract two to get what happened in between, add a cluster's members' up."""

    rpcs: int = 0
    timestamps: int = 0
    streams_opened: int = 0
    streams_open: int = 0
    errors: int = 0
    cpu_s: float | None = 0.0  # the server process's user+sys; None: the server does not say (no /proc)

    def __sub__(self, other: ServerCounters) -> ServerCounters:
        return ServerCounters(
            rpcs=self.rpcs - other.rpcs,
            timestamps=self.timestamps - other.timestamps,
            streams_opened=self.streams_opened - other.streams_opened,
            streams_open=self.streams_open,
            errors=self.errors - other.errors,
            cpu_s=None if self.cpu_s is None or other.cpu_s is None else self.cpu_s - other.cpu_s,
        )

    def __add__(self, other: ServerCounters) -> ServerCounters:
        return ServerCounters(
            rpcs=self.rpcs + other.rpcs,
            timestamps=self.timestamps + other.timestamps,
            streams_opened=self.streams_opened + other.streams_opened,
            streams_open=self.streams_open + other.streams_open,
            errors=self.errors + other.errors,
            cpu_s=None if self.cpu_s is None or other.cpu_s is None else self.cpu_s + other.cpu_s,
        )

    @property
    def mean_batch(self) -> float:
        return self.timestamps / self.rpcs if self.rpcs else 0.0


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total and friends (where /proc is)
        self._rpcs = Counter("tso_rpcs", "TsoRequests answered", registry=self.registry)
        self._timestamps = Counter("tso_timestamps", "Timestamps handed out", registry=self.registry)
        self._opened = Counter("tso_streams_opened", "Tso streams opened", registry=self.registry)
        self._open = Gauge("tso_streams_open", "Tso streams open now", registry=self.registry)
        self._errors = Counter("tso_errors", "Tso streams ended by an error", registry=self.registry)
        self._batch = Histogram("tso_batch_size", "count per TsoRequest", buckets=BATCH_BUCKETS, registry=self.registry)
        self._counts = dict.fromkeys(("rpcs", "timestamps", "streams_opened", "streams_open", "errors"), 0)

    def stream_opened(self) -> None:
        self._counts["streams_opened"] += 1
        self._counts["streams_open"] += 1
        self._opened.inc()
        self._open.inc()

    def stream_closed(self) -> None:
        self._counts["streams_open"] -= 1
        self._open.dec()

    def answered(self, count: int) -> None:
        self._counts["rpcs"] += 1
        self._counts["timestamps"] += count
        self._rpcs.inc()
        self._timestamps.inc(count)
        self._batch.observe(count)

    def failed(self) -> None:
        self._counts["errors"] += 1
        self._errors.inc()

    def snapshot(self) -> ServerCounters:
        """In-process: the CPU time is this whole process's (an ``InProcessServer`` shares it with its host)."""
        return ServerCounters(**self._counts, cpu_s=time.process_time())


def counters_from_prometheus(text: str) -> ServerCounters:
    """Parse the exposition text of /metrics back into a snapshot."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = sample.value
    return ServerCounters(
        rpcs=int(values.get("tso_rpcs_total", 0)),
        timestamps=int(values.get("tso_timestamps_total", 0)),
        streams_opened=int(values.get("tso_streams_opened_total", 0)),
        streams_open=int(values.get("tso_streams_open", 0)),
        errors=int(values.get("tso_errors_total", 0)),
        cpu_s=values.get("process_cpu_seconds_total"),
    )
