"""Every Prometheus metric tsobench serves or reads, declared once: PD's own TSO names (pd-server,
the TSO microservice, the Go PD client, the process), as tikv/pd exports them, and this project's own.

From these declarations come the server's exposition (``tsobench serve``), the client's
(``run --metrics-port`` / ``--pushgateway``), the reading of ``--target-metrics``, the Grafana
dashboard's test and the README's table. Names, types, label names, buckets and help texts are
PD's, read from tikv/pd (v8.5.7, v26.3.4 and master): see the README's metrics section.

The exposition text is written here rather than by prometheus_client, because PD's counters
keep the names PD gives them (``pd_tso_events``, no ``_total``), which prometheus_client would
rename.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

PD_VERSIONS = ("8.5", "26")  # what `serve --pd-version` offers; the newest is the default
NEWEST = PD_VERSIONS[-1]
PD_RELEASES = {"8.5": "v8.5.x (read at v8.5.7)", "26": "v26.3.x and master (read at v26.3.4)"}
E05 = tuple(0.0005 * 2**i for i in range(13))  # ExponentialBuckets(0.0005, 2, 13): seconds
E1 = tuple(float(2**i) for i in range(13))  # ExponentialBuckets(1, 2, 13): batch sizes
CB = (1, 2, 4, 8, 10, 14, 18, 22, 26, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100, 110, 120, 140, 160, 180, 200, 500, 1000)
CLIENT_BATCH = tuple(float(b) for b in CB)  # the Go client's batch-size list
OWN_LATENCY = (5e-05, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
OWN_BATCH = tuple(float(1 << i) for i in range(18))  # tsobench's own tso_batch_size
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text exposition format
GROUP = "0"  # PD's built-in allocator's keyspace group
TSO_EVENT_TYPES = (
    "sync",
    "skip_sync",
    "sync_ok",
    "err_save_sync_ts",
    "err_lease_reset_ts",
    "err_reset_physical_small_ts",
    "err_reset_logical_small_ts",
    "err_reset_large_ts",
    "err_save_reset_ts",
    "reset_tso_ok",
    "save",
    "slow_save",
    "system_time_slow",
    "skip_save",
    "err_save_update_ts",
    "not_leader_anymore",
    "logical_overflow",
    "exceeded_max_retry",
    "not_allowed_save_timestamp",  # v26.3 on
    "not_leader",
    "global_tso_sync",
    "global_tso_estimate",
    "global_tso_persist",
    "global_tso_persist_err",
    "precheck_logical_overflow",
)
NEW_IN_26_EVENTS = ("not_allowed_save_timestamp",)

Kind = Literal["counter", "gauge", "histogram"]
Role = Literal["server", "microservice", "client", "process"]
Source = Literal["pd", "tsobench"]


@dataclass(frozen=True)
class Family:
    """One metric family as it appears in /metrics (``name`` is the exposed name, ``_total`` and all)."""

    name: str
    kind: Kind
    help: str
    role: Role
    source: Source = "pd"
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    versions: tuple[str, ...] = PD_VERSIONS  # the PD releases that export it (tsobench's own: every choice)
    dc: bool = False  # an allocator series: v8.5 adds dc="global"
    help_85: str | None = None  # v8.5's help text, where it differs

    def labels_in(self, version: str) -> tuple[str, ...]:
        return self.labels + (("dc",) if self.dc and version == "8.5" else ())

    def help_in(self, version: str) -> str:
        return self.help_85 if version == "8.5" and self.help_85 else self.help

    def series_names(self) -> tuple[str, ...]:
        """The sample names a query may use."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


_TSO_HELP = "Bucketed histogram of processing time (s) of handled tso requests."
FAMILIES: tuple[Family, ...] = (
    # pd-server (server/metrics.go, pkg/tso/metrics.go, pkg/member, pkg/basicserver)
    Family("pd_server_handle_tso_duration_seconds", "histogram", _TSO_HELP, "server", buckets=E05),
    Family(
        "pd_server_handle_tso_batch_size",
        "histogram",
        "Bucketed histogram of the batch size of handled tso requests.",
        "server",
        buckets=E1,
        versions=("26",),
    ),
    Family("pd_tso_events", "counter", "Counter of tso events", "server", labels=("type", "group"), dc=True),
    Family("pd_cluster_tso", "gauge", "Record of tso metadata.", "server", labels=("type", "group"), dc=True),
    Family(
        "pd_cluster_tso_gap_millionseconds",
        "gauge",
        "The minimal (non-zero) TSO gap",
        "server",
        labels=("group",),
        dc=True,
        help_85="The minimal (non-zero) TSO gap for each DC.",
    ),
    Family(
        "pd_tso_role",
        "gauge",
        "Indicate the PD server role info, whether it's a TSO allocator.",
        "server",
        labels=("group",),
        dc=True,
    ),
    Family("service_member_role", "gauge", "The leader/primary of services", "server", labels=("service",)),
    Family("pd_cluster_metadata", "gauge", "Record critical metadata.", "server", labels=("type",)),
    Family("pd_service_maxprocs", "gauge", "The value of GOMAXPROCS.", "server"),
    Family("pd_service_memory_quota_bytes", "gauge", "The value of memory quota bytes.", "server"),
    Family(
        "pd_server_info",
        "gauge",
        "Indicate the pd server info, and the value is the start timestamp (s).",
        "server",
        labels=("version", "hash"),
    ),
    # the TSO microservice (pkg/mcs/tso/server/metrics.go): read by --target-metrics, never served
    Family(
        "tso_server_handle_tso_duration_seconds", "histogram", _TSO_HELP, "microservice", labels=("group",), buckets=E05
    ),
    # the process (client_golang's process collector; prometheus_client's has the same names)
    Family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", "process"),
    # the Go PD client (client/metrics/metrics.go)
    Family(
        "pd_client_cmd_handle_cmds_duration_seconds",
        "histogram",
        "Bucketed histogram of processing time (s) of handled success cmds.",
        "client",
        labels=("type",),
        buckets=E05,
    ),
    Family(
        "pd_client_cmd_handle_failed_cmds_duration_seconds",
        "histogram",
        "Bucketed histogram of processing time (s) of failed handled cmds.",
        "client",
        labels=("type",),
        buckets=E05,
    ),
    Family(
        "pd_client_request_handle_requests_duration_seconds",
        "histogram",
        "Bucketed histogram of processing time (s) of handled requests.",
        "client",
        labels=("type",),
        buckets=E05,
    ),
    Family(
        "pd_client_request_handle_tso_batch_size",
        "histogram",
        "Bucketed histogram of the batch size of handled requests.",
        "client",
        buckets=CLIENT_BATCH,
    ),
    Family(
        "pd_client_request_handle_tso_best_batch_size",
        "histogram",
        "Bucketed histogram of the best batch size of handled requests.",
        "client",
        buckets=E1,
    ),
    Family("pd_client_request_tso_batch_send_latency", "histogram", "tso batch send latency", "client", buckets=E05),
    Family(
        "pd_client_request_estimate_tso_latency",
        "gauge",
        "Estimated latency of an RTT of getting TSO",
        "client",
        labels=("stream",),
    ),
    # tsobench's own server names (what --target-metrics read before PD's)
    Family("tso_rpcs_total", "counter", "TsoRequests answered", "server", "tsobench"),
    Family("tso_timestamps_total", "counter", "Timestamps handed out", "server", "tsobench"),
    Family("tso_streams_opened_total", "counter", "Tso streams opened", "server", "tsobench"),
    Family("tso_streams_open", "gauge", "Tso streams open now", "server", "tsobench"),
    Family("tso_errors_total", "counter", "Tso streams ended by an error", "server", "tsobench"),
    Family("tso_batch_size", "histogram", "count per TsoRequest", "server", "tsobench", buckets=OWN_BATCH),
    # tsobench's own client names (run --metrics-port)
    Family("tsobench_client_requests_total", "counter", "Requests answered", "client", "tsobench"),
    Family("tsobench_client_timestamps_total", "counter", "Timestamps answered", "client", "tsobench"),
    Family("tsobench_client_errors_total", "counter", "Failed requests by kind", "client", "tsobench", ("kind",)),
    Family("tsobench_client_in_flight", "gauge", "Requests in flight now", "client", "tsobench"),
    Family(
        "tsobench_client_latency_seconds",
        "histogram",
        "Request latency from its intended start, s",
        "client",
        "tsobench",
        buckets=OWN_LATENCY,
    ),
)
BY_NAME: Mapping[str, Family] = {f.name: f for f in FAMILIES}


def family(name: str) -> Family:
    return BY_NAME[name]


def families(role: Role, source: Source | None = None, version: str = NEWEST) -> tuple[Family, ...]:
    return tuple(
        f for f in FAMILIES if f.role == role and (source is None or f.source == source) and version in f.versions
    )


def exported_series(role: Role, version: str = NEWEST) -> frozenset[str]:
    """Every sample name a ``role`` endpoint serves at ``version`` (what a dashboard query may name)."""
    return frozenset(s for f in families(role, version=version) for s in f.series_names())


# ------------------------------------------------------------ histograms and exposition


class Buckets:
    """A histogram's counts (non-cumulative, +Inf last) and sum: ``observe`` is one bisect."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


def number(value: float) -> str:
    """A sample value as Go's exposition writes it."""
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and abs(value) < 1e15):
        return str(int(value))
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    text = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return f"{{{text}}}" if text else ""


Series = Sequence[tuple[Mapping[str, str], float]]


def render(fam: Family, series: Series, version: str = NEWEST) -> str:
    """A counter's or gauge's HELP, TYPE and samples (``series``: (labels, value) pairs)."""
    lines = [f"# HELP {fam.name} {fam.help_in(version)}", f"# TYPE {fam.name} {fam.kind}"]
    names = fam.labels_in(version)
    for labels, value in series:
        lines.append(f"{fam.name}{_labels((k, labels[k]) for k in names)} {number(value)}")
    return "\n".join(lines) + "\n"


def render_histogram(
    fam: Family,
    series: Sequence[tuple[Mapping[str, str], Sequence[int], float]],
    version: str = NEWEST,
) -> str:
    """A histogram: per label set its non-cumulative counts (``len(buckets) + 1``, +Inf last) and sum."""
    lines = [f"# HELP {fam.name} {fam.help_in(version)}", f"# TYPE {fam.name} histogram"]
    names = fam.labels_in(version)
    for labels, counts, total in series:
        pairs = [(k, labels[k]) for k in names]
        running = 0
        for bound, count in zip((*fam.buckets, math.inf), counts, strict=True):
            running += count
            le = "+Inf" if math.isinf(bound) else number(bound)
            lines.append(f"{fam.name}_bucket{_labels([*pairs, ('le', le)])} {running}")
        lines.append(f"{fam.name}_sum{_labels(pairs)} {number(total)}")
        lines.append(f"{fam.name}_count{_labels(pairs)} {running}")
    return "\n".join(lines) + "\n"


def readme_table() -> str:
    """The README's table of every declared family."""
    rows = ["| name | type | labels | buckets | role | PD releases |", "|---|---|---|---|---|---|"]
    for f in FAMILIES:
        buckets = f"{len(f.buckets)} from {number(f.buckets[0])}" if f.buckets else "–"
        labels = ", ".join(f.labels) + (" (+dc in 8.5)" if f.dc else "")
        versions = "tsobench's own" if f.source == "tsobench" else ", ".join(f.versions)
        rows.append(f"| `{f.name}` | {f.kind} | {labels or '–'} | {buckets} | {f.role} | {versions} |")
    return "\n".join(rows) + "\n"
