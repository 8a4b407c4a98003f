"""``--fault`` specs, their checks, and faults as a sweep axis."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tsobench.bench.model.config import ConfigError, RunConfig
from tsobench.bench.model.faults import Fault, in_time_order
from tsobench.bench.sweeps.sweep import SweepPlan, read_plan
from tsobench.options import build


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("kill@3s:1s", Fault("kill", 3.0, 1.0)),
        ("abort@2.5", Fault("abort", 2.5)),
        ("stall@3s:500ms", Fault("stall", 3.0, 0.5)),
        ("delay@3s:2s:20ms", Fault("delay", 3.0, 2.0, 20.0)),
        ("delay@250ms:1:0.5s", Fault("delay", 0.25, 1.0, 500.0)),
    ],
)
def test_specs_parse_and_print_back(spec, fault):
    assert Fault.parse(spec) == fault
    assert Fault.parse(fault.spec) == fault


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("crash@3s", "unknown kind 'crash'"),
        ("kill@3s", "kill is written like kill@3s:1s"),
        ("abort@3s:1s", "abort is written like abort@3s"),
        ("stall@soon:1s", "'soon' is not a duration"),
        ("stall@-1s:1s", "'-1s' is not a duration"),
        ("delay@1s:0s:20ms", "needs a positive duration"),
        ("kill", "kill is written like"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ConfigError, match=message):
        Fault.parse(spec)


def test_run_config_checks_its_faults():
    config = build(RunConfig, {"strategy": "locked", "duration_s": 5, "faults": ("stall@2s:500ms", "abort@1s")})
    assert [f.kind for f in in_time_order(config.faults)] == ["abort", "stall"]  # as given; fired in time order
    assert config.to_dict()["faults"][1] == {"kind": "abort", "at_s": 1.0, "duration_s": 0.0, "delay_ms": 0.0}
    for kwargs, message in (
        ({"target": "127.0.0.1:2379"}, "faults cannot be injected into a --target"),
        ({"faults": ("kill@4s:1s",)}, "not inside the 5s measured window"),
        ({"faults": ("kill@1s:1s", "abort@1.5s")}, "overlap"),
        ({"duration_s": None, "requests": 100}, "--fault needs --duration"),
    ):
        with pytest.raises(ConfigError, match=message):
            build(RunConfig, {"strategy": "locked", "duration_s": 5, "faults": ("abort@1s",), **kwargs})
    with pytest.raises(ConfigError, match=r"Fault\.parse reads it"):
        RunConfig(strategy="locked", duration_s=5, faults=("abort@1s",))  # type: ignore[arg-type]  # a spec is read by build


def tsobench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "tsobench.bench", *args], capture_output=True, text=True, timeout=60
    )


def test_fault_with_target_exits_2():
    out = tsobench("run", "-s", "locked", "--target", "127.0.0.1:1", "--duration", "2", "--fault", "abort@1s")
    assert out.returncode == 2
    assert "faults cannot be injected into a --target" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_bad_fault_spec_exits_2():
    out = tsobench("run", "-s", "locked", "--fault", "kill@1s")
    assert out.returncode == 2
    assert "kill is written like kill@3s:1s" in out.stderr and "Traceback" not in out.stderr


def test_faults_are_a_sweep_axis(tmp_path):
    plan = SweepPlan.of(
        strategies=("pool",), apis=("thread",), concurrency=(4,), faults="none,kill@2s:1s,stall@1s:500ms+abort@3s"
    )
    keys = [p.key for p in plan.points()]
    assert keys == [
        "pool-thread-c4-p1-closed-d0-rep0",
        "pool-thread-c4-p1-closed-d0-kill@2s-1s-rep0",
        "pool-thread-c4-p1-closed-d0-stall@1s-500ms+abort@3s-rep0",
    ]
    argv = plan.points()[2].argv(tmp_path / "x.json")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--fault"] == ["stall@1s:500ms", "abort@3s"]

    plan_file = tmp_path / "plan.toml"
    plan_file.write_text('strategies = ["pool"]\nfaults = ["kill@2s:1s", ["abort@1s", "stall@2s:0.5s"], "none"]\n')
    plan, _ = read_plan(plan_file)
    assert plan.values("faults") == ((Fault("kill", 2.0, 1.0),), (Fault("abort", 1.0), Fault("stall", 2.0, 0.5)), ())


def test_the_sweep_flag_takes_points_and_rejects_bad_ones(tmp_path):
    out = tsobench("sweep", "--strategies", "locked", "--faults", "kill@1s", "-o", str(tmp_path))
    assert out.returncode == 2 and "kill is written like" in out.stderr and "Traceback" not in out.stderr
