"""rtt_cost, the round-trip emulation's price tag: it runs real servers and prints a table, judging nothing."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from tsobench.bench.suite.rtt_cost import main


def test_a_tiny_run_prints_a_row_per_round_trip_and_stops_its_servers():
    argv = [sys.executable, "-P", "-m", "tsobench.bench.suite.rtt_cost", "--rtt-ms", "0,1", "--replies", "20"]
    out = subprocess.run([*argv, "--rounds", "1", "--one-at-a-time"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "20 replies on one stream (one at a time), 1 rounds: median (min-max)"
    assert [line.split()[0] for line in lines[2:]] == ["rtt0", "rtt1"]


def test_a_bad_list_of_round_trips_is_a_usage_error():
    result = CliRunner().invoke(main, ["--rtt-ms", "0,fast"])
    assert result.exit_code == 2 and "not a list of numbers" in result.output
