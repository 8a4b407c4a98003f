"""How evenly a run served its callers, from completions per caller in the window.

Jain's index is 1 when every caller completed the same number of requests and
1/n when one caller got everything. A caller with no completion at all is
*starved*: a run with any is not clean, whatever its throughput says.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tsobench.bench.model.results import Fairness


def fairness(completions: Sequence[int]) -> Fairness:
    x = np.asarray(completions, np.float64)
    if len(x) == 0:
        return Fairness(jain=None, min_per_caller=0, max_per_caller=0, starved_callers=0)
    squares = float((x * x).sum())
    jain = float(x.sum()) ** 2 / (len(x) * squares) if squares else None
    return Fairness(
        jain=jain,
        min_per_caller=int(x.min()),
        max_per_caller=int(x.max()),
        starved_callers=int(np.count_nonzero(x == 0)),
    )


LITTLES_LAW_TOLERANCE = 0.25  # a ratio within 1 ± this: the throughput and latency figures agree


def littles_law_ratio(answered_us: int, measured_s: float, callers: int) -> float | None:
    """Closed loop: throughput x mean latency / callers, i.e. the share of the
    window the callers spent in answered requests. Near 1 when every caller is
    busy; far below when some wait on nothing the latency figures show."""
    if not measured_s or not callers:
        return None
    return round(answered_us / (measured_s * 1e6 * callers), 3)
