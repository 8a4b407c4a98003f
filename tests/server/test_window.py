"""WindowFile: the persisted high-water bound, saved atomically and durably."""

from __future__ import annotations

import json
import os
import stat

import pytest

from tsobench.server.window import FILE_NAME, MAX_PHYSICAL_MS, DataDirLock, DataDirLocked, WindowFile


def test_load_without_file_is_zero(tmp_path):
    assert WindowFile(tmp_path / "missing").load() == 0


def test_save_then_load_round_trips_and_creates_the_dir(tmp_path):
    window = WindowFile(tmp_path / "a" / "b")
    window.save(1_700_000_003_000)
    assert window.path == tmp_path / "a" / "b" / FILE_NAME
    assert window.load() == 1_700_000_003_000
    assert WindowFile(tmp_path / "a" / "b").load() == 1_700_000_003_000  # a fresh reader sees it too
    window.save(1_700_000_006_000)
    assert window.load() == 1_700_000_006_000


def test_save_leaves_only_the_window_file(tmp_path):
    window = WindowFile(tmp_path)
    for value in (1, 2, 3):
        window.save(value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]
    assert json.loads(window.path.read_text()) == {"high_water_ms": 3}


def test_save_fsyncs_the_file_before_the_rename_and_the_dir_after(tmp_path, monkeypatch):
    window = WindowFile(tmp_path)
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        mode = os.fstat(fd).st_mode
        events.append("fsync-dir" if stat.S_ISDIR(mode) else "fsync-file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    window.save(42)
    assert events == ["fsync-file", "replace", "fsync-dir"]


def test_a_save_that_fails_midway_keeps_the_old_window(tmp_path, monkeypatch):
    window = WindowFile(tmp_path)
    window.save(1000)

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        window.save(2000)
    monkeypatch.undo()
    assert window.load() == 1000


def test_a_leftover_temp_file_does_not_confuse_load(tmp_path):
    window = WindowFile(tmp_path)
    window.save(1000)
    window.path.with_suffix(".tmp").write_text('{"high_water_ms": 99')  # a crash mid-write
    assert window.load() == 1000
    window.save(2000)
    assert window.load() == 2000


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        '{"high_water_ms": 12',
        "[]",
        '"text"',
        "{}",
        '{"other": 1}',
        '{"high_water_ms": null}',
        '{"high_water_ms": "soon"}',
    ],
)
def test_a_corrupt_file_raises_value_error_naming_the_file(tmp_path, content):
    window = WindowFile(tmp_path)
    window.path.write_text(content)
    with pytest.raises(ValueError, match="corrupt TSO window file") as info:
        window.load()
    assert str(window.path) in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        "9223372036854775807",
        str(MAX_PHYSICAL_MS + 1),
        "1e30",
        "Infinity",
        "-Infinity",
        "NaN",
        "-1",
        "-1700000000000",
        "1700000000000.0",
        "1.5",
        "true",
        "false",
        "10" * 200,
        '"1700000000000"',
        "[1]",
        "{}",
    ],
)
def test_an_out_of_range_or_non_integer_value_is_refused(tmp_path, value):
    window = WindowFile(tmp_path)
    window.path.write_text(f'{{"high_water_ms": {value}}}')
    with pytest.raises(ValueError, match="corrupt TSO window file") as info:
        window.load()
    assert str(window.path) in str(info.value)


def test_the_largest_representable_value_loads(tmp_path):
    window = WindowFile(tmp_path)
    window.path.write_text(f'{{"high_water_ms": {MAX_PHYSICAL_MS}}}')
    assert window.load() == MAX_PHYSICAL_MS
    assert (MAX_PHYSICAL_MS << 18 | (1 << 18) - 1) < 1 << 63


def test_deeply_nested_json_is_refused_not_a_recursion_error(tmp_path):
    window = WindowFile(tmp_path)
    window.path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ValueError, match="corrupt TSO window file"):
        window.load()


def test_a_lower_save_never_overwrites_a_higher_window(tmp_path):
    window = WindowFile(tmp_path)
    assert window.save(5000) == 5000
    assert window.save(4000) == 5000  # refused: what is on disk stays
    assert window.load() == 5000
    other = WindowFile(tmp_path)  # another writer, e.g. a second server before the lock existed
    assert other.save(6000) == 6000
    assert window.save(5500) == 6000
    assert window.load() == 6000


def test_a_save_out_of_range_is_refused(tmp_path):
    with pytest.raises(ValueError):
        WindowFile(tmp_path).save(MAX_PHYSICAL_MS + 1)
    with pytest.raises(ValueError):
        WindowFile(tmp_path).save(-1)


def test_the_data_dir_lock_is_exclusive_and_released(tmp_path):
    first = DataDirLock(tmp_path / "data").acquire()
    with pytest.raises(DataDirLocked, match=f"in use by another TSO server \\(pid {os.getpid()}\\)"):
        DataDirLock(tmp_path / "data").acquire()
    first.release()
    DataDirLock(tmp_path / "data").acquire().release()  # free again


def test_binary_garbage_raises_value_error(tmp_path):
    window = WindowFile(tmp_path)
    window.path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError):
        window.load()
