"""Server counters, kept as plain integers and bucket counts (cheap in the request path, read
in-process as they are) and served on /metrics under two sets of names: this project's own
``tso_*`` and PD's (``tsobench.pd_metrics``: ``pd_server_handle_tso_duration_seconds``,
``pd_server_handle_tso_batch_size``, ``pd_tso_events``, ``pd_cluster_tso``, ...), so that PD's
own Grafana dashboard and alert rules work on a tsobench server.

``--pd-version`` picks the release whose label set is served: 8.5 adds ``dc="global"`` to every
allocator series and has no batch-size histogram (it first shipped in v26.3).

The server's own CPU time (process user+sys, ``process_cpu_seconds_total`` as every Prometheus
client exports it, a real PD included) is what a capacity ceiling rests on: how much of its
cores the server spent on the RPCs it answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from tsobench import __version__
from tsobench import pd_metrics as pd
from tsobench.pd_metrics import Buckets

from .oracle import wall_clock_ms

if TYPE_CHECKING:
    from .leadership import Member, Solo

UPDATE_S = 0.05  # PD's updatePhysicalInterval
SLOW_SAVE_MS = 3 * UPDATE_S * 1000  # PD counts slow_save when an update comes this late
MAXPROCS = 1  # the server is one asyncio loop: one core at most (PD exports GOMAXPROCS)
# PD creates the gap gauge with WithLabelValues(groupLabel), so its label value is the literal "group" (a bug in
# v8.5 and v26 alike): served as PD serves it, so that a query written against PD matches here too.
GAP_GROUP = "group"


@dataclass(frozen=True)
class ServerCounters:
    """A snapshot; subtract two to get what happened in between, add a cluster's members' up.

    ``timestamps`` is None where the server does not say (a v8.5 PD or the TSO microservice:
    no batch-size histogram); ``source`` names the metric names it was read from."""

    rpcs: int = 0
    timestamps: int | None = 0
    streams_opened: int = 0
    streams_open: int = 0
    errors: int = 0
    cpu_s: float | None = 0.0  # the server process's user+sys; None: the server does not say (no /proc)
    source: str = "tsobench"

    def __sub__(self, other: ServerCounters) -> ServerCounters:
        return ServerCounters(
            rpcs=self.rpcs - other.rpcs,
            timestamps=_either(self.timestamps, other.timestamps, lambda a, b: a - b),
            streams_opened=self.streams_opened - other.streams_opened,
            streams_open=self.streams_open,
            errors=self.errors - other.errors,
            cpu_s=_either(self.cpu_s, other.cpu_s, lambda a, b: a - b),
            source=self.source,
        )

    def __add__(self, other: ServerCounters) -> ServerCounters:
        return ServerCounters(
            rpcs=self.rpcs + other.rpcs,
            timestamps=_either(self.timestamps, other.timestamps, lambda a, b: a + b),
            streams_opened=self.streams_opened + other.streams_opened,
            streams_open=self.streams_open + other.streams_open,
            errors=self.errors + other.errors,
            cpu_s=_either(self.cpu_s, other.cpu_s, lambda a, b: a + b),
            source=self.source,
        )

    @property
    def mean_batch(self) -> float:
        return (self.timestamps or 0) / self.rpcs if self.rpcs else 0.0


def _either(a: Any, b: Any, op: Callable[[Any, Any], Any]) -> Any:
    return None if a is None or b is None else op(a, b)


class ServerMetrics:
    """What the service counts. The request path adds to integers and does two bisects; the
    exposition text is built when scraped (in the metrics endpoint's thread)."""

    def __init__(self, pd_version: str = pd.NEWEST, cluster_id: int = 0) -> None:
        self.version = pd_version
        self.cluster_id = cluster_id
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total and friends (where /proc is)
        self._counts = dict.fromkeys(("rpcs", "timestamps", "streams_opened", "streams_open", "errors"), 0)
        self._own_batch = Buckets(pd.OWN_BATCH)
        self._duration = Buckets(pd.E05)  # pd_server_handle_tso_duration_seconds
        self._batch = Buckets(pd.E1)  # pd_server_handle_tso_batch_size
        self.events = dict.fromkeys(pd.TSO_EVENT_TYPES, 0)  # pd_tso_events: every type at 0 from the start, as PD
        self.started_s = time.time()
        self._role: Solo | Member | None = None

    # ------------------------------------------------------------ the request path

    def stream_opened(self) -> None:
        self._counts["streams_opened"] += 1
        self._counts["streams_open"] += 1

    def stream_closed(self) -> None:
        self._counts["streams_open"] -= 1

    def asked(self, count: int) -> None:
        """A TsoRequest's count, before its timestamps are generated (PD's batch-size histogram)."""
        self._batch.observe(count)

    def handled(self, seconds: float) -> None:
        """A TsoRequest handled (answered or refused): PD's duration histogram."""
        self._duration.observe(seconds)

    def answered(self, count: int) -> None:
        self._counts["rpcs"] += 1
        self._counts["timestamps"] += count
        self._own_batch.observe(count)

    def failed(self) -> None:
        self._counts["errors"] += 1

    def event(self, kind: str) -> None:
        """A ``pd_tso_events`` type that happened here (never one that did not)."""
        self.events[kind] += 1

    def snapshot(self) -> ServerCounters:
        """In-process: the CPU time is this whole process's (an ``InProcessServer`` shares it with its host)."""
        c = self._counts
        return ServerCounters(
            c["rpcs"], c["timestamps"], c["streams_opened"], c["streams_open"], c["errors"], time.process_time()
        )

    # ------------------------------------------------------------ the allocator's update loop

    async def tick(self, role: Solo | Member) -> None:
        """PD's update tick, and the events PD counts in it: ``save`` on every tick of a serving
        leader, ``slow_save`` when the tick came more than 3 updates late, ``system_time_slow``
        when the wall clock is behind the TSO, ``skip_save`` when physical did not move,
        ``sync``/``sync_ok`` when a leader starts a term, ``not_leader_anymore`` when it ends one."""
        first, self._role = self._role is None, role
        before = role.oracle()
        physical = before.physical if before is not None else 0
        now = wall_clock_ms()
        await role.tick()
        after = role.oracle()
        if after is None:
            if before is not None:
                self.event("not_leader_anymore")
            return
        if after is not before or first:  # a term begins (a lone server's at its first tick)
            self.event("sync")
            self.event("sync_ok")
            return
        self.event("save")
        lag = now - physical
        if lag > SLOW_SAVE_MS:
            self.event("slow_save")
        if lag < 0:
            self.event("system_time_slow")
        if after.physical == physical:
            self.event("skip_save")

    # ------------------------------------------------------------ exposition

    def text(self) -> bytes:
        """/metrics: the process's, this project's own names, then PD's at ``self.version``."""
        return generate_latest(self.registry) + (self._own_text() + self._pd_text()).encode()

    def _own_text(self) -> str:
        c = dict(self._counts)
        out = [pd.render(pd.family(f"tso_{k}_total"), [({}, c[k])]) for k in ("rpcs", "timestamps", "streams_opened")]
        out.append(pd.render(pd.family("tso_streams_open"), [({}, c["streams_open"])]))
        out.append(pd.render(pd.family("tso_errors_total"), [({}, c["errors"])]))
        out.append(_histogram("tso_batch_size", self._own_batch, self.version))
        return "".join(out)

    def _pd_text(self) -> str:
        v = self.version
        group: dict[str, str] = {"group": pd.GROUP, "dc": "global"}
        oracle = self._role.oracle() if self._role is not None else None
        leading = oracle is not None
        physical = oracle.physical if oracle is not None else 0
        gap = max(0, wall_clock_ms() - physical) if oracle is not None else 0
        out = [_histogram("pd_server_handle_tso_duration_seconds", self._duration, v)]
        if v in pd.family("pd_server_handle_tso_batch_size").versions:
            out.append(_histogram("pd_server_handle_tso_batch_size", self._batch, v))
        events = [
            ({**group, "type": t}, n) for t, n in self.events.items() if v == "26" or t not in pd.NEW_IN_26_EVENTS
        ]
        out.append(pd.render(pd.family("pd_tso_events"), events, v))
        out.append(pd.render(pd.family("pd_cluster_tso"), [({**group, "type": "tso"}, physical)], v))
        gap_labels = {"group": GAP_GROUP, "dc": "global"}
        out.append(pd.render(pd.family("pd_cluster_tso_gap_millionseconds"), [(gap_labels, gap)], v))
        out.append(pd.render(pd.family("pd_tso_role"), [(group, int(leading))], v))
        out.append(pd.render(pd.family("service_member_role"), [({"service": "PD"}, int(leading))], v))
        metadata = {"type": f"cluster{self.cluster_id}"}
        out.append(pd.render(pd.family("pd_cluster_metadata"), [(metadata, 0)], v))
        out.append(pd.render(pd.family("pd_service_maxprocs"), [({}, MAXPROCS)], v))
        out.append(pd.render(pd.family("pd_service_memory_quota_bytes"), [({}, 0)], v))
        info = {"version": f"tsobench-{__version__}", "hash": f"pd-v{v}-names"}
        out.append(pd.render(pd.family("pd_server_info"), [(info, round(self.started_s))], v))
        return "".join(out)


def _histogram(name: str, buckets: Buckets, version: str) -> str:
    counts = list(buckets.counts)  # one copy: a request counted meanwhile shows at the next scrape
    return pd.render_histogram(pd.family(name), [({}, counts, buckets.sum)], version)


def counters_from_prometheus(text: str) -> ServerCounters:
    """Parse the exposition text of /metrics back into a snapshot (``bench.runs.server_metrics``
    reads PD's names, the TSO microservice's and these)."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            values[sample.name] = sample.value
    return ServerCounters(
        rpcs=int(values.get("tso_rpcs_total", 0)),
        timestamps=int(values.get("tso_timestamps_total", 0)),
        streams_opened=int(values.get("tso_streams_opened_total", 0)),
        streams_open=int(values.get("tso_streams_open", 0)),
        errors=int(values.get("tso_errors_total", 0)),
        cpu_s=values.get("process_cpu_seconds_total"),
    )
