"""What a result was measured on: this machine's facts, and the hosts of one run compared."""

from __future__ import annotations

import os
import platform
import re

from tsobench.bench.runs.environment import HOST_FACTS, environment, host_facts, hosts_section


def test_the_environment_names_the_interpreter_packages_machine_and_checkout():
    env = environment()
    assert env["python"] == platform.python_version() and env["cpu_count"] == os.cpu_count()
    assert env["grpcio"] and env["numpy"] and env["tsobench"]
    assert isinstance(env["cpu_model"], str) and env["cpu_model"]
    assert env["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", str(env["git_commit"]))
    assert environment() is env  # read once per process


def test_host_facts_are_what_must_match_across_hosts():
    assert set(host_facts()) == set(HOST_FACTS)
    assert host_facts()["python"] == platform.python_version()


def test_hosts_that_differ_are_warned_about():
    same = {"python": "3.11.7", "grpcio": "1.85.3", "cpu_count": 16}
    assert hosts_section("tcp://s:8786", {"a": same, "b": dict(same)})["warnings"] == []
    env = hosts_section("tcp://s:8786", {"a": same, "b": {**same, "grpcio": "1.70.0", "cpu_count": 8}})
    assert env["scheduler"] == "tcp://s:8786"
    assert env["warnings"] == [
        "grpcio differs between hosts: a 1.85.3, b 1.70.0",
        "cpu_count differs between hosts: a 16, b 8",
    ]
