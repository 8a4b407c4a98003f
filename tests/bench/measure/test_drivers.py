"""The drivers: a strategy's client, its callers (threads or tasks) and how they end, on both APIs."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tsobench import strategies
from tsobench.bench.measure.clock import Clock, now_us
from tsobench.bench.measure.drivers import (
    CALLER_DIED,
    PLUGIN_ERROR,
    THREAD_CRASH,
    AsyncDriver,
    Caller,
    Crashes,
    ThreadDriver,
    driver_for,
    where,
)
from tsobench.bench.measure.fold import Fold, FoldTicker
from tsobench.bench.model.config import RunConfig, ShardConfig
from tsobench.strategies import Timestamp


def shard(**options) -> ShardConfig:
    return ShardConfig(RunConfig(strategy="locked", warmup_s=0, **options), 0, "127.0.0.1:1", overrun_s=0.0)


class _Counting:
    """A toy client (pure unit: no server): hands out consecutive timestamps and counts its calls."""

    def __init__(self, options: strategies.ClientOptions) -> None:
        self.next, self.calls, self.opened, self.closed = 0, 0, False, False
        self.lock = threading.Lock()

    def _one(self, count: int) -> Timestamp:
        with self.lock:
            self.calls += 1
            self.next += count
            return Timestamp(1, self.next, count)

    def open(self) -> None:
        self.opened = True

    def get_ts(self, count: int = 1) -> Timestamp:
        return self._one(count)

    def counters(self) -> dict[str, int]:
        return {"calls": self.calls}

    def close(self) -> None:
        self.closed = True


class _AsyncCounting(_Counting):
    async def open(self) -> None:  # type: ignore[override]
        self.opened = True

    async def get_ts(self, count: int = 1) -> Timestamp:  # type: ignore[override]
        await asyncio.sleep(0)
        return self._one(count)

    async def close(self) -> None:  # type: ignore[override]
        self.closed = True


COUNTING = strategies.Strategy("counting", "consecutive timestamps, no server", _Counting, _AsyncCounting)


def run_driver(config: ShardConfig) -> tuple[object, list[Caller], Crashes]:
    """What run_shard does with a driver: open, callers, a fold beside them, close."""
    driver = driver_for(config, COUNTING, config.run.client_options(config.target))
    driver.open()
    clock = Clock.anchored(config.run)
    callers = [Caller(config, i, plugin=True) for i in range(config.run.concurrency)]
    fold = Fold(config, clock, [c.record for c in callers], driver.counters)
    with Crashes() as crashes:
        closed_at = driver.run(callers, clock, crashes, FoldTicker(fold, now_us))
    assert closed_at <= now_us()
    return driver, callers, crashes


@pytest.mark.parametrize(("api", "kind"), [("thread", ThreadDriver), ("asyncio", AsyncDriver)])
def test_each_api_gets_its_driver_and_every_caller_sends_exactly_its_quota(api, kind):
    config = shard(api=api, concurrency=3, requests=30, count=2)
    driver, callers, crashes = run_driver(config)
    assert isinstance(driver, kind)
    client = driver.client
    assert client.opened and client.closed  # the driver closes what it opened
    assert client.calls == 30 and client.next == 60  # each quota once, two timestamps per request
    assert [c.quota for c in callers] == [10, 10, 10]
    assert not crashes.counts


@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_a_real_strategy_on_a_real_server_sends_the_quota_and_nothing_more(inprocess_server, api):
    config = ShardConfig(
        RunConfig(strategy="locked", api=api, concurrency=4, requests=40, count=3, warmup_s=0),
        0,
        inprocess_server.address,
        overrun_s=0.0,
    )
    before = inprocess_server.counters()
    driver = driver_for(config, strategies.get("locked"), config.run.client_options(config.target))
    driver.open()
    clock = Clock.anchored(config.run)
    callers = [Caller(config, i, plugin=False) for i in range(4)]
    fold = Fold(config, clock, [c.record for c in callers], driver.counters)
    with Crashes() as crashes:
        driver.run(callers, clock, crashes, FoldTicker(fold, now_us))
    done = inprocess_server.counters() - before
    assert (done.rpcs, done.timestamps) == (40, 120)
    assert not crashes.counts


def test_an_open_loop_caller_draws_a_seeded_poisson_schedule():
    config = shard(concurrency=2, rate=200, seed=7)  # 100/s each: a mean gap of 10 ms
    first, again, other = (Caller(config, i, False).arrivals(1_000) for i in (0, 0, 1))
    starts = [first() for _ in range(2000)]
    assert starts == sorted(starts) and starts[0] > 1_000  # each after the one before, from the start given
    assert [again() for _ in range(2000)] == starts  # the seed and the caller's index decide the schedule
    assert [other() for _ in range(2000)] != starts  # each caller its own draws
    assert 8_000 <= (starts[-1] - 1_000) / len(starts) <= 12_000  # a mean gap of 10 ms, in µs
    assert Caller(shard(), 0, False).arrivals(0) is None  # closed loop: no schedule


def test_a_quota_counts_from_the_end_of_the_warm_up():
    config = ShardConfig(RunConfig(strategy="locked", warmup_s=1.0, requests=4, concurrency=2), 0, "x:1")
    caller, clock = Caller(config, 0, False), Clock.anchored(config.run)
    assert caller.limit(clock, sent=5, intended=clock.measure_from_us - 1) > 1 << 60  # warm-up: no limit
    assert caller.limit(clock, sent=5, intended=clock.measure_from_us) == 7  # its quota of 2 on top


def test_failures_are_recorded_by_kind_with_the_first_message_and_place():
    caller = Caller(shard(), 0, plugin=False)
    try:
        raise TimeoutError("late")
    except TimeoutError as exc:
        caller.failed(1, exc)
    caller.failed(2, TimeoutError("later"))
    record = caller.record
    assert list(record.failed_kind) == ["timeout", "timeout"] and list(record.failed_at) == [1, 2]
    assert record.samples["timeout"]["message"] == "TimeoutError: late"
    assert "test_drivers.py" in record.samples["timeout"]["where"]


def test_a_plugins_own_exceptions_and_bad_replies_are_the_plugins_errors():
    plugin = Caller(shard(), 0, plugin=True)
    plugin.failed(1, KeyError("x"))
    plugin.failed(2, TimeoutError())  # a timeout is a timeout, whoever raised it
    plugin.bad_reply(3, "a string", _Counting.get_ts)
    kinds = list(plugin.record.failed_kind)
    assert kinds == [f"{PLUGIN_ERROR}:KeyError", "timeout", f"{PLUGIN_ERROR}:str"]
    sample = plugin.record.samples[f"{PLUGIN_ERROR}:str"]
    assert "not a Timestamp" in sample["message"] and "in get_ts" in sample["where"]
    builtin = Caller(shard(), 0, plugin=False)
    builtin.failed(1, KeyError("x"))
    assert list(builtin.record.failed_kind) == ["KeyError"]


def test_threads_that_die_are_counted_as_callers_or_as_background_threads():
    def die() -> None:
        raise RuntimeError("boom")

    before = threading.excepthook
    with Crashes() as crashes:
        for name in ("caller-0", "grpc-delivery"):
            t = threading.Thread(target=die, name=name)
            t.start()
            t.join()
    assert dict(crashes.counts) == {f"{CALLER_DIED}:RuntimeError": 1, f"{THREAD_CRASH}:RuntimeError": 1}
    assert crashes.samples[f"{CALLER_DIED}:RuntimeError"]["message"] == "caller-0: RuntimeError: boom"
    assert threading.excepthook is before  # put back


def test_where_names_the_innermost_frame_or_a_function():
    try:
        {}["missing"]
    except KeyError as exc:
        assert "test_drivers.py" in where(exc) and "test_where_names" in where(exc)
    assert where(code=run_driver).endswith("in run_driver")
    assert where() == "?"
