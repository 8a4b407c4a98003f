"""TimestampOracle with a fake clock and a real (tmp) WindowFile."""

from __future__ import annotations

import random

import pytest

from tsobench.server import LOGICAL_BITS, MAX_LOGICAL, compose
from tsobench.server.oracle import GUARD_MS, MAX_FUTURE_WINDOW_MS, TimestampOracle
from tsobench.server.window import MAX_PHYSICAL_MS, WindowError, WindowFile

T0 = 1_700_000_000_000


class FakeClock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class RecordingWindow(WindowFile):
    """A real WindowFile that records its saves and can be told to fail."""

    def __init__(self, data_dir) -> None:
        super().__init__(data_dir)
        self.saves: list[int] = []
        self.fail = False

    def save(self, high_water_ms: int) -> int:
        if self.fail:
            raise OSError(28, "No space left on device")
        on_disk = super().save(high_water_ms)
        self.saves.append(high_water_ms)
        return on_disk


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def window(tmp_path) -> RecordingWindow:
    return RecordingWindow(tmp_path / "data")


def ts(allocation) -> tuple[int, int]:
    return allocation.physical, allocation.logical


def test_compose_layout():
    assert LOGICAL_BITS == 18
    assert MAX_LOGICAL == 1 << 18
    assert compose(1, 0) == 1 << 18
    value = compose(T0, 12345)
    assert value >> LOGICAL_BITS == T0
    assert value & (MAX_LOGICAL - 1) == 12345


def test_starts_at_the_clock_and_persists_the_window_ahead(clock, window):
    oracle = TimestampOracle(window, window_ms=3000, clock=clock)
    assert (oracle.physical, oracle.logical) == (T0, 0)
    assert oracle.high_water_ms == T0 + 3000
    assert window.load() == T0 + 3000


def test_count_semantics(clock, window):
    oracle = TimestampOracle(window, clock=clock)
    one = oracle.allocate(1)
    assert (one.physical, one.logical, one.count) == (T0, 1, 1)
    assert one.first == one.last == compose(T0, 1)

    ten = oracle.allocate(10)
    assert (ten.physical, ten.logical, ten.count) == (T0, 11, 10)  # the reply carries the largest
    assert ten.first == compose(T0, 2)  # logical - count + 1
    assert ten.last == compose(T0, 11)
    assert ten.first == one.last + 1

    # Filling logical up to exactly 2**18 - 1 is allowed without moving physical.
    rest = oracle.allocate(MAX_LOGICAL - 1 - 11)
    assert ts(rest) == (T0, MAX_LOGICAL - 1)
    # One more overflows: it waits for the clock's next millisecond, then logical restarts at the count (never 0).
    assert oracle.allocate(1) is None
    clock.now += 1
    nxt = oracle.allocate(1)
    assert ts(nxt) == (T0 + 1, 1)


def test_batches_are_contiguous_disjoint_and_never_use_logical_zero(clock, window):
    oracle = TimestampOracle(window, window_ms=50, clock=clock)
    rng = random.Random(7)
    previous_last = 0
    for i in range(5000):
        if i % 97 == 0:
            clock.now += rng.choice([0, 1, 2, 50, -30])
            oracle.tick()
        count = rng.choice([1, 1, 2, 3, 16, 100, 4096, MAX_LOGICAL // 3, MAX_LOGICAL - 1])
        while (a := oracle.allocate(count)) is None:
            clock.now += 1  # what the server waits for
        assert a.count == count
        assert 1 <= a.logical < MAX_LOGICAL
        assert a.logical - count + 1 >= 1, "logical 0 handed out"
        assert a.last - a.first + 1 == count
        assert a.first > previous_last, "ranges overlap or go back"
        previous_last = a.last


def test_overflow_waits_for_the_clock_instead_of_running_ahead(clock, window):
    """PD's rule: a request that would overflow logical waits for the next physical update."""
    oracle = TimestampOracle(window, clock=clock)
    small = oracle.allocate(5)
    for _ in range(3):
        assert oracle.allocate(MAX_LOGICAL - 1) is None  # a stuck clock: nothing, however often asked
    assert (oracle.physical, oracle.logical) == (T0, 5)
    assert ts(oracle.allocate(7)) == (T0, 12)  # what still fits is served
    clock.now += 1
    big = oracle.allocate(MAX_LOGICAL - 1)
    assert ts(big) == (T0 + 1, MAX_LOGICAL - 1)
    assert big.first == compose(T0 + 1, 1) > small.last
    assert oracle.allocate(MAX_LOGICAL - 1) is None
    clock.now += 30
    assert ts(oracle.allocate(MAX_LOGICAL - 1)) == (T0 + 31, MAX_LOGICAL - 1)  # straight to the clock


def test_after_a_restart_ahead_of_the_clock_a_waiting_request_gets_the_next_tick(clock, window):
    window.save(T0 + 3000)  # a fast restart: the saved window lies ahead of the clock
    oracle = TimestampOracle(window, clock=clock)
    assert oracle.physical == T0 + 3000 + GUARD_MS
    oracle.allocate(10)
    assert oracle.allocate(MAX_LOGICAL - 1) is None
    clock.now += 50
    oracle.tick()  # the clock is still behind: the tick steps 1 ms for the waiting request
    assert ts(oracle.allocate(MAX_LOGICAL - 1)) == (T0 + 3002, MAX_LOGICAL - 1)
    clock.now += 50
    oracle.tick()  # nobody waits, logical is full: PD's step
    assert oracle.physical == T0 + 3003
    clock.now += 50
    oracle.tick()  # nothing to do
    assert oracle.physical == T0 + 3003


def test_physical_never_runs_ahead_of_a_forward_clock(clock, window):
    """Any mix of counts, ticks and clock steps: physical stays within PD's 1 ms step of the clock."""
    oracle = TimestampOracle(window, window_ms=20, clock=clock)
    rng = random.Random(5)
    for _ in range(20_000):
        if rng.random() < 0.05:
            clock.now += rng.choice([1, 1, 2, 5, 50])
            oracle.tick()
        a = oracle.allocate(rng.choice([1, 100, MAX_LOGICAL // 2, MAX_LOGICAL - 1]))
        assert oracle.physical <= clock.now + GUARD_MS
        assert a is None or a.physical <= clock.now + GUARD_MS


def test_tick_follows_the_wall_clock(clock, window):
    oracle = TimestampOracle(window, clock=clock)
    oracle.allocate(100)
    clock.now += 50
    oracle.tick()
    assert (oracle.physical, oracle.logical) == (T0 + 50, 0)
    assert ts(oracle.allocate(3)) == (T0 + 50, 3)
    # Within the guard (1 ms) physical stays, like PD.
    clock.now += GUARD_MS
    oracle.tick()
    assert ts(oracle.allocate(1)) == (T0 + 50, 4)


def test_tick_steps_ahead_when_logical_passed_half(clock, window):
    oracle = TimestampOracle(window, clock=clock)
    oracle.allocate(MAX_LOGICAL // 2)
    oracle.tick()  # exactly half: stays
    assert (oracle.physical, oracle.logical) == (T0, MAX_LOGICAL // 2)
    oracle.allocate(1)
    oracle.tick()  # past half: one ms ahead even though the clock did not move
    assert (oracle.physical, oracle.logical) == (T0 + 1, 0)


def test_clock_stepping_back_never_makes_timestamps_go_back(clock, window):
    oracle = TimestampOracle(window, clock=clock)
    clock.now += 500
    oracle.tick()
    before = oracle.allocate(7)
    clock.now -= 60_000  # NTP steps the clock back a minute
    for _ in range(20):
        oracle.tick()
        after = oracle.allocate(7)
        assert after.first > before.last
        assert after.physical >= T0 + 500
        before = after
    clock.now = T0 + 10_000  # the clock catches up: physical follows again
    oracle.tick()
    assert oracle.allocate(1).physical == T0 + 10_000


def test_restart_starts_above_the_saved_window(clock, window, tmp_path):
    first = TimestampOracle(window, window_ms=3000, clock=clock)
    issued = [first.allocate(c) for c in (1, 10)]
    clock.now += 1
    issued += [first.allocate(c) for c in (MAX_LOGICAL - 12, 5)]
    clock.now -= 1
    saved = window.load()
    assert saved > max(a.physical for a in issued)

    # Same wall clock (a fast restart): the new run starts above the saved window, not at the clock.
    second = TimestampOracle(WindowFile(tmp_path / "data"), window_ms=3000, clock=clock)
    assert second.physical == saved + GUARD_MS
    assert second.allocate(1).first > max(a.last for a in issued)
    assert WindowFile(tmp_path / "data").load() == saved + GUARD_MS + 3000


def test_restart_with_the_clock_stepped_back(clock, window, tmp_path):
    first = TimestampOracle(window, clock=clock)
    last = first.allocate(3).last
    clock.now -= 3_600_000
    second = TimestampOracle(WindowFile(tmp_path / "data"), clock=clock)
    assert second.allocate(1).first > last


def test_restart_after_running_far_past_the_initial_window(clock, window, tmp_path):
    first = TimestampOracle(window, window_ms=10, clock=clock)
    for _ in range(100):  # 100 ms of full milliseconds: 10x the window
        clock.now += 1
        last = first.allocate(MAX_LOGICAL - 1).last
    assert last >> LOGICAL_BITS == T0 + 100
    clock.now = T0  # and the clock stepped back across the restart
    second = TimestampOracle(WindowFile(tmp_path / "data"), window_ms=10, clock=clock)
    assert second.allocate(1).first > last


def test_window_extension_is_saved_before_use(clock, window):
    """Whatever the clock and the load do, every timestamp lies below the window already on disk."""
    oracle = TimestampOracle(window, window_ms=20, clock=clock)
    rng = random.Random(11)
    for _ in range(3000):
        step = rng.random()
        if step < 0.3:
            clock.now += rng.choice([0, 1, 2, 3, 19, 20, 21, 50, 5000, -40])
            oracle.tick()
            assert oracle.physical < window.load()
        else:
            a = oracle.allocate(rng.choice([1, 2, 1000, MAX_LOGICAL // 2, MAX_LOGICAL - 1]))
            assert a is None or a.physical < window.load(), "a timestamp was handed out beyond the persisted window"
    assert len(window.saves) > 10
    assert window.saves == sorted(window.saves), "the saved window went back"


def test_clock_jumping_past_the_window_extends_it(clock, window):
    oracle = TimestampOracle(window, window_ms=3000, clock=clock)
    clock.now += 10_000
    oracle.tick()
    assert oracle.physical == T0 + 10_000
    assert window.load() == T0 + 13_000


def test_a_failed_save_never_lets_timestamps_pass_the_saved_window(clock, window):
    oracle = TimestampOracle(window, window_ms=3000, clock=clock)
    clock.now = T0 + 2997
    oracle.tick()  # 3 ms below the window: no extension needed yet
    assert window.load() == T0 + 3000
    window.fail = True
    clock.now = T0 + 2999  # 1 ms below: the tick must extend the window, and cannot
    with pytest.raises(OSError):
        oracle.tick()
    assert oracle.allocate(1).physical < window.load()
    # Overflow near the window while the disk is still failing: an error, never a timestamp past the window.
    with pytest.raises(OSError):
        for _ in range(5):
            a = oracle.allocate(MAX_LOGICAL - 1)
            assert a is None or a.physical < window.load()
    assert oracle.high_water_ms == window.load()
    window.fail = False
    clock.now = T0 + 4500
    oracle.tick()
    a = oracle.allocate(1)
    assert a.physical == T0 + 4500
    assert a.physical < window.load()


@pytest.mark.parametrize("count", [0, -1, MAX_LOGICAL, MAX_LOGICAL + 1, 1 << 32])
def test_invalid_counts_raise_value_error_and_change_nothing(clock, window, count):
    oracle = TimestampOracle(window, clock=clock)
    oracle.allocate(4)
    with pytest.raises(ValueError, match="count"):
        oracle.allocate(count)
    assert ts(oracle.allocate(1)) == (T0, 5)


@pytest.mark.parametrize("window_ms", [-5, 0, 1])
def test_window_must_exceed_the_guard(window, clock, window_ms):
    with pytest.raises(ValueError):
        TimestampOracle(window, window_ms=window_ms, clock=clock)


def test_corrupt_window_file_refuses_to_start(window, clock):
    window.dir.mkdir(parents=True)
    window.path.write_text("{garbage")
    with pytest.raises(ValueError, match="corrupt"):
        TimestampOracle(window, clock=clock)


def test_save_persists_the_current_window(clock, window):
    oracle = TimestampOracle(window, clock=clock)
    window.path.unlink()
    oracle.save()
    assert window.load() == oracle.high_water_ms == T0 + 3000


def test_a_window_far_ahead_of_the_clock_is_refused_unless_accepted(clock, window):
    window.save(T0 + MAX_FUTURE_WINDOW_MS + 1)
    with pytest.raises(WindowError, match=r"days ahead of the wall clock.*--accept-future-window"):
        TimestampOracle(window, clock=clock)
    oracle = TimestampOracle(window, clock=clock, accept_future_window=True)
    assert oracle.physical == T0 + MAX_FUTURE_WINDOW_MS + 1 + GUARD_MS


def test_a_window_a_day_ahead_is_still_a_restart(clock, window):
    window.save(T0 + MAX_FUTURE_WINDOW_MS)
    assert TimestampOracle(window, clock=clock).physical == T0 + MAX_FUTURE_WINDOW_MS + GUARD_MS


def test_a_window_with_no_room_left_is_refused_even_when_accepted(clock, window):
    window.save(MAX_PHYSICAL_MS - 10)
    with pytest.raises(WindowError, match="no room"):
        TimestampOracle(window, clock=clock, accept_future_window=True)


def test_a_clock_behind_physical_is_reported_once_and_its_catching_up_once(clock, window):
    said: list[str] = []
    oracle = TimestampOracle(window, clock=clock, warn=said.append)
    oracle.tick()
    clock.now -= 10_000  # the clock steps back: physical stays where it was
    for _ in range(3):
        oracle.tick()
    assert len(said) == 1 and said[0].startswith("warning: system time may be incorrect")
    assert "10000 ms behind" in said[0]
    clock.now += 9_999
    oracle.tick()
    assert len(said) == 1
    clock.now += 2  # past physical again
    oracle.tick()
    oracle.tick()
    assert said[1:] == ["the wall clock caught up with the TSO's physical time"]


def test_physical_a_step_ahead_of_the_clock_is_no_warning(clock, window):
    said: list[str] = []
    oracle = TimestampOracle(window, clock=clock, warn=said.append)
    oracle.allocate(MAX_LOGICAL // 2 + 1)
    oracle.tick()  # logical past half: physical steps 1 ms ahead of the clock, as PD's does
    assert oracle.physical == T0 + GUARD_MS
    oracle.tick()
    assert said == []
