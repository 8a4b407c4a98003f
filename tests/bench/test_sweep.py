"""Sweeps: planning the cross product, TOML plans, resume after Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tsobench.bench.cli import main
from tsobench.bench.config import ConfigError
from tsobench.bench.sweep import SweepPlan, read_plan

TINY = ["--duration", "0.3", "--warmup", "0.1"]


def sweep(*args: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "tsobench.bench", "sweep", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_points_are_the_cross_product_with_stable_keys():
    plan = SweepPlan.of(
        strategies=("locked", "pool"), apis=("thread",), concurrency=(1, 4), rates=(None, 100.0), repeat=2
    )
    keys = [p.key for p in plan.points()]
    assert len(keys) == len(set(keys)) == 2 * 1 * 2 * 2 * 2
    assert "pool-thread-c4-p1-r100-d0-rep1" in keys
    assert [p.config.seed for p in plan.points()[:2]] == [0, 1]  # repeats differ in seed


def test_point_argv_round_trips_through_the_cli_options():
    plan = SweepPlan.of(
        strategies=("dispatcher",),
        apis=("asyncio",),
        concurrency=(8,),
        rates=(250.0,),
        server_delay_ms=(1.5,),
        batch_wait_us=100,
        streams=2,
    )
    argv = plan.points()[0].argv(out="x.json")
    for flag, value in (
        ("--rate", "250"),
        ("--server-delay-ms", "1.5"),
        ("--batch-wait-us", "100"),
        ("--streams", "2"),
        ("--concurrency", "8"),
    ):
        assert argv[argv.index(flag) + 1] == value


def test_scheduler_and_server_host_pass_through_to_every_point():
    plan = SweepPlan.from_dict(
        {"strategies": ["pool", "locked"], "scheduler": "tcp://10.0.0.5:8786", "server_host": "10.0.0.1"}
    )
    for point in plan.points():
        argv = point.argv(out="x.json")
        assert argv[argv.index("--scheduler") + 1] == "tcp://10.0.0.5:8786"
        assert argv[argv.index("--server-host") + 1] == "10.0.0.1"


def test_toml_plan_and_its_errors(tmp_path):
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text('strategies = ["pool"]\nconcurrency = [2, 4]\nrates = [0, 500]\nmax_batch = 64\n')
    plan, output = read_plan(plan_file, repeat=3)
    assert output is None
    assert plan.values("concurrency") == (2, 4) and plan.values("rates") == (None, 500.0) and plan.repeat == 3
    assert all(p.config.max_batch == 64 for p in plan.points())
    plan_file.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown sweep setting 'colour'"):
        read_plan(plan_file)


def test_bad_sweep_flags_are_usage_errors():
    proc = sweep("--strategies", "nope", "--concurrency", "1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "unknown strategy" in err and "Traceback" not in err


def test_sweep_resumes_after_ctrl_c_without_redoing_finished_points(tmp_path):
    out = tmp_path / "s"
    args = ["--strategies", "dispatcher,locked", "--apis", "asyncio", "--concurrency", "1,2", *TINY, "-o", str(out)]
    proc = sweep(*args, start_new_session=True)
    manifest = out / "sweep.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for the first finished point
        if manifest.exists() and any(p["status"] == "ok" for p in json.loads(manifest.read_text())["points"]):
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    first = json.loads(manifest.read_text())
    assert first["interrupted"] is True

    def run_id(key: str) -> str:
        return json.loads((out / f"{key}.json").read_text())["run_id"]

    done = {p["key"]: run_id(p["key"]) for p in first["points"] if p["status"] == "ok"}
    assert done and len(done) < 4

    proc = sweep(*args, "--resume")
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, stdout
    final = json.loads(manifest.read_text())
    statuses = {p["key"]: p["status"] for p in final["points"]}
    assert all(statuses[k] == "skipped" for k in done)
    assert set(statuses.values()) <= {"ok", "skipped"}
    assert all(run_id(k) == r for k, r in done.items())  # not run again (the end-of-sweep annotation may rewrite)
    assert len(list(out.glob("*-rep0.json"))) == 4


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path, unused_address):
    out = tmp_path / "s"
    proc = sweep(
        "--strategies",
        "locked",
        "--apis",
        "thread",
        "--concurrency",
        "1",
        *TINY,
        "--target",
        unused_address,
        "-o",
        str(out),
    )
    proc.communicate(timeout=120)
    assert proc.returncode == 3
    point = json.loads((out / "sweep.json").read_text())["points"][0]
    assert point["status"] == "failed" and "could not start" in point["error"]


def _fake_points(monkeypatch, edits):
    """A fake point runner: each point "runs" by writing a copy of a committed result,
    edited per strategy, so the sweep's exit code is tested without timing."""
    from tsobench.bench.sweep import PointOutcome, Sweep

    fixture = Path(__file__).resolve().parents[2] / "results" / "fixtures" / "locked-thread-c4.json"

    def run_point(self, point):
        data = json.loads(fixture.read_text())
        data["config"].update(strategy=point.config.strategy, concurrency=point.config.concurrency)
        data["strategy"] = {"name": point.config.strategy, "safe": point.config.strategy != "unsafe-shared"}
        edits.get(point.config.strategy, lambda d: None)(data)
        path = self.result_path(point)
        path.write_text(json.dumps(data))
        return PointOutcome(point.key, "ok", path.name, 0, 0.0, summary=None)

    monkeypatch.setattr(Sweep, "_run_point", run_point)


def _errors(data):
    data["metrics"].update(requests_failed=7, errors={"UNAVAILABLE": 7})


def test_sweep_exits_3_when_a_safe_point_is_dirty_and_names_it(monkeypatch, tmp_path):
    _fake_points(monkeypatch, {"pool": _errors, "unsafe-shared": _errors})
    args = ["sweep", "--strategies", "locked,pool,unsafe-shared", "--apis", "thread", "--concurrency", "4"]
    result = CliRunner().invoke(main, [*args, *TINY, "-o", str(tmp_path / "s")], terminal_width=200)
    assert result.exit_code == 3, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("dirty safe points (1): pool-thread-c4-p1-closed-d0-rep0: errors: 7 failed")
    assert "unsafe-shared" not in last


def test_sweep_exits_0_when_only_the_negative_control_failed(monkeypatch, tmp_path):
    _fake_points(monkeypatch, {"unsafe-shared": _errors})
    args = ["sweep", "--strategies", "locked,unsafe-shared", "--apis", "thread", "--concurrency", "4"]
    result = CliRunner().invoke(main, [*args, *TINY, "-o", str(tmp_path / "s")], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("every safe point clean")


def test_a_real_sweep_where_only_the_unsafe_control_fails_exits_0(tmp_path):
    out = tmp_path / "s"
    args = ["--strategies", "locked,unsafe-shared", "--apis", "thread", "--concurrency", "8"]
    proc = sweep(*args, *TINY, "-o", str(out))
    stdout, _ = proc.communicate(timeout=120)
    points = {p["key"]: p for p in json.loads((out / "sweep.json").read_text())["points"]}
    assert points["unsafe-shared-thread-c8-p1-closed-d0-rep0"]["status"] == "dirty"  # it failed, as it should
    assert proc.returncode == 0, stdout
    assert "every safe point clean" in stdout.strip().splitlines()[-1]
