"""One shard in-process: load shapes, warm-up, deadlines, a server that dies."""

import asyncio
import threading
import time

import pytest

from tsobench import strategies
from tsobench.bench.measure import latency
from tsobench.bench.measure.fairness import fairness
from tsobench.bench.measure.measures import ShardResult
from tsobench.bench.measure.shard import run_shard
from tsobench.bench.model.config import RunConfig, ShardConfig
from tsobench.server import ChildServer, ServerConfig
from tsobench.strategies import Timestamp


def shard(config: RunConfig, target: str) -> ShardConfig:
    return ShardConfig(config, 0, target)


@pytest.mark.serial  # timing: runs alone, after the parallel phase
@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_open_loop_honours_the_rate(child_server, api):
    config = RunConfig(strategy="dispatcher", api=api, concurrency=8, rate=400, duration_s=1.5, warmup_s=0.2)
    result = run_shard(shard(config, child_server.address))
    sent = result.requests_ok + result.requests_failed
    # Poisson with mean 600: +-20% is more than 4 standard deviations.
    assert 480 <= sent <= 720
    corrected = latency.decode(result.latency)
    uncorrected = latency.decode(result.latency_uncorrected)
    assert corrected.get_total_count() == uncorrected.get_total_count() == sent + result.censored
    assert corrected.get_max_value() >= uncorrected.get_max_value()


def test_requests_mode_runs_exactly_the_quota(child_server):
    config = RunConfig(strategy="pool", api="thread", concurrency=7, requests=100, warmup_s=0)
    result = run_shard(shard(config, child_server.address))
    assert result.requests_ok == 100
    assert latency.decode(result.latency).get_total_count() == 100


def test_warmup_is_excluded_from_the_figures(child_server):
    config = RunConfig(strategy="locked", api="asyncio", concurrency=2, duration_s=0.5, warmup_s=0.5)
    result = run_shard(shard(config, child_server.address))
    assert result.checked > result.timestamps  # warm-up replies were checked, not counted
    assert latency.decode(result.latency).get_total_count() == result.requests_ok + result.censored


@pytest.mark.serial  # timing: runs alone, after the parallel phase
@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_a_server_stopped_mid_run_gives_errors_not_a_hang(api):
    server = ChildServer().start()
    config = RunConfig(strategy="dispatcher", api=api, concurrency=8, duration_s=2.5, warmup_s=0, timeout_s=1)
    threading.Timer(0.8, server.kill).start()
    started = time.monotonic()
    try:
        result = run_shard(shard(config, server.address))
    finally:
        server.close()
    assert time.monotonic() - started < 2.5 + 1 + 2 + 3
    assert result.requests_ok > 0
    assert result.requests_failed > 0
    assert set(result.errors) & {"UNAVAILABLE", "CANCELLED", "timeout", "hung", "ConnectionError", "INTERNAL"}


@pytest.mark.serial  # timing: runs alone, after the parallel phase
def test_thread_callers_stuck_past_the_deadline_are_reported_as_hung(child_server, monkeypatch):
    """A client whose get_ts never returns: the shard gives up on it and says so."""
    from tsobench import strategies

    class Stuck:
        def __init__(self, options):
            self.release = threading.Event()

        def open(self):
            pass

        def get_ts(self, count=1):
            self.release.wait(30)
            raise TimeoutError

        def close(self):
            self.release.set()

    stuck = strategies.Strategy("stuck", "never answers", Stuck, Stuck)
    monkeypatch.setattr(strategies, "get", lambda name: stuck)
    config = RunConfig(strategy="dispatcher", concurrency=3, duration_s=0.2, warmup_s=0, timeout_s=0.5)
    started = time.monotonic()
    result = run_shard(shard(config, child_server.address))
    assert time.monotonic() - started < 8
    assert result.hung == 3
    assert result.errors == {"hung": 3}


def test_a_request_crossing_the_warmup_boundary_counts_with_its_full_latency(tmp_path):
    """Started in the warm-up, answered in the window: counted, with all of its wait."""
    with ChildServer(ServerConfig(data_dir=str(tmp_path), delay_ms=400)) as slow:
        config = RunConfig(strategy="locked", api="asyncio", concurrency=1, duration_s=0.6, warmup_s=0.2, timeout_s=3)
        result = run_shard(shard(config, slow.address))
    h = latency.decode(result.latency)
    assert result.requests_ok >= 1
    # every answered request took its whole 400 ms, the first one's 200 ms in the warm-up included
    # (the histogram's smallest value may be a censored wait: one sent late in the window)
    assert result.answered_us / result.requests_ok >= 380_000
    assert h.get_total_count() == result.requests_ok + result.censored


@pytest.mark.serial  # timing: runs alone, after the parallel phase
@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_deadlines_fire_promptly_for_every_strategy(tmp_path, safe_strategy, api):
    """A server slower than --timeout gives timeouts, not hangs, and the run ends on time."""
    with ChildServer(ServerConfig(data_dir=str(tmp_path), delay_ms=1500)) as slow:
        config = RunConfig(strategy=safe_strategy, api=api, concurrency=4, duration_s=1.2, warmup_s=0, timeout_s=0.3)
        started = time.monotonic()
        result = run_shard(shard(config, slow.address))
        took = time.monotonic() - started
    assert result.errors.get("timeout", 0) > 0, result.errors
    assert result.requests_ok == 0
    assert result.hung == 0
    assert took < 1.2 + 0.3 + 1.0 + 2.0  # window + deadline + drain + closing, never a full grace per caller


@pytest.mark.parametrize("api", ["thread", "asyncio"])
@pytest.mark.parametrize("name", ["pool", "locked"])
def test_exclusive_streams_are_handed_out_in_fifo_order(child_server, name, api):
    """64 callers on 8 streams (or one lock): every caller gets its turns."""
    config = RunConfig(strategy=name, api=api, concurrency=64, pool_size=8, duration_s=1.0, warmup_s=0.2)
    result = run_shard(shard(config, child_server.address))
    assert result.errors == {}
    assert min(result.completions) > 0, result.completions
    assert fairness(result.completions)["jain"] > 0.9


def test_thread_callers_start_together_even_across_a_pause(child_server, monkeypatch):
    """A pause while the callers' threads start (a loaded host) must not let the first ones run alone."""
    start = threading.Thread.start

    def paused_start(self: threading.Thread) -> None:
        if self.name == "caller-20":
            time.sleep(0.8)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", paused_start)
    config = RunConfig(strategy="pool", api="thread", concurrency=64, pool_size=8, duration_s=1.0, warmup_s=0.2)
    result = run_shard(shard(config, child_server.address))
    assert result.errors == {}
    assert fairness(result.completions)["jain"] > 0.9, result.completions


@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_the_null_strategy_is_clean(api):
    config = RunConfig(strategy="null", api=api, concurrency=16, duration_s=0.5, warmup_s=0.1, count=3)
    result = run_shard(shard(config, "unused:1"))
    assert result.requests_ok > 100
    assert (result.ranges.duplicates, result.non_monotonic, result.mismatched) == (0, 0, 0)
    assert fairness(result.completions)["starved_callers"] == 0


class _HalfDeaf:
    """Answers even-numbered callers and leaves the others waiting: no error, no reply."""

    def __init__(self, options):
        self._next = 1 << 40
        self._forever = None

    async def open(self):
        self._forever = asyncio.get_running_loop().create_future()

    async def get_ts(self, count=1):
        task = asyncio.current_task()
        if int(task.get_name().rsplit("-", 1)[-1]) % 2:
            await self._forever
        await asyncio.sleep(0)
        self._next += count
        return Timestamp(self._next >> 18, self._next & ((1 << 18) - 1), count)

    async def close(self):
        pass


@pytest.mark.serial  # timing: runs alone, after the parallel phase
def test_callers_left_waiting_are_starved_and_censored(monkeypatch):
    half = strategies.Strategy("half-deaf", "answers half of its callers", _HalfDeaf, _HalfDeaf)
    monkeypatch.setattr(strategies, "get", lambda name: half)
    monkeypatch.setattr(asyncio, "create_task", _numbered_tasks(asyncio.create_task))
    config = RunConfig(strategy="dispatcher", api="asyncio", concurrency=4, duration_s=1.0, warmup_s=0, timeout_s=5)
    started = time.monotonic()
    result = run_shard(shard(config, "unused:1"))
    assert time.monotonic() - started < 1.0 + 1.0 + 2.5  # the drain is bounded, not a full timeout
    assert fairness(result.completions)["starved_callers"] == 2
    assert result.censored >= 2
    assert latency.decode(result.latency).get_max_value() >= 900_000  # the starved waits, as a tail


def _numbered_tasks(create_task):
    counter = iter(range(1_000_000))

    def create(coro, **kwargs):
        name = getattr(coro, "__name__", "")
        if name == "_async_caller":
            kwargs["name"] = f"caller-{next(counter)}"
        return create_task(coro, **kwargs)

    return create


@pytest.fixture(scope="module")
def failing_server(tmp_path_factory):
    """Each reply is replaced, with probability 0.2 (seeded), by aborting its stream with UNAVAILABLE."""
    config = ServerConfig(data_dir=str(tmp_path_factory.mktemp("failing")), fail_rate=0.2, seed=7)
    with ChildServer(config) as server:
        yield server


@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_a_fail_rate_of_a_fifth_fails_about_a_fifth_of_the_requests(failing_server, safe_strategy, api):
    # a quota, not a duration: how many finish in a window is the machine's, a quota's count is not
    config = RunConfig(strategy=safe_strategy, api=api, concurrency=4, requests=200, warmup_s=0, timeout_s=2)
    result = run_shard(shard(config, failing_server.address))
    finished = result.requests_ok + result.requests_failed
    assert finished == 200, result
    assert 0.08 <= result.requests_failed / finished <= 0.35, (result.requests_failed, finished, result.errors)
    assert set(result.errors) <= {"UNAVAILABLE"}, result.errors


NORMAL = ...  # what ``answer`` returns for a normal reply


class Plugin:
    """A third-party strategy whose ``answer(n)`` says what its n-th get_ts returns (NORMAL: a timestamp)."""

    def __init__(self, options: strategies.ClientOptions) -> None:
        self.calls = 0
        self.next = 1 << 40

    def _reply(self, count: int) -> object:
        self.calls += 1
        got = self.answer(self.calls)
        if got is not NORMAL:
            return got
        self.next += count
        return Timestamp(self.next >> 18, self.next & 262143, count)

    def answer(self, n: int) -> object:
        return NORMAL

    def open(self) -> None:
        pass

    def get_ts(self, count: int = 1) -> object:
        return self._reply(count)

    def close(self) -> None:
        pass


class AsyncPlugin(Plugin):
    async def open(self) -> None:  # type: ignore[override]
        pass

    async def get_ts(self, count: int = 1) -> object:  # type: ignore[override]
        await asyncio.sleep(0)
        return self._reply(count)

    async def close(self) -> None:  # type: ignore[override]
        pass


def run_plugin(monkeypatch, api: str, answer, concurrency: int = 2) -> ShardResult:
    thread = type("P", (Plugin,), {"answer": lambda self, n: answer(n)})
    aio = type("A", (AsyncPlugin,), {"answer": lambda self, n: answer(n)})
    monkeypatch.setattr(strategies, "get", lambda name: strategies.Strategy("plugin", "a test plugin", thread, aio))
    config = RunConfig(strategy="null", api=api, concurrency=concurrency, duration_s=0.4, warmup_s=0)
    return run_shard(shard(config, "unused:1"))


def judged(result: ShardResult) -> str:
    """The verdict a run of this one shard gets."""
    from tsobench.bench.model.verdict import judge

    metrics = {"requests_failed": result.requests_failed, "errors": result.errors, "crashes": result.crashes}
    return judge({"status": "completed", "metrics": metrics, "correctness": {}}).verdict.value


class Boom(BaseException):
    """Not an Exception: nothing in a caller's loop catches it, so the caller dies."""


@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_a_plugin_returning_none_once_is_a_failed_request_with_its_cause(monkeypatch, api):
    result = run_plugin(monkeypatch, api, lambda n: None if n == 50 else NORMAL)
    assert result.errors == {"plugin_error:NoneType": 1}, result.errors
    sample = result.error_samples["plugin_error:NoneType"]
    assert "not a Timestamp" in sample["message"] and "test_shard.py" in sample["where"]
    assert result.requests_ok > 0 and judged(result) == "errors"


@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_a_plugin_that_raises_is_named_as_the_plugin_s_error(monkeypatch, api):
    def answer(n: int) -> object:
        if n % 10 == 0:
            raise RuntimeError("the plugin's own bug")
        return NORMAL

    result = run_plugin(monkeypatch, api, answer)
    assert set(result.errors) == {"plugin_error:RuntimeError"}
    assert result.error_samples["plugin_error:RuntimeError"]["message"] == "RuntimeError: the plugin's own bug"


@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_a_plugin_that_always_answers_a_string_fails_every_request_not_the_harness(monkeypatch, api):
    result = run_plugin(monkeypatch, api, lambda n: "a string")
    assert result.requests_ok == 0 and result.requests_failed > 0
    assert set(result.errors) == {"plugin_error:str"}


@pytest.mark.parametrize("api", ["thread", "asyncio"])
def test_a_caller_that_dies_is_never_silent(monkeypatch, api):
    def answer(n: int) -> object:
        if n == 20:
            raise Boom("gone")
        return NORMAL

    result = run_plugin(monkeypatch, api, answer)
    assert result.crashes == 1 and result.errors.get("caller_died:Boom") == 1, result.errors
    assert "gone" in result.error_samples["caller_died:Boom"]["message"]
    assert judged(result) != "clean"
