"""One tiny smoke case of the pytest-benchmark suite, so it cannot rot."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_suite_smoke_writes_extra_info(tmp_path):
    out = tmp_path / "out.json"
    env = {**os.environ, "TSOBENCH_SUITE": "smoke"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "bench",
            "-q",
            "-p",
            "no:cacheprovider",
            "--benchmark-json",
            str(out),
            "--benchmark-max-time=0.02",
            "--benchmark-min-rounds=2",
            "--benchmark-warmup=off",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    entries = json.loads(out.read_text())["benchmarks"]
    scenarios = [e for e in entries if e["group"] == "scenario"]
    assert scenarios, [e["name"] for e in entries]
    for entry in scenarios:
        info = entry["extra_info"]
        assert {"throughput_rps", "throughput_tps", "latency_us", "violations", "errors"} <= set(info)
        assert set(info["latency_us"]) >= {"p50", "p99"}
        assert info["violations"] == 0 and info["throughput_tps"] > 0
        assert info["requests"] == 300  # each round is the same fixed work, so round times compare
        assert entry["params"]["strategy"] == "dispatcher"
    assert {e["group"] for e in entries} >= {"micro: get_ts (thread)", "micro: hot paths"}
