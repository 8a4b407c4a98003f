"""A design's latency split into the round trip, the wait for its batch, and the client's own turn-around.

A batching strategy (the dispatcher) times each batch's RPC, its *send gap* (from when the
batch could leave to its send) and its *wake-up* (from its reply's arrival to its last caller
running again): ``metrics.batching``. A request's mean latency, from its intended start, is then

- the caller's own timer (open loop only): how late it sent after its intended start, the mean
  latency less the mean latency from the actual send. The ``null`` strategy at the same rate
  measures the same thing with nothing else in it;
- the round trip: its batch's RPC as the client timed it;
- the client's own turn-around: its batch's send gap plus the batch's wake-up (the last caller's,
  so an upper bound for the others);
- the wait for the batch: the rest, the design's own trade (what TiDB's 1.5x / 1.25x / 1.125x
  RPC time describe for ``--rpc-concurrency`` 1 / 2 / 4).

The timer and the turn-around are Python's, not the design's: their share says whether a figure
is about the design or about this client. Nothing is clamped: a negative rest says the upper
bound overstated the turn-around.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from tsobench.bench.analysis.aggregate import where
from tsobench.bench.analysis.loader import POINT

SHOWN = 6  # points named in the note, the largest harness share first
COLUMNS = ("mean_us", "mean_uncorrected_us", "batch_rpc_us_mean", "batch_send_gap_us_mean", "batch_wake_us_mean")


@dataclass(frozen=True)
class Split:
    """One point's mean latency, µs, in its parts (medians over its runs)."""

    label: str
    mean_us: float
    timer_us: float | None  # open loop: the caller's own lateness in starting; None: closed loop
    rtt_us: float
    turnaround_us: float  # send gap + wake-up
    send_gap_us: float
    wake_us: float
    runs: int

    @property
    def batch_wait_us(self) -> float:
        """The design's own wait for the batch to leave: what the rest leaves."""
        return self.mean_us - (self.timer_us or 0.0) - self.rtt_us - self.turnaround_us

    @property
    def harness_share(self) -> float:
        """How much of the mean is Python's: the timer and the turn-around."""
        return ((self.timer_us or 0.0) + self.turnaround_us) / self.mean_us if self.mean_us else math.nan

    def text(self) -> str:
        ms = "{:.2f}".format
        parts = [f"{ms(self.rtt_us / 1e3)} round trip", f"{ms(self.batch_wait_us / 1e3)} waiting for the batch"]
        parts.append(
            f"{ms(self.turnaround_us / 1e3)} the client's own turn-around "
            f"({ms(self.send_gap_us / 1e3)} to send, {ms(self.wake_us / 1e3)} to wake its callers)"
        )
        if self.timer_us is not None:
            parts.append(f"{ms(self.timer_us / 1e3)} the callers' own timers")
        runs = f", median of {self.runs} runs" if self.runs > 1 else ""
        return (
            f"{self.label}: mean {ms(self.mean_us / 1e3)} ms = {' + '.join(parts)} "
            f"({self.harness_share:.0%} Python's{runs})"
        )


def splits(runs: pd.DataFrame) -> list[Split]:
    """Every point whose runs timed the turn-around, its parts the medians over its repeats."""
    if runs.empty or "batch_send_gap_us_mean" not in runs.columns:
        return []
    timed = runs[runs["batch_send_gap_us_mean"].notna() & runs["batch_wake_us_mean"].notna()]
    out = []
    for _, g in timed.groupby([k for k in POINT if k in timed.columns], dropna=False, sort=True):
        m = {c: float(g[c].median()) if c in g.columns else math.nan for c in COLUMNS}
        if not m["mean_us"] or math.isnan(m["mean_us"]) or math.isnan(m["batch_rpc_us_mean"]):
            continue
        first = g.iloc[0]
        label = f"{first['strategy']}/{first['api']} {where(first)}"
        if pd.notna(first.get("rpc_concurrency")) and first["rpc_concurrency"] > 1:
            label += f" rpc-concurrency {int(first['rpc_concurrency'])}"
        timer = m["mean_us"] - m["mean_uncorrected_us"] if not math.isnan(m["mean_uncorrected_us"]) else None
        gap, wake = m["batch_send_gap_us_mean"], m["batch_wake_us_mean"]
        out.append(Split(label, m["mean_us"], timer, m["batch_rpc_us_mean"], gap + wake, gap, wake, len(g)))
    return out


def notes(runs: pd.DataFrame) -> list[str]:
    """The findings' note: where the latency goes, the points where Python's share is largest first."""
    found = sorted(splits(runs), key=lambda s: s.harness_share, reverse=True)
    if not found:
        return []
    more = f"; {len(found) - SHOWN} more point(s) in the results' `batching`" if len(found) > SHOWN else ""
    return [
        "Where the latency goes (mean, ms; the timers and the turn-around are Python's, not the design's): "
        + "; ".join(s.text() for s in found[:SHOWN])
        + more
        + "."
    ]
