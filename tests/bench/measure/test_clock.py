"""A shard's window on its own clock, anchored to the run's shared start instant."""

from __future__ import annotations

import time

from tsobench.bench.measure.clock import FOREVER_US, Clock, now_us
from tsobench.bench.model.config import RunConfig


def test_the_window_follows_the_warm_up_and_the_duration():
    clock = Clock.anchored(RunConfig(strategy="locked", warmup_s=0.5, duration_s=2.0))
    assert clock.measure_from_us - clock.start_us == 500_000
    assert clock.end_us - clock.measure_from_us == 2_000_000
    assert Clock.anchored(RunConfig(strategy="locked", requests=10)).end_us == FOREVER_US  # quotas end it


def test_a_shard_that_reaches_the_start_late_starts_its_clock_at_the_shared_instant():
    shared = time.time() - 0.25  # the barrier released the others 250 ms ago
    before = now_us()
    clock = Clock.anchored(RunConfig(strategy="locked"), shared)
    assert before - 250_000 - 50_000 <= clock.start_us <= now_us() - 250_000  # not this shard's own start


def test_an_interrupt_closes_the_window_now_and_never_later():
    clock = Clock.anchored(RunConfig(strategy="locked", warmup_s=0, duration_s=60.0))
    clock.interrupt()
    closed = clock.end_us
    assert closed <= now_us() and clock.stop.is_set()
    late = Clock.anchored(RunConfig(strategy="locked", warmup_s=0, duration_s=0.01))
    end = late.end_us
    time.sleep(0.02)
    late.interrupt()  # after the window: its end stays where it was
    assert late.end_us == end
