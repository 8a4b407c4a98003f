"""The server side of a capacity plan: a ceiling only where one can be defended, a lower bound otherwise.

The most the server was ever seen answering says what it can do at least, not
at most: the quickstart's server answered 3,600 RPCs/s while sharing 2 cores
with the clients, with nothing to show it was saturated. A ceiling needs the
server's own cost (``metrics.server.cpu_us_per_ts``, its CPU in the measured
window per timestamp): the cores it can use (``threads``: the asyncio server
runs one thread, so one core) divided by that cost. When the server was
measured at saturation (its CPU at 90 % or more of those cores) the measured
rate is the ceiling itself. Each figure says which of the two it is and where
it came from; without the server's CPU (a ``--target`` without
``--target-metrics``, files written before the server recorded its CPU) the
ceiling is unknown, and the plan says so instead of calling the target
unreachable. So is a cost-based figure below what the server was seen to
manage (a light load's cost per timestamp includes the server's idle work).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tsobench.bench.analysis.loader import number

SATURATED_SHARE = 0.9  # of the server's cores busy in the window: measured at saturation
DEFAULT_THREADS = 1  # the asyncio server runs one thread; a file that does not say is read as that
CPU_COST, SATURATED = "cpu cost", "measured at saturation"
NO_CPU = "no server CPU recorded in these runs (a --target without --target-metrics, or older files)"
UNKNOWN_FROM = "server side unknown: "  # how an unknown ceiling's ``ceiling_from`` begins; the reason follows


@dataclass(frozen=True)
class ServerSide:
    """What a measured point tells about the server's capacity at that point's batching."""

    ceiling_tps: float | None  # None: unknown
    ceiling_kind: str | None  # CPU_COST | SATURATED | None
    ceiling_from: str
    lower_bound_tps: float  # the most it was seen answering at this batching: at least this, not at most
    lower_bound_from: str
    cpu_share: float | None  # cores busy in the window (None: not recorded)
    threads: int  # cores it can use
    cpu_us_per_ts: float | None


def server_side(row: pd.Series, server_rps: float | None) -> ServerSide:
    """The server side of one aggregated point; ``server_rps`` is the most RPCs/s any clean run against
    the same server measured (None: no server counters)."""
    tps = float(row["tps"])
    share, cost = number(row.get("server_cpu_share")), number(row.get("server_cpu_us_per_ts"))
    threads = int(number(row.get("server_threads")) or DEFAULT_THREADS)
    lower, lower_from = _lower_bound(row, tps, server_rps)
    cores = f"{threads} core{'s' if threads > 1 else ''}"
    if share is not None and share >= SATURATED_SHARE * threads:
        kind, ceiling = SATURATED, tps
        why = (
            f"server side {SATURATED}: its CPU was {share:.2f} of the {cores} it can use while it answered "
            f"{tps:,.0f} ts/s at this setting"
        )
    elif cost is not None and cost > 0 and threads * 1e6 / cost < lower:
        # At a light load the cost per timestamp carries the server's idle work (its clock tick, saves):
        # an estimate the server was seen to beat is no ceiling.
        kind, ceiling = None, None
        why = (
            f"{UNKNOWN_FROM}its CPU cost here ({cost:,.2f} µs per timestamp) would allow "
            f"{threads * 1e6 / cost:,.0f} ts/s, less than the {lower:,.0f} ts/s it was seen to manage"
        )
    elif cost is not None and cost > 0:
        kind, ceiling = CPU_COST, threads * 1e6 / cost
        busy = f", {share:.2f} of {cores} busy" if share is not None else ""
        why = (
            f"server side from its CPU cost: {cost:,.2f} µs of server CPU per timestamp at this batching"
            f"{busy} → {cores} answer at most {ceiling:,.0f} ts/s"
        )
    else:
        kind, ceiling = None, None
        why = UNKNOWN_FROM + NO_CPU
    others = number(row.get("server_others_rpcs"))
    if others and cost is not None:
        why += f"; its server cost includes others' load (the server answered {others:,.0f} RPCs beyond the run's)"
    return ServerSide(ceiling, kind, why, lower, lower_from, share, threads, cost)


def _lower_bound(row: pd.Series, tps: float, server_rps: float | None) -> tuple[float, str]:
    """The most RPCs/s the server was measured answering x this point's timestamps per RPC (or the
    point's own rate, whichever is more)."""
    rpcs_per_ts = number(row.get("rpcs_per_ts"))
    if server_rps is None:
        return tps, f"server side at least {tps:,.0f} ts/s: this point's own measured rate (no server counters)"
    batching = "at this batching"
    if rpcs_per_ts is None or rpcs_per_ts <= 0:  # this point's batching was not measured: assume count per RPC
        batching = "assuming no batching (not measured for this point)"
        ts_per_rpc = number(row.get("count")) or 1.0
    else:
        ts_per_rpc = 1 / rpcs_per_ts
    bound = max(server_rps * ts_per_rpc, tps)
    return bound, (
        f"server side at least {bound:,.0f} ts/s: {server_rps:,.0f} RPCs/s (the most measured) x "
        f"{ts_per_rpc:,.1f} ts per RPC {batching}; seen, not a ceiling"
    )
