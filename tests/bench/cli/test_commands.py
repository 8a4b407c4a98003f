"""The tsobench command line, run as a user would (a real process)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tsobench.server.embedded import fetch_counters


def tsobench(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "tsobench.bench", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_strategies_lists_one_line_each():
    out = tsobench("strategies")
    assert out.returncode == 0
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert names[:5] == ["per-request", "locked", "pool", "dispatcher", "unsafe-shared"]


def test_unknown_strategy_is_a_usage_error_listing_the_valid_ones():
    out = tsobench("run", "--strategy", "nope")
    assert out.returncode == 2
    assert "choose from per-request, locked, pool, dispatcher, unsafe-shared" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_options_exit_2_without_a_traceback():
    for args in (
        ["--concurrency", "0"],
        ["--duration", "1", "--requests", "5"],
        ["--api", "gevent"],
        ["--count", "0"],
        ["--server-fail-rate", "2"],
        ["--scheduler", "nowhere"],
        ["--server-host", "0.0.0.0"],
        ["--server-host", "10.0.0.1", "--target", "10.0.0.2:2379"],
    ):
        out = tsobench("run", "--strategy", "locked", *args)
        assert out.returncode == 2, args
        assert "Traceback" not in out.stderr


def test_a_clean_run_exits_0_and_writes_its_results(tmp_path):
    out = tsobench(
        "run",
        "-s",
        "dispatcher",
        "--api",
        "asyncio",
        "-c",
        "4",
        "--duration",
        "0.5",
        "--warmup",
        "0.2",
        "--output",
        str(tmp_path) + "/",
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    assert data["command"][:2] == ["tsobench", "run"]
    assert "throughput" in out.stdout and "OK" in out.stdout
    latency_row = next(line for line in out.stdout.splitlines() if "latency" in line)
    assert "p50" in latency_row and "max" in latency_row  # piped: one line, never wrapped mid-field


def test_the_unsafe_control_exits_3_and_still_saves(tmp_path):
    path = tmp_path / "unsafe.json"
    out = tsobench(
        "run",
        "-s",
        "unsafe-shared",
        "-c",
        "16",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--timeout",
        "1",
        "-o",
        str(path),
        "--quiet",
    )
    assert out.returncode == 3, out.stderr
    data = json.loads(path.read_text())
    assert data["metrics"]["requests_failed"] + data["correctness"]["violations"] > 0


def test_unreachable_target_is_a_clear_error(unused_address):
    out = tsobench("run", "-s", "locked", "--target", unused_address, "--duration", "0.2", "--timeout", "1", "--quiet")
    assert out.returncode in (1, 3)
    assert "Traceback" not in out.stderr


PLUGIN = '''
import asyncio
from tsobench.strategies import Strategy, Timestamp


class TwoOnly:
    """Answers the first two callers that ask, forever; leaves the others waiting (no error, no reply)."""

    def __init__(self, options):
        self.served, self.next = set(), 1 << 40

    async def open(self):
        self.never = asyncio.get_running_loop().create_future()

    async def get_ts(self, count=1):
        task = asyncio.current_task()
        if task not in self.served:
            if len(self.served) >= 2:
                await self.never
            self.served.add(task)
        await asyncio.sleep(0)
        self.next += count
        return Timestamp(self.next >> 18, self.next & 262143, count)

    async def close(self):
        pass


STRATEGY = Strategy("two-only", "answers two callers", TwoOnly, TwoOnly)
'''


def test_a_strategy_that_leaves_callers_waiting_exits_3_as_starved(tmp_path):
    """A third-party plugin (a real entry point) that never answers some callers."""
    (tmp_path / "two_only.py").write_text(PLUGIN)
    dist = tmp_path / "two_only-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: two-only\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tsobench.strategies]\ntwo-only = two_only:STRATEGY\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    args = [
        "run",
        "-s",
        "two-only",
        "--api",
        "asyncio",
        "-c",
        "6",
        "--duration",
        "1",
        "--warmup",
        "0",
        "-o",
        f"{tmp_path}/",
    ]
    out = subprocess.run(
        [sys.executable, "-P", "-m", "tsobench.bench", *args], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 3, out.stdout + out.stderr
    assert "STARVED" in out.stdout
    result = json.loads(next(tmp_path.glob("*two-only*.json")).read_text())
    assert result["metrics"]["fairness"]["starved_callers"] == 4
    assert result["metrics"]["censored"] >= 4
    assert result["metrics"]["latency_us"]["max"] >= 900_000


def test_a_remote_scheduler_needs_a_server_its_workers_reach():
    out = tsobench("run", "-s", "dispatcher", "-p", "2", "--scheduler", "tcp://192.0.2.1:8786")
    assert out.returncode == 2
    assert "--server-host" in out.stderr and "Traceback" not in out.stderr


def test_grpc_core_log_lines_only_with_verbose():
    """gRPC's C core logs a failed bind itself (add_port.cc); the CLI hides that unless -v."""
    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        quiet = tsobench("serve", "--port", port, "--metrics-port", "-1", env=env)
        loud = tsobench("-v", "serve", "--port", port, "--metrics-port", "-1", env=env)
    assert quiet.returncode == loud.returncode == 2
    assert "add_port.cc" not in quiet.stderr
    assert "add_port.cc" in loud.stderr


def children_of(pid: int) -> dict[int, str]:
    """Live child processes of pid, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        if int(fields[1]) == pid and fields[0] not in "ZX":
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZX"  # a zombie is dead, whoever has yet to reap it


def wait_for_load(run: subprocess.Popen, tmp: Path, timeout_s: float = 60) -> dict[int, str]:
    """The run's child processes, once its embedded server has answered requests."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()
        for port_file in tmp.glob("tso-*/metrics-port"):
            try:
                url = f"http://127.0.0.1:{int(port_file.read_text())}/metrics"
                if fetch_counters(url).rpcs > 0:
                    return children_of(run.pid)
            except (OSError, ValueError):
                pass
        time.sleep(0.1)
    raise AssertionError("the load did not start")


@pytest.mark.parametrize(
    ("sig", "group"),
    [
        (signal.SIGTERM, True),  # timeout, systemd, CI runners: the whole process group
        (signal.SIGHUP, True),  # a closed terminal
        (signal.SIGINT, True),  # Ctrl-C in a terminal
        (signal.SIGTERM, False),  # kill PID
        (signal.SIGKILL, False),  # kill -9 PID: nothing saved, nothing left either
    ],
)
def test_stopping_tsobench_run_saves_what_it_measured_and_leaves_nothing(tmp_path, sig, group):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    run_args = ["run", "-s", "locked", "-c", "2", "--duration", "30", "--warmup", "0", "--quiet"]
    run = subprocess.Popen(
        [sys.executable, "-P", "-m", "tsobench.bench", *run_args, "--output", f"{tmp_path / 'out'}/"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
        start_new_session=True,  # its own process group, as under `timeout` or a CI runner
    )
    children: dict[int, str] = {}
    try:
        children = wait_for_load(run, tmp)
        servers = [pid for pid, cmd in children.items() if "tsobench.server" in cmd]
        assert len(servers) == 1, children
        stopped = time.monotonic()
        if group:
            os.killpg(run.pid, sig)
        else:
            run.send_signal(sig)
        _, err = run.communicate(timeout=60)
        assert time.monotonic() - stopped < 10, "the stop took too long"
        deadline = time.monotonic() + 20
        while (any(map(alive, children)) or any(tmp.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [cmd for pid, cmd in children.items() if alive(pid)], "processes outlived the run"
        assert sorted(p.name for p in tmp.iterdir()) == [], "temp dirs outlived the run"
        if sig != signal.SIGKILL:  # stopped early, and what was measured is saved
            assert run.returncode == 130, err
            assert "Traceback" not in err
            (saved,) = (tmp_path / "out").glob("*.json")
            data = json.loads(saved.read_text())
            assert data["status"] == "interrupted" and data["metrics"]["requests_ok"] > 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.serial  # timing: runs alone, after the parallel phase
def test_an_output_that_cannot_be_written_is_refused_before_the_load(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    started = time.monotonic()
    out = tsobench("run", "-s", "null", "--duration", "30", "-o", f"{blocker}/results/")
    assert out.returncode == 2, out.stderr
    assert "--output" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - started < 20  # refused, not measured for 30 s first


def test_results_that_cannot_be_written_at_the_end_go_to_a_named_fallback(tmp_path, monkeypatch):
    import tempfile

    from rich.console import Console

    from tsobench.bench.cli import commands as cli
    from tsobench.bench.model import results

    fixture = next(Path(__file__).parents[3].glob("results/fixtures/*.json"))
    result = results.read(fixture)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "fallback"))
    (tmp_path / "fallback").mkdir()
    console = Console(record=True, width=200)
    saved = cli._save(result, blocker / "run.json", console)
    assert saved is not None and saved.parent == tmp_path / "fallback" and saved.exists()
    assert saved.name.startswith("run-") and saved.suffix == ".json"  # a name of its own, never a fixed one
    again = cli._save(result, blocker / "run.json", Console(record=True))
    assert again is not None and again != saved and saved.exists()  # the next failure overwrites nothing
    said = console.export_text()
    assert "could not write" in said and str(saved) in said
    assert not [p for p in tmp_path.rglob("*.tmp")], "temp files left behind"


def test_a_piped_run_leaves_a_line_per_interval_on_stderr_and_json_alone_on_stdout(tmp_path):
    """``run --interval 1 --duration 4`` into a file: the interval lines stay (each with ts/s and p99),
    and with --json stdout is one JSON document with the figures."""
    out = tsobench(
        "run", "-s", "null", "-c", "2", "--interval", "1", "--duration", "4s", "--warmup", "500ms",
        "-o", str(tmp_path) + "/", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if "ts/s" in line and "p99" in line and " ms" in line]
    assert len([line for line in lines if "warmup" not in line]) >= 3, out.stderr
    document = json.loads(out.stdout)
    assert document["throughput_tps"] > 0 and document["verdict"] == "clean"
    assert document["results_file"] == str(next(tmp_path.glob("*.json")))
    assert document["metrics"]["latency_us"]["p99"] == document["p99_us"]


def test_progress_none_and_quiet_show_no_interval_lines(tmp_path):
    for flag in (["--progress", "none"], ["-q"]):
        out = tsobench("run", "-s", "null", "-c", "1", "--duration", "1", "--warmup", "0", "-o", f"{tmp_path}/", *flag)
        assert out.returncode == 0, out.stderr
        assert "ts/s" not in out.stderr and "throughput" in out.stdout


def complete(words: str) -> list[str]:
    """What bash gets for the last word of ``words``, as click's completion protocol gives it."""
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    out = tsobench(env={**env, "_TSOBENCH_COMPLETE": "bash_complete"})
    assert out.returncode == 0, out.stderr
    return [line.split(",", 1)[1] for line in out.stdout.splitlines()]


def test_values_complete_in_the_shell():
    assert complete("tsobench run --api ") == ["thread", "asyncio"]
    assert "dispatcher" in complete("tsobench run -s d") and "pool" not in complete("tsobench run -s d")
    assert complete("tsobench run --loop uv") == ["uvloop"]
    assert "kill@" in complete("tsobench run --fault k")
    assert complete("tsobench sweep --strategies pool,disp") == ["pool,dispatcher"]


def test_completion_prints_each_shells_script():
    for shell, mark in (("bash", "complete -o"), ("zsh", "#compdef tsobench"), ("fish", "complete --no-files")):
        out = tsobench("completion", shell)
        assert out.returncode == 0 and mark in out.stdout and "_TSOBENCH_COMPLETE" in out.stdout, shell


def test_help_shows_choices_and_sweep_takes_runs_short_flags():
    assert "--api [thread|asyncio]" in tsobench("run", "--help").stdout
    sweep = tsobench("sweep", "--help").stdout
    assert "-s, --strategies" in sweep and "-c, --concurrency" in sweep and "-p, --processes" in sweep
    assert "harness's own ceiling" in tsobench("--help").stdout


def test_a_usage_error_says_why_first_and_offers_the_close_match():
    out = tsobench("run", "-s", "pol")
    assert out.returncode == 2
    first = out.stderr.splitlines()[0]
    assert first.startswith("error: unknown strategy 'pol' (did you mean 'pool'?)"), out.stderr
    assert "tsobench run --help" in out.stderr
    out = tsobench("rn")
    assert out.returncode == 2 and out.stderr.startswith("error: no command 'rn' (did you mean 'run'?)")


def test_the_quickstart_says_which_reference_client_it_leaves_out(monkeypatch):
    from tsobench.bench.cli.commands import reference_left_out
    from tsobench.strategies import registry

    monkeypatch.setattr(registry, "problems", lambda: {"tikv-client": "ModuleNotFoundError: tikv_client"})
    (line,) = reference_left_out()
    assert line.startswith("tikv-client") and "tikv_client" in line and "pip install 'tsobench[reference]'" in line
    monkeypatch.setattr(registry, "problems", dict)
    assert reference_left_out() == []


def test_sweep_and_slo_json_are_one_document_on_stdout(tmp_path):
    out = tsobench("sweep", "-s", "null", "-c", "1,2", "--apis", "thread", "--duration", "300ms", "--warmup", "0",
                   "-o", str(tmp_path / "sweep"), "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    assert document["document"] == "tsobench-sweep" and [p["status"] for p in document["points"]] == ["ok", "ok"]
    assert all(p["summary"]["throughput_tps"] > 0 for p in document["points"]) and document["dirty"] == []
    out = tsobench("slo", "-s", "null", "--p99-ms", "50", "--duration", "300ms", "--warmup", "0", "--rate", "500",
                   "--max-steps", "1", "-o", str(tmp_path / "slo"), "--json")  # fmt: skip
    assert out.returncode in (0, 3), out.stderr
    document = json.loads(out.stdout)
    assert document["document"] == "tsobench-slo" and len(document["designs"][0]["steps"]) == 1
