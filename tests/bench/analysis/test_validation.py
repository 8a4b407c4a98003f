"""Hostile results files: each case of issue 28, and fuzzed copies of the fixtures, fed to the loader and to
``report``, ``compare`` and ``plan``: no traceback, no hang, one named line per file left out, the valid
files kept."""

from __future__ import annotations

import copy
import json
import math
import os
import random
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tsobench.bench.analysis import validation
from tsobench.bench.analysis.loader import NUMERIC, load, skipped

FIXTURES = Path(__file__).resolve().parents[3] / "results" / "fixtures"
GOOD = ("dispatcher-asyncio-c4.json", "locked-thread-c4.json", "dispatcher-asyncio-c16.json")
BASE = "pool-thread-c4.json"
ENTRY = {"t_s": 0.0, "ok": 5, "failed": 0, "tps": 10.0, "p50_us": 1, "p99_us": 2, "max_us": 3, "warmup": False}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for p in parents:
            node = node[p]
        node[last] = value

    return edit


def _no_t_s(data: dict[str, Any]) -> None:
    data["timeline"] = [{k: v for k, v in ENTRY.items() if k != "t_s"}]


# file name -> (edit, the reason the warning must give)
CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "minus-infinity.json": (_set("metrics.requests_ok", -math.inf), "metrics.requests_ok is -inf, not a finite"),
    "nan.json": (_set("metrics.throughput_tps", math.nan), "metrics.throughput_tps is nan, not a finite"),
    "no-t_s.json": (_no_t_s, "timeline[0] lacks t_s"),
    "fractional.json": (_set("metrics.requests_ok", 2.5), "metrics.requests_ok is 2.5, not a whole number"),
    "negative.json": (_set("metrics.requests_failed", -5), "metrics.requests_failed is -5, below zero"),
    "huge-rate.json": (_set("metrics.throughput_tps", 1e308), "metrics.throughput_tps is 1e+308, beyond a 64-bit"),
    "infinite-config.json": (_set("config.concurrency", math.inf), "concurrency is inf, not a finite number"),
    "huge-count.json": (_set("correctness.checked", 2**70), "beyond a 64-bit count"),
    "bad-p99.json": (_set("metrics.latency_us.p99", "fast"), 'metrics.latency_us.p99 is "fast", not a number'),
}


def _write(folder: Path, name: str, data: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(data))  # json writes NaN and Infinity as a results file with them would hold
    return path


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """Good fixtures beside every case of the issue, a named pipe called r.json and a 200 MB file."""
    folder = tmp_path / "runs"
    folder.mkdir()
    for name in GOOD:
        _write(folder, name, json.loads((FIXTURES / name).read_text()))
    for name, (edit, _) in CASES.items():
        data = json.loads((FIXTURES / BASE).read_text())
        edit(data)
        _write(folder, name, data)
    os.mkfifo(folder / "r.json")
    with (folder / "huge.json").open("wb") as f:
        f.truncate(200 * 2**20)  # sparse: 200 MB by its size, nothing on the disk
    return folder


def _expected() -> dict[str, str]:
    return {
        **{name: reason for name, (_, reason) in CASES.items()},
        "r.json": "not a regular file (a named pipe)",
        "huge.json": "200.0 MB, above the 64.0 MB",
    }


def test_each_case_is_left_out_by_name_and_the_rest_kept(hostile: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no library warning, even unsilenced
        df = load([hostile])
    assert sorted(Path(p).name for p in df["path"]) == sorted(GOOD)
    reasons = {Path(s.path).name: s.reason for s in skipped(df)}
    assert set(reasons) == set(_expected())
    for name, reason in _expected().items():
        assert reason in reasons[name], (name, reasons[name])


def _tsobench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tsobench.bench", *args], capture_output=True, text=True, timeout=90, check=False
    )


def _clean_console(proc: subprocess.CompletedProcess[str]) -> None:
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both
    assert "Warning:" not in both and "RuntimeWarning" not in both  # numpy's and matplotlib's own lines


def test_report_compare_and_plan_name_each_file_and_go_on(hostile: Path, tmp_path: Path) -> None:
    report = _tsobench("report", str(hostile), "-o", str(tmp_path / "report"))
    _clean_console(report)
    assert report.returncode == 3, report.stderr  # written, some files left out
    assert (tmp_path / "report" / "report.md").is_file()
    plan = _tsobench("plan", str(hostile), "--target-tps", "1000", "--json")
    _clean_console(plan)
    assert plan.returncode in (0, 3, 4), plan.stderr
    json.loads(plan.stdout)  # the one JSON document; the warnings went to stderr
    compare = _tsobench("compare", str(hostile), str(FIXTURES))
    _clean_console(compare)
    assert compare.returncode in (0, 3, 4), compare.stderr  # 4: some point cannot be told
    for proc, where in ((report, report.stderr), (plan, plan.stderr), (compare, compare.stdout)):
        lines = [line for line in where.splitlines() if "skipped" in line]
        for name, reason in _expected().items():
            named = [line for line in lines if f"/{name}:" in line]
            assert len(named) == 1 and reason in named[0], (proc.args, name, named)


def test_report_refuses_dev_null_as_not_a_regular_file() -> None:
    proc = _tsobench("report", "/dev/null")
    assert proc.returncode == 2
    assert "/dev/null: not a regular file (a character device)" in proc.stderr
    assert "no such file" not in proc.stderr


def test_read_json_opens_no_pipe_and_reads_no_more_than_its_limit(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p.json")
    with pytest.raises(validation.Untrusted, match="named pipe"):
        validation.read_json(tmp_path / "p.json")  # returns at once: a hang fails the test's timeout
    (tmp_path / "a.json").write_text('{"a": ' + "1" * 100 + "}")
    with pytest.raises(validation.Untrusted, match="above the 64 bytes"):
        validation.read_json(tmp_path / "a.json", limit=64)
    (tmp_path / "digits.json").write_text("1" * 10_000)
    with pytest.raises(validation.Untrusted, match="not a JSON file"):
        validation.read_json(tmp_path / "digits.json")


# --- fuzzed -------------------------------------------------------------------------------------------

NASTY: tuple[Any, ...] = (-math.inf, math.inf, math.nan, -1, -0.5, 2.5, 1e308, 2**64, "x", None, [], {}, True, [1])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data.setdefault("timeline", [dict(ENTRY), {**ENTRY, "t_s": 1.0}])
    for _ in range(rng.randint(1, 3)):
        *parents, last = rng.choice(_paths(data))
        node = data
        for p in parents:
            node = node[p]
        if isinstance(node, dict) and rng.random() < 0.2:
            del node[last]
        else:
            node[last] = rng.choice(NASTY)
    return data


def _fuzzed(folder: Path, count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    names = sorted(p.name for p in FIXTURES.glob("*.json") if p.name != "pytest-benchmark-smoke.json")
    out = []
    for i in range(count):
        data = json.loads((FIXTURES / rng.choice(names)).read_text())
        data["run_id"] = f"fuzz-{i}"
        if rng.random() < 0.15:  # bytes cut or garbled, as a full disk or a stranger leaves them
            text = json.dumps(_mutate(data, rng))
            cut = rng.randrange(len(text))
            path = folder / f"fuzz-{i}.json"
            path.write_bytes(text[:cut].encode() + (b"\xff\xfe" if rng.random() < 0.5 else b""))
        else:
            path = _write(folder, f"fuzz-{i}.json", _mutate(data, rng))
        out.append(path)
    return out


def _looks_like_results(path: Path) -> bool:
    try:
        data = json.loads(path.read_bytes())
    except ValueError:
        return True  # unreadable: it must be named
    return isinstance(data, dict) and "schema_version" in data and "metrics" in data


def test_fuzzed_files_are_kept_sound_or_left_out_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "fuzz"
    folder.mkdir()
    for name in GOOD:
        _write(folder, name, json.loads((FIXTURES / name).read_text()))
    fuzzed = _fuzzed(folder, 150, seed=28)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load([folder])
    kept = {Path(p).name for p in df["path"]}
    left_out = {Path(s.path).name for s in skipped(df)}
    assert set(GOOD) <= kept
    ignored = {p.name for p in fuzzed if not _looks_like_results(p)}  # other JSON in a folder is not a results file
    assert kept | left_out | ignored == {p.name for p in fuzzed} | set(GOOD)
    assert not kept & left_out
    for col in NUMERIC:
        values = df[col].dropna().astype(float)
        assert values.map(math.isfinite).all(), col
    assert len(left_out) > 50  # the mutations mostly reach something the loader checks


@pytest.mark.timeout(300)
def test_fuzzed_files_through_the_three_commands(tmp_path: Path) -> None:
    folder = tmp_path / "fuzz"
    folder.mkdir()
    for name in GOOD:
        _write(folder, name, json.loads((FIXTURES / name).read_text()))
    _fuzzed(folder, 40, seed=2028)
    for args in (
        ("report", str(folder), "-o", str(tmp_path / "report")),
        ("plan", str(folder), "--target-tps", "1000"),
        ("compare", str(folder), str(FIXTURES)),
    ):
        proc = _tsobench(*args)
        _clean_console(proc)
        assert proc.returncode in (0, 3, 4), (args, proc.stderr[-2000:])
