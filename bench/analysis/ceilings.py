"""The server side of a capacity plan: a ceiling only where one can be defended, with its interval.

Two kinds, the strongest first:

- measured at saturation: the server's CPU was at 90 % or more of the cores it
  can use (``threads``: the asyncio server runs one thread, so one core) while
  it answered the point's rate: that rate is the ceiling, its interval the
  point's own (``stats``);
- fitted cost: the server's cost model (``costmodel``, fitted on every run
  against the same server) at the batch the setting would have at the planned
  rate (``planned_batch``), on the server's cores, its interval from the
  model's bootstrap.

Without the server's CPU, or where the runs cannot separate the costs this
setting's mix needs, the ceiling is unknown and says why. What the server was
seen answering is the most THIS design was measured at against it: a lower
bound, never a ceiling, and never a figure computed from another design's
RPCs (the pool's RPCs/s times the dispatcher's batch was seen by nobody).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from tsobench.bench.analysis.costmodel import Fit, confounded_text, separating_sweep
from tsobench.bench.analysis.loader import number

SATURATED_SHARE = 0.9  # of the server's cores busy in the window: measured at saturation
DEFAULT_THREADS = 1  # the asyncio server runs one thread; a file that does not say is read as that
FITTED, SATURATED = "fitted cost", "measured at saturation"
NO_CPU = "no server CPU recorded in these runs (a --target without --target-metrics, or older files)"
UNKNOWN_FROM = "server side unknown: "  # how an unknown ceiling's ``ceiling_from`` begins; the reason follows


@dataclass(frozen=True)
class Batch:
    """Timestamps per RPC a setting would have at the planned rate, and how that was found."""

    ts_per_rpc: float
    streams_per_rpc: float  # streams the server sees opened per RPC (per-request: one each)
    measured_ts_per_rpc: float | None
    how: str


def planned_batch(row: pd.Series, requests_per_s_per_process: float, streams_per_rpc: float) -> Batch:
    """A batching design's batch follows its rate: the requests that queue on a stream while its RPC is out
    (rate per stream x RPC time, over the batches in flight per stream), at least one request, at most
    ``--max-batch`` timestamps. A design that does not batch keeps the batch it was measured at.
    ``streams_per_rpc``: the streams the server saw opened per RPC at this point (per-request: one each)."""
    count = number(row.get("count")) or 1.0
    rpcs_per_ts = number(row.get("rpcs_per_ts"))
    measured = 1 / rpcs_per_ts if rpcs_per_ts and rpcs_per_ts > 0 else None
    rpc_us = number(row.get("batch_rpc_us_mean"))
    if rpc_us is None or rpc_us <= 0:
        if measured is None:
            return Batch(count, streams_per_rpc, None, f"{count:g} timestamp(s) per RPC (batching not measured)")
        return Batch(
            measured,
            streams_per_rpc,
            measured,
            f"{measured:,.1f} ts per RPC as measured (no RPC time recorded to predict it from)",
        )
    lanes = (number(row.get("streams")) or 1.0) * (number(row.get("rpc_concurrency")) or 1.0)
    queued = requests_per_s_per_process / lanes * rpc_us / 1e6
    cap = number(row.get("max_batch")) or math.inf
    ts = min(max(queued, 1.0) * count, cap)
    return Batch(
        ts,
        streams_per_rpc,
        measured,
        f"{ts:,.1f} ts per RPC at the planned {requests_per_s_per_process:,.0f} requests/s per process "
        f"({lanes:g} lane(s), RPC {rpc_us:,.0f} µs"
        + (f", capped by --max-batch {cap:g}" if ts == cap else "")
        + (f"; measured {measured:,.1f})" if measured else ")"),
    )


@dataclass(frozen=True)
class ServerSide:
    """What the runs tell about the server's capacity for one setting at the planned rate."""

    ceiling_tps: float | None  # None: unknown
    ceiling_interval: tuple[float, float] | None
    ceiling_kind: str | None  # SATURATED | FITTED | None
    ceiling_from: str
    best_tps: float | None  # the ceiling at the most this design can batch (--max-batch): what UNREACHABLE needs;
    # None where the runs cannot tell the cost at that batch (a timestamp's cost apart from an RPC's)
    lower_bound_tps: float  # the most this design was seen answering against this server: at least this
    lower_bound_from: str
    cpu_share: float | None  # cores busy in the window (None: not recorded)
    threads: int  # cores it can use


def server_side(row: pd.Series, model: Fit | None, batch: Batch, seen_tps: float, seen_at: str) -> ServerSide:
    """The server side of one aggregated point (``row``) at the planned ``batch``; ``seen_tps`` is the most
    the same design was measured answering against the same server (``seen_at`` its setting)."""
    tps = float(row["tps"])
    share = number(row.get("server_cpu_share"))
    threads = int(number(row.get("server_threads")) or (model.threads if model else DEFAULT_THREADS))
    lower = max(seen_tps, tps)
    lower_from = f"server side at least {lower:,.0f} ts/s: seen answering this design ({seen_at}); not a ceiling"
    cores = f"{threads} core{'s' if threads > 1 else ''}"
    others = number(row.get("server_others_rpcs"))

    def side(
        ceiling: float | None, interval: tuple[float, float] | None, kind: str | None, why: str, best: float | None
    ) -> ServerSide:
        if others:
            why += f"; its server cost includes others' load (the server answered {others:,.0f} RPCs beyond the run's)"
        return ServerSide(ceiling, interval, kind, why, best, lower, lower_from, share, threads)

    if share is not None and share >= SATURATED_SHARE * threads:
        low, high = _interval(row, tps)
        why = (
            f"server side {SATURATED}: its CPU was {share:.2f} of the {cores} it can use while it answered "
            f"{tps:,.0f} ts/s [{low:,.0f}, {high:,.0f}] at this setting"
        )
        return side(tps, (low, high), SATURATED, why, tps)
    if model is None:
        return side(None, None, None, UNKNOWN_FROM + NO_CPU, None)
    if not model.fitted:
        return side(None, None, None, f"{UNKNOWN_FROM}no cost model: {model.why}", None)
    rpcs_per_ts = 1 / batch.ts_per_rpc
    ceiling = model.ceiling(rpcs_per_ts, batch.streams_per_rpc * rpcs_per_ts)
    if ceiling is None:
        why = (
            f"{UNKNOWN_FROM}the runs of {model.server} cannot {confounded_text(model.confounded)}, and this "
            "setting's cost depends "
            f"on telling them apart; the sweep that would: {separating_sweep(model.key)}"
        )
        return side(None, None, None, why, None)
    cap = number(row.get("max_batch")) if number(row.get("batch_rpc_us_mean")) else batch.ts_per_rpc
    best = model.ceiling(1 / (cap or batch.ts_per_rpc), batch.streams_per_rpc / (cap or batch.ts_per_rpc))
    if ceiling.high < tps and batch.ts_per_rpc <= (batch.measured_ts_per_rpc or batch.ts_per_rpc):
        # the fit is refuted here: at no more batching than measured, this point answered more than it allows
        why = (
            f"{UNKNOWN_FROM}the cost model of {model.server} allows at most {ceiling.high:,.0f} ts/s at "
            f"{batch.ts_per_rpc:,.1f} ts per RPC, less than the {tps:,.0f} ts/s this point answered"
        )
        return side(None, None, None, why, None)
    why = (
        f"server side from its fitted cost ({model.server}, {model.runs} runs): {ceiling.cost_us_per_ts:,.2f} µs "
        f"of server CPU per timestamp at {batch.how}, {ceiling.idle_cores:.2f} core(s) idle work → {cores} "
        f"answer at most {ceiling.tps:,.0f} ts/s [{ceiling.low:,.0f}, {_tps(ceiling.high)}]"
    )
    return side(ceiling.tps, (ceiling.low, ceiling.high), FITTED, why, best.high if best else None)


def _tps(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) else "no upper end: the runs do not bound the cost from below"


def _interval(row: pd.Series, value: float) -> tuple[float, float]:
    """The point's throughput interval (``stats``'s, as ``aggregate`` estimated it), else its spread."""
    est = row.get("tps_est")
    low, high = getattr(est, "low", None), getattr(est, "high", None)
    if low is None or high is None:
        low, high = number(row.get("tps_min")), number(row.get("tps_max"))
    return (min(low, value) if low is not None else value), (max(high, value) if high is not None else value)
