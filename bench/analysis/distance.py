"""Distance: how far from the server each point was measured, and what that allows each design.

A design that holds a stream across a request's round trip cannot answer more
than its requests in flight per round trip, whatever the CPU: each strategy
states that bound for its options (``strategy.bound``: in flight per client
process, in requests or in batches). Over the round trip a run measured before
its load (``network.rtt_ms``, the shortest of its samples: the most favourable
a request can meet; else the emulated one), the bound is ``in_flight x processes
/ round trip`` per second. A bound in batches limits RPCs, not timestamps: each
batch carries every caller that queued. A design above its bound shows that the
round trip measured (a unary GetMembers) costs more than a streamed request at
that distance (on loopback, mostly), so the distance is not what limits it.

PD's parallel-RPC mode trades RPCs for latency; TiDB documents the trade
(``tidb_tso_client_rpc_mode``): about 1.5x, 1.25x and 1.125x the RPC time per
call for 1, 2 and 4 RPCs in flight. ``parallel_trade`` sets measurements of
``--rpc-concurrency`` beside those figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tsobench.bench.analysis.aggregate import where
from tsobench.bench.analysis.loader import POINT, flag, number
from tsobench.bench.model.results import BATCH_RPC_US_MEAN, BATCH_RPCS_PER_S, BATCH_WAIT_US_MEAN, MEAN_US

# TiDB's documented mean latency per call, as a multiple of the RPC time, per RPCs in flight
# (tidb_tso_client_rpc_mode DEFAULT, PARALLEL, PARALLEL-FAST).
DOCUMENTED_PARALLEL = {1: 1.5, 2: 1.25, 4: 1.125}
RPC_CONCURRENCY = "rpc_concurrency"  # the option that sets it (the dispatcher's --rpc-concurrency)
# Where a round trip may come from, the most favourable first, with how it is said.
_ROUND_TRIPS = (("rtt_min_ms", "the shortest measured"), ("rtt_ms", "measured"), ("rtt_emulated_ms", "emulated"))


def _positive(value: Any) -> bool:
    """Recorded (not None, not NaN) and above zero."""
    return bool(value is not None and pd.notna(value) and value > 0)


def _first_round_trip(r: pd.Series, sources: tuple[tuple[str, str], ...]) -> tuple[float | None, str]:
    """The first of ``sources`` (column, how it is said) the point recorded, and how it is said."""
    for col, said in sources:
        value = r.get(col)
        if _positive(value):
            return float(value), said
    return None, "unknown"


def round_trip_ms(r: pd.Series) -> float | None:
    """The point's round trip: as measured before the load (median of repeats), else as emulated."""
    return _first_round_trip(r, _ROUND_TRIPS[1:])[0]


def distance_key(r: pd.Series) -> str:
    """Which distance a point belongs to, for grouping: its emulated round trip, else loopback or its target."""
    emulated = r.get("rtt_emulated_ms")
    if _positive(emulated):
        return f"{float(emulated):g} ms"
    if flag(r.get("loopback")):
        return "loopback"
    if round_trip_ms(r) is None:
        return "unknown distance"
    return "target " + (str(r["target"]) if pd.notna(r.get("target")) else "embedded")


def distance_rank(r: pd.Series) -> tuple[float, str]:
    """Nearest first: loopback, then by round trip; an unrecorded distance last."""
    rtt = r.get("rtt_emulated_ms")
    rtt = rtt if _positive(rtt) else 0.0 if flag(r.get("loopback")) else round_trip_ms(r)
    return (math.inf if rtt is None else float(rtt), distance_key(r))


def distance_text(r: pd.Series) -> str:
    """The distance in words: ``loopback (round trip 0.05 ms)``, ``2 ms emulated (measured 2.07 ms)``."""
    rtt, key = round_trip_ms(r), distance_key(r)
    measured = r.get("rtt_ms")
    known = measured is not None and pd.notna(measured)
    if key == "unknown distance":
        return "distance not recorded"
    if key.endswith(" ms"):
        return f"{key} emulated" + (f" (measured {measured:.2f} ms)" if known else "")
    return f"{key} (round trip {rtt:.2f} ms)" if rtt is not None else key


@dataclass(frozen=True)
class BoundCheck:
    """A point against its design's bound."""

    series: str
    callers: str  # the load it was measured at (``c=64``)
    unit: str  # requests | batches
    in_flight: int  # all client processes together
    rtt_ms: float  # the round trip the bound assumes
    rtt_from: str  # where that round trip comes from
    achieved: float  # per second: requests, or RPCs for a bound in batches

    @property
    def limit(self) -> float:
        """The most the design can answer per second at this round trip."""
        return self.in_flight / (self.rtt_ms / 1e3)

    @property
    def share(self) -> float:
        return self.achieved / self.limit

    def sentence(self) -> str:
        """``locked/asyncio c=64: 492 requests/s, 98% of its bound (1 request in flight per round trip of
        2.00 ms, the shortest measured: 500/s)``."""
        what = "requests" if self.unit == "requests" else "RPCs"
        one = SINGULAR.get(self.unit, self.unit) if self.in_flight == 1 else self.unit
        text = (
            f"{self.series} {self.callers}: {self.achieved:,.0f} {what}/s, {self.share:.0%} of its bound "
            f"({self.in_flight:,} {one} in flight per round trip of {self.rtt_ms:.2f} ms, {self.rtt_from}: "
            f"{self.limit:,.0f}/s)"
        )
        if self.unit == "batches":
            text += ", which bounds RPCs, not timestamps (each batch carries every caller that queued)"
        if self.share > OVER:
            text += "; above it, so the round trip measured overstates a streamed request's and is not the limit"
        return text


SINGULAR = {"requests": "request", "batches": "batch"}
OVER = 1.05  # above its bound by more than measurement noise


def bound_of(r: pd.Series) -> BoundCheck | None:
    """A point (a row of ``aggregate.repeats``) against its strategy's stated bound; None when the strategy
    states none, the round trip is unknown, or what the bound limits was not measured."""
    rtt, rtt_from = _first_round_trip(r, _ROUND_TRIPS)  # the most favourable: the shortest measured
    in_flight = r.get("bound_in_flight")
    if rtt is None or not _positive(in_flight):
        return None
    unit = str(r.get("bound_unit") or "requests")
    if unit == "batches":
        achieved = next((float(r[c]) for c in (BATCH_RPCS_PER_S, "server_rps") if pd.notna(r.get(c))), math.nan)
    else:
        achieved = float(r["rps"])
    if not achieved > 0:
        return None
    return BoundCheck(
        str(r["design"]),
        where(r),
        unit,
        int(in_flight) * int(r["processes"]),
        rtt,
        rtt_from,
        achieved,
    )


@dataclass(frozen=True)
class ParallelStep:
    """One ``--rpc-concurrency`` of a parallel-mode comparison."""

    rpcs_in_flight: int
    mean_over_rtt: float  # mean latency / ``against``
    against: str  # "the RPC time" the strategy timed, or "the round trip" measured before the load
    rpcs_per_s: float | None
    documented: float | None  # TiDB's figure for this many RPCs in flight
    wait_us: float | None = None  # of the mean: waiting for its batch to leave
    rpc_us: float | None = None  # of the mean: the batch's RPC

    @property
    def off(self) -> float | None:
        """How far the measurement is from TiDB's figure: measured / documented - 1."""
        return self.mean_over_rtt / self.documented - 1 if self.documented else None


@dataclass(frozen=True)
class ParallelTrade:
    """Runs that differ only in ``--rpc-concurrency``, at one round trip, open loop."""

    label: str  # the series and the load, e.g. ``dispatcher/asyncio c=8 rate=2000/s``
    distance: str
    steps: tuple[ParallelStep, ...]

    def sentence(self) -> str:
        parts = []
        for s in self.steps:
            text = f"{s.rpcs_in_flight} in flight: mean {s.mean_over_rtt:.2f}x {s.against}"
            if s.wait_us is not None and s.rpc_us is not None:
                text += f" ({s.wait_us / 1e3:.2f} ms waiting for its batch + {s.rpc_us / 1e3:.2f} ms its RPC)"
            if s.documented is not None and s.off is not None:
                text += f", TiDB documents about {s.documented:g}x ({s.off:+.0%})"
            if s.rpcs_per_s is not None:
                text += f", {s.rpcs_per_s:,.0f} RPCs/s"
            parts.append(text)
        return f"Parallel RPCs, {self.label} at {self.distance}: " + "; ".join(parts) + "."


def parallel_trades(agg: pd.DataFrame) -> list[ParallelTrade]:
    """Per open-loop point that was measured at several ``--rpc-concurrency`` (the rest of the point
    alike), each N's mean latency over its RPC time and its RPCs/s, beside TiDB's figures. TiDB states
    its trade against the RPC time: the batch's own RPC as the dispatcher timed it (``batching``); the
    round trip measured before the load stands in where a strategy reports no batches."""
    if RPC_CONCURRENCY not in agg.columns:
        return []
    data = agg[agg["open_loop"] & agg["clean"] & agg[RPC_CONCURRENCY].notna()]
    keys = [k for k in POINT if k != RPC_CONCURRENCY]
    out = []
    for _, g in data.groupby(keys, dropna=False, sort=True):
        if g[RPC_CONCURRENCY].nunique() < 2:
            continue
        steps = []
        for _, r in g.sort_values(RPC_CONCURRENCY).iterrows():
            rtt, n = round_trip_ms(r), int(r[RPC_CONCURRENCY])
            rpcs, wait, rpc = (number(r.get(c)) for c in (BATCH_RPCS_PER_S, BATCH_WAIT_US_MEAN, BATCH_RPC_US_MEAN))
            against, time_us = ("the RPC time", rpc) if rpc else ("the round trip", rtt * 1e3 if rtt else None)
            if not time_us or pd.isna(r[MEAN_US]):
                continue
            over = float(r[MEAN_US]) / time_us
            steps.append(ParallelStep(n, over, against, rpcs, DOCUMENTED_PARALLEL.get(n), wait, rpc))
        if len(steps) > 1:
            first = g.iloc[0]
            label = f"{first['strategy']}/{first['api']} {where(first)}"
            out.append(ParallelTrade(label, distance_text(first), tuple(steps)))
    return out
