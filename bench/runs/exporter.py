"""A run's client metrics for Prometheus: live on ``--metrics-port`` while it runs, pushed once to
``--pushgateway`` at the end (as a batch job does).

The shards serve nothing: each publishes its cumulative vector after every fold
(``measure.observed``), the parent sums them and writes the exposition text when scraped. Every
series carries the labels ``strategy``, ``api`` and ``processes`` (the processes are merged).
"""

from __future__ import annotations

import socket
import sys
import urllib.request
from collections.abc import Callable, Mapping, Sequence

from tsobench import pd_metrics as pd
from tsobench.bench.measure import observed
from tsobench.bench.model.config import RunConfig
from tsobench.server.metrics_http import MetricsHTTP

PUSH_TIMEOUT_S = 10.0
JOB = "tsobench"
# (family, the observed histogram, its labels besides the run's)
HISTOGRAMS: tuple[tuple[str, str, Mapping[str, str]], ...] = (
    ("pd_client_cmd_handle_cmds_duration_seconds", "cmd_tso", {"type": "tso"}),
    ("pd_client_cmd_handle_cmds_duration_seconds", "cmd_wait", {"type": "wait"}),
    ("pd_client_cmd_handle_cmds_duration_seconds", "cmd_tso_async_wait", {"type": "tso_async_wait"}),
    ("pd_client_cmd_handle_failed_cmds_duration_seconds", "failed_tso", {"type": "tso"}),
    ("pd_client_cmd_handle_failed_cmds_duration_seconds", "failed_wait", {"type": "wait"}),
    ("pd_client_request_handle_requests_duration_seconds", "rpc_tso", {"type": "tso"}),
    ("pd_client_request_handle_requests_duration_seconds", "rpc_tso_failed", {"type": "tso-failed"}),
    ("pd_client_request_handle_tso_batch_size", "batch", {}),
    ("pd_client_request_handle_tso_best_batch_size", "best_batch", {}),
    ("pd_client_request_tso_batch_send_latency", "send_latency", {}),
    ("tsobench_client_latency_seconds", "latency", {}),
)


def run_labels(config: RunConfig) -> dict[str, str]:
    return {"strategy": config.strategy, "api": config.api, "processes": str(config.processes)}


def _with(fam: pd.Family, extra: Sequence[str]) -> pd.Family:
    """The family with the run's labels after its own."""
    from dataclasses import replace

    return replace(fam, labels=fam.labels + tuple(extra))


def exposition(vector: Sequence[int], labels: Mapping[str, str], stream: str) -> str:
    """The text of a summed vector (empty before the first fold: nothing is served yet)."""
    if not vector:
        return ""
    extra = tuple(labels)
    out: list[str] = []
    by_family: dict[str, list[tuple[Mapping[str, str], Sequence[int], float]]] = {}
    for name, key, own in HISTOGRAMS:
        counts, total = observed.histogram(vector, key)
        if own and not sum(counts):
            continue  # as client_golang: a labelled family's series exists once something was observed in it
        by_family.setdefault(name, []).append(({**own, **labels}, counts, total))
    for name, series in by_family.items():
        out.append(pd.render_histogram(_with(pd.family(name), extra), series))
    estimate = observed.scalar(vector, "estimate_us") / 1e6
    fam = _with(pd.family("pd_client_request_estimate_tso_latency"), extra)
    out.append(pd.render(fam, [({"stream": stream, **labels}, estimate)]))
    for name, key in (
        ("tsobench_client_requests_total", "requests"),
        ("tsobench_client_timestamps_total", "timestamps"),
        ("tsobench_client_in_flight", "in_flight"),
    ):
        out.append(pd.render(_with(pd.family(name), extra), [(labels, observed.scalar(vector, key))]))
    errors = [({"kind": k, **labels}, observed.scalar(vector, f"error_{k}")) for k in observed.ERROR_KINDS]
    out.append(pd.render(_with(pd.family("tsobench_client_errors_total"), extra), errors))
    return "".join(out)


class ClientExporter:
    """Serves (``--metrics-port``) and pushes (``--pushgateway``) what ``read()`` sums."""

    def __init__(self, config: RunConfig, read: Callable[[], list[int]], stream: str) -> None:
        self.config, self.read, self.stream = config, read, stream
        self.labels = run_labels(config)
        self.http: MetricsHTTP | None = None

    def text(self) -> bytes:
        return exposition(self.read(), self.labels, self.stream).encode()

    def start(self) -> ClientExporter:
        if self.config.metrics_port is not None:
            self.http = MetricsHTTP(self.text, "127.0.0.1", self.config.metrics_port).start()
            print(f"client metrics on {self.http.url}", file=sys.stderr, flush=True)
        return self

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    def push(self) -> str | None:
        """PUT the final figures to the Pushgateway (replacing this job's group); a warning line if it fails."""
        url = self.config.pushgateway
        if not url:
            return None
        where = f"{url.rstrip('/')}/metrics/job/{JOB}/instance/{socket.gethostname()}"
        request = urllib.request.Request(where, data=self.text(), method="PUT")
        request.add_header("Content-Type", pd.CONTENT_TYPE)
        try:
            with urllib.request.urlopen(request, timeout=PUSH_TIMEOUT_S):
                return None
        except OSError as exc:
            warning = f"warning: could not push the client metrics to {url}: {exc}"
            print(warning, file=sys.stderr, flush=True)
            return warning
