"""Reading a server's counters over the measured window from its Prometheus endpoint
(``--target-metrics``, or the embedded server's own), whichever names it serves:

- this project's own (``tso_rpcs_total``, ``tso_timestamps_total``, ...);
- a PD of v26.3 or later: ``pd_server_handle_tso_duration_seconds_count`` is the Tso RPCs handled,
  ``pd_server_handle_tso_batch_size_sum`` the timestamps asked;
- a PD of v8.5 (no batch-size histogram) and the TSO microservice
  (``tso_server_handle_tso_duration_seconds{group}``): RPCs only. The run's own timestamp count
  stands in, while the run is the server's only client, and the results say so
  (``server.timestamps_from``).

A real PD's counters carry other clients' traffic too: when the server answered more RPCs in
the window than the run sent, beyond ``OTHERS_MARGIN`` (and the requests in flight at the
window's two edges), the results record the excess (``server.others_rpcs``) and its CPU
figures include others' load.
"""

from __future__ import annotations

import ssl
import urllib.request
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

from tsobench.bench.runs.backend import RunError
from tsobench.pd_metrics import family
from tsobench.server.metrics import ServerCounters, counters_from_prometheus

if TYPE_CHECKING:
    from tsobench.bench.model.config import RunConfig
    from tsobench.bench.model.results import ServerSummary

OTHERS_MARGIN = 0.05  # RPCs beyond the run's own by more than 5 % (plus two per caller) are others' load
FETCH_TIMEOUT_S = 5.0
SERVER_THREADS = 1  # the embedded server is one asyncio loop: one core at most
KNOWN = (
    "tso_rpcs_total (tsobench), pd_server_handle_tso_duration_seconds (PD), "
    "tso_server_handle_tso_duration_seconds (PD's TSO microservice)"
)


class NoTsoMetrics(ValueError):
    """The endpoint serves none of the names this reads."""


def parse(text: str) -> ServerCounters:
    """The counters in an exposition text, from whichever names it serves (``source`` says which)."""
    sums: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value  # the microservice: every group
    cpu = sums.get("process_cpu_seconds_total")
    if "tso_rpcs_total" in sums:
        return counters_from_prometheus(text)
    duration = family("pd_server_handle_tso_duration_seconds").name + "_count"
    if duration in sums:
        batch = family("pd_server_handle_tso_batch_size").name + "_sum"
        timestamps = int(sums[batch]) if batch in sums else None
        source = "pd v26" if batch in sums else "pd v8.5"
        return ServerCounters(rpcs=int(sums[duration]), timestamps=timestamps, cpu_s=cpu, source=source)
    micro = family("tso_server_handle_tso_duration_seconds").name + "_count"
    if micro in sums:
        return ServerCounters(rpcs=int(sums[micro]), timestamps=None, cpu_s=cpu, source="pd tso microservice")
    raise NoTsoMetrics(f"serves none of the TSO metrics tsobench reads: {KNOWN}")


def _context(config: RunConfig | None, url: str) -> ssl.SSLContext | None:
    """HTTPS to a target behind TLS: the run's --cacert, and --cert/--key where it asks for one."""
    if not url.startswith("https://") or config is None:
        return None
    context = ssl.create_default_context(cafile=config.cacert)
    if config.cert and config.key:
        context.load_cert_chain(config.cert, config.key)
    return context


def fetch(url: str, config: RunConfig | None = None, timeout_s: float = FETCH_TIMEOUT_S) -> ServerCounters:
    with urllib.request.urlopen(url, timeout=timeout_s, context=_context(config, url)) as response:
        return parse(response.read().decode())


def check(url: str, config: RunConfig) -> None:
    """Before any load: the endpoint answers and serves names this reads (RunError, one line, if not)."""
    try:
        fetch(url, config)
    except NoTsoMetrics as exc:
        raise RunError(f"--target-metrics {url} {exc}") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"--target-metrics {url}: cannot read it: {exc}") from None


def summary(
    config: RunConfig,
    before: ServerCounters | None,
    after: ServerCounters | None,
    measured_s: float,
    run_rpcs: int,
    run_timestamps: int,
) -> ServerSummary | None:
    """The server's counters over the window; None when unknown, or after a kill (it counts from zero again)."""
    restarted = any(f.declared.restarts_server for f in config.faults)
    if after is None or before is None or restarted:
        return None
    c = after - before
    slack = OTHERS_MARGIN * run_rpcs + 2 * config.concurrency * config.processes
    others = c.rpcs - run_rpcs if c.rpcs - run_rpcs > slack else None
    timestamps, source = c.timestamps, "server"
    if timestamps is None:
        # A server without a batch-size histogram: the run's own count, while it was the only client.
        timestamps, source = (run_timestamps, "run") if others is None else (None, "unknown")
    cpu = c.cpu_s  # None: the server does not say
    return {
        "rpcs": c.rpcs,
        "timestamps": timestamps,
        "streams": c.streams_opened,
        "mean_batch": round(timestamps / c.rpcs, 3) if timestamps is not None and c.rpcs else 0.0,
        "errors": c.errors,
        "cpu_s": None if cpu is None else round(cpu, 4),
        "cpu_share": None if cpu is None or not measured_s else round(cpu / measured_s, 4),
        "cpu_us_per_rpc": None if cpu is None or not c.rpcs else round(cpu * 1e6 / c.rpcs, 3),
        "cpu_us_per_ts": None if cpu is None or not timestamps else round(cpu * 1e6 / timestamps, 4),
        "threads": SERVER_THREADS if config.target is None else None,
        "metrics_source": c.source,
        "timestamps_from": source,
        "others_rpcs": others,
    }
