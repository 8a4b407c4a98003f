"""Sweeps: planning the cross product, TOML plans, round-robin repeats, the folder lock,
resume after a stop, clean stops under every signal, unwritable folders, unavailable strategies."""

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tsobench.bench.cli.commands import main
from tsobench.bench.model import results
from tsobench.bench.model.config import ConfigError
from tsobench.bench.sweeps.sweep import MANIFEST, FolderError, FolderLock, Sweep, SweepPlan, read_plan
from tsobench.server.embedded import fetch_counters

TINY = ["--duration", "0.3", "--warmup", "0.1"]
LONG = ["--strategies", "locked", "--apis", "thread", "--concurrency", "2,4", "--duration", "30", "--warmup", "0"]
FIXTURE = Path(__file__).resolve().parents[3] / "results" / "fixtures" / "locked-thread-c4.json"
on_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc")


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
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    first = json.loads(manifest.read_text())
    assert first["interrupted"] is True and first["stopped_by"] == "SIGINT"
    hint = stdout.strip().splitlines()[-1]
    assert hint.endswith(f"resume with: tsobench sweep --resume -o {shlex.quote(str(out))}")

    def run_id(key: str) -> str:
        return json.loads((out / f"{key}.json").read_text())["run_id"]

    done = {p["key"]: run_id(p["key"]) for p in first["points"] if p["status"] == "ok"}
    assert done and len(done) < 4

    proc = sweep(*shlex.split(hint.split("resume with: tsobench sweep ")[1]))  # the printed command, nothing else
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, stdout
    final = json.loads(manifest.read_text())
    statuses = {p["key"]: p["status"] for p in final["points"]}
    assert all(statuses[k] == "skipped" for k in done)
    assert set(statuses.values()) <= {"ok", "skipped"}
    assert all(run_id(k) == r for k, r in done.items())  # not run again (the end-of-sweep annotation may rewrite)
    assert len(list(out.glob("*-rep0.json"))) == 4
    # the same plan, not the default one: its 0.3 s points stay 0.3 s points
    assert final["plan"] == first["plan"] and final["command"] == first["command"]
    assert {results.read(f).config["duration_s"] for f in out.glob("*-rep0.json")} == {0.3}


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


def _fake_points(monkeypatch, edits, ran=None, during=None):
    """A fake point runner: each point "runs" by writing a copy of a committed result,
    edited per strategy, so the sweep's exit code is tested without timing. ``ran``
    collects the keys in the order they ran; ``during`` is called as each one runs."""
    from tsobench.bench.sweeps.sweep import PointOutcome

    def run_point(self, point):
        if ran is not None:
            ran.append(point.key)
        if during is not None:
            during(point)
        data = json.loads(FIXTURE.read_text())
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


def test_repeats_run_round_robin_and_the_manifest_keeps_the_plan_order(monkeypatch, tmp_path):
    ran: list[str] = []
    _fake_points(monkeypatch, {}, ran)
    plan = SweepPlan.of(strategies=("locked",), apis=("thread",), concurrency=(1, 4), repeat=3, duration_s=0.3)
    Sweep(plan, tmp_path, "r", ["tsobench"]).run()
    assert ran == [f"locked-thread-c{c}-p1-closed-d0-rep{r}" for r in range(3) for c in (1, 4)]
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert [p["key"] for p in manifest["points"]] == [p.key for p in plan.points()]  # keys and order as before


def _as_recorded(point, **edits) -> dict:
    """A results document of ``point``: the fixture with the point's config as ``tsobench run`` records it."""
    data = json.loads(FIXTURE.read_text())
    data["config"] = {**json.loads(json.dumps(point.config.to_dict())), "cluster": None, **edits}
    return data


def test_a_point_is_done_only_when_its_file_measured_exactly_that_point(tmp_path):
    plan = SweepPlan.of(
        strategies=("locked",), apis=("thread",), concurrency=(4,), duration_s=2, faults=("kill@1s:0.5s",)
    )
    sweep = Sweep(plan, tmp_path, "d", ["tsobench"], resuming=True)
    (point,) = sweep.points
    path = sweep.result_path(point)
    assert sweep.done(point) is None  # no file
    path.write_text(json.dumps(_as_recorded(point)))
    assert sweep.done(point) is not None
    path.write_text(json.dumps(_as_recorded(point, duration_s=5.0)))  # another plan's run under the same key
    assert sweep.done(point) is None
    path.write_text(json.dumps({**_as_recorded(point), "status": "interrupted"}))
    assert sweep.done(point) is None
    path.write_text("{")
    assert sweep.done(point) is None


def test_resume_refuses_options_that_are_not_the_recorded_plan_and_lists_them(monkeypatch, tmp_path):
    _fake_points(monkeypatch, {})
    out = str(tmp_path / "s")
    plan = ["--strategies", "locked", "--apis", "thread", "--concurrency", "1,2", "--duration", "0.5"]
    assert CliRunner().invoke(main, ["sweep", *plan, "-o", out]).exit_code == 0
    refused = CliRunner().invoke(main, ["sweep", "--resume", "-o", out, "--concurrency", "1,4", "--duration", "0.5"])
    assert refused.exit_code == 2, refused.output
    message = " ".join(refused.output.split())
    assert "concurrency: recorded 1,2, given 1,4" in message and "duration" not in message.split("differ")[1]
    assert "Traceback" not in refused.output
    same = CliRunner().invoke(main, ["sweep", "--resume", "-o", out, *plan], terminal_width=200)
    assert same.exit_code == 0, same.output
    nothing = CliRunner().invoke(main, ["sweep", "--resume", "-o", str(tmp_path / "none")])
    assert nothing.exit_code == 2 and "nothing to resume" in nothing.output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_ends_the_sweep_after_its_point_with_130(monkeypatch, tmp_path, sig):
    ran: list[str] = []
    _fake_points(monkeypatch, {}, ran, during=lambda point: os.kill(os.getpid(), sig) if not ran[1:] else None)
    before = signal.getsignal(sig)
    out = tmp_path / "s"
    args = ["sweep", "--strategies", "locked", "--apis", "thread", "--concurrency", "1,2,4", *TINY, "-o", str(out)]
    result = CliRunner().invoke(main, args, terminal_width=200)
    assert result.exit_code == 130, result.output
    assert result.output.strip().splitlines()[-1].endswith(f"resume with: tsobench sweep --resume -o {out}")
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["interrupted"] is True and manifest["stopped_by"] == sig.name
    assert [p["status"] for p in manifest["points"]] == ["ok", "pending", "pending"] and len(ran) == 1
    assert signal.getsignal(sig) == before  # the sweep's handlers are gone with it


def test_a_folder_holds_one_sweep_at_a_time(tmp_path):
    out = tmp_path / "s"
    with FolderLock.take(out):
        (out / MANIFEST).write_text("{}")
        for args in (["--strategies", "locked", "--concurrency", "1", *TINY], ["--resume"]):
            proc = sweep(*args, "-o", str(out))
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 2, err
            assert f"in use by another sweep (pid {os.getpid()})" in " ".join(err.split())
            assert "Traceback" not in err
        assert (out / MANIFEST).read_text() == "{}"  # the refused sweep wrote nothing
        with pytest.raises(FolderError, match=f"pid {os.getpid()}"):
            FolderLock.take(out)
    FolderLock.take(out).release()  # released with its holder


@pytest.mark.parametrize("how", ["under a file", "read-only"])
def test_an_unwritable_output_folder_is_refused_before_any_point(monkeypatch, tmp_path, how):
    ran: list[str] = []
    _fake_points(monkeypatch, {}, ran)
    if how == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        (tmp_path / "ro").mkdir(mode=0o555)
        out = tmp_path / "ro"
    else:
        (tmp_path / "file").write_text("")
        out = tmp_path / "file" / "s"
    result = CliRunner().invoke(main, ["sweep", "--strategies", "locked", "--concurrency", "1", *TINY, "-o", str(out)])
    assert result.exit_code == 2 and ran == []
    assert "error: cannot" in result.output and "Traceback" not in result.output
    report = CliRunner().invoke(main, ["report", str(FIXTURE), "-o", str(out / "report")])
    assert report.exit_code == 2 and "error: cannot" in report.output


@pytest.mark.parametrize(
    "reason", ["strategy 'pool' is unavailable: No module named 'tikv_client'", "strategy pool has no asyncio API"]
)
def test_a_point_whose_strategy_is_unavailable_is_skipped_with_its_reason(monkeypatch, tmp_path, reason):
    from tsobench.bench.sweeps import sweep as sweep_module

    monkeypatch.setattr(sweep_module, "unavailable", lambda name, api: reason if name == "pool" else None)
    _fake_points(monkeypatch, {})
    out = tmp_path / "s"
    args = ["sweep", "--strategies", "locked,pool", "--apis", "asyncio", "--concurrency", "4", *TINY, "-o", str(out)]
    result = CliRunner().invoke(main, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert reason in result.output and "Traceback" not in result.output
    points = {p["key"]: p for p in json.loads((out / MANIFEST).read_text())["points"]}
    skipped = points["pool-asyncio-c4-p1-closed-d0-rep0"]
    assert skipped["status"] == "skipped" and reason in skipped["error"] and skipped["result"] is None
    assert points["locked-asyncio-c4-p1-closed-d0-rep0"]["status"] == "ok"


# A sweep's processes: the sweep, its running point (`tsobench run`, a session of its own), the
# point's embedded server and client processes. TMPDIR is a folder of the test's own, so the
# server's tso-* folder is found there and nothing else on the machine is mistaken for ours.


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after "pid (comm)": state, ppid, ...; None for a process gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in "ZX" else fields


def _tree(pid: int) -> set[int]:
    """``pid`` and every live process below it."""
    parents = {int(e.name): s[1] for e in Path("/proc").iterdir() if e.name.isdigit() and (s := _stat(int(e.name)))}
    found, grew = {pid}, True
    while grew:
        below = {child for child, parent in parents.items() if int(parent) in found}
        grew, found = bool(below - found), found | below
    return found


def _start(tmp_path: Path, *args: str, prefix: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], Path, Path]:
    """A sweep of long points in a session of its own (as ``setsid`` starts it), its TMPDIR the test's."""
    out, tmp = tmp_path / "s", tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-P", "-m", "tsobench.bench", "sweep", *args, "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    return proc, out, tmp


def _loading(proc: subprocess.Popen[str], tmp: Path, timeout_s: float = 60) -> set[int]:
    """Once the sweep's first point loads its server: every process of the sweep."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for port_file in tmp.glob("tso-*/metrics-port"):
            try:
                if fetch_counters(f"http://127.0.0.1:{int(port_file.read_text())}/metrics").rpcs > 0:
                    return _tree(proc.pid)
            except (OSError, ValueError):
                pass
        time.sleep(0.1)
    raise AssertionError("the first point did not start loading")


def _assert_nothing_left(pids: set[int], tmp: Path) -> None:
    deadline = time.monotonic() + 20
    while (any(map(_stat, pids)) or any(tmp.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert not [pid for pid in pids if _stat(pid)], "processes outlived the sweep"
        assert sorted(p.name for p in tmp.iterdir()) == [], "temp folders outlived the sweep"
    finally:
        for pid in pids:
            if _stat(pid):
                os.kill(pid, signal.SIGKILL)


def _interrupted_first_point(out: Path, sig: str) -> None:
    """The manifest says where the sweep stopped, and the point it stopped saved what it measured."""
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["interrupted"] is True and manifest["stopped_by"] == sig
    first, second = manifest["points"]
    assert first["status"] == "interrupted" and second["status"] == "pending", manifest["points"]
    assert results.read(out / first["result"]).status == "interrupted"


@on_proc
def test_sigterm_to_the_process_group_of_a_setsid_sweep_stops_it_cleanly(tmp_path):
    proc, out, tmp = _start(tmp_path, *LONG)
    pids: set[int] = set()
    try:
        pids = _loading(proc, tmp)
        assert len(pids) >= 3, pids  # the sweep, its point, the point's server and shard
        second = sweep(*LONG, "-o", str(out))  # two sweeps on one folder cannot both run
        _, err = second.communicate(timeout=60)
        assert second.returncode == 2 and f"pid {proc.pid}" in err
        os.killpg(proc.pid, signal.SIGTERM)  # as timeout, systemd and CI runners do
        stdout, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (stdout, err)
        assert "Traceback" not in err
        _interrupted_first_point(out, "SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
        _assert_nothing_left(pids, tmp)


@on_proc
def test_a_sweep_under_timeout_stops_cleanly(tmp_path):
    proc, out, tmp = _start(tmp_path, *LONG, prefix=("timeout", "10"))
    pids: set[int] = set()
    try:
        pids = _loading(proc, tmp)
        stdout, err = proc.communicate(timeout=60)
        assert proc.returncode == 124, (stdout, err)  # timeout's own code: it timed the command out
        assert stdout.strip().splitlines()[-1].endswith(f"resume with: tsobench sweep --resume -o {out}")
        _interrupted_first_point(out, "SIGTERM")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _assert_nothing_left(pids, tmp)


@on_proc
@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_a_killed_sweep_takes_its_point_with_it(tmp_path):
    proc, out, tmp = _start(tmp_path, *LONG)
    pids: set[int] = set()
    try:
        pids = _loading(proc, tmp)
        point = json.loads((out / MANIFEST).read_text())["points"][0]
        assert point["status"] == "running" and point["pid"] in pids
        proc.kill()  # SIGKILL: the sweep cannot pass anything on
        proc.communicate(timeout=60)
        _assert_nothing_left(pids, tmp)
        assert results.read(out / f"{point['key']}.json").status == "interrupted"  # it stopped as if Ctrl-C'd
    finally:
        if proc.poll() is None:
            proc.kill()
        _assert_nothing_left(pids, tmp)


def test_a_lost_point_is_forgiven_only_for_a_strategy_its_results_recorded_unsafe(monkeypatch, tmp_path):
    """Whether a strategy is the negative control comes from the results files, never the live registry."""
    from tsobench.bench.sweeps.sweep import PointOutcome

    def run_point(self, point):
        if point.config.concurrency == 8:  # the second point of each strategy leaves no result
            return PointOutcome(point.key, "failed", None, 1, 0.0, error="crashed")
        data = json.loads(FIXTURE.read_text())
        data["config"].update(strategy=point.config.strategy, concurrency=point.config.concurrency)
        data["strategy"] = {"name": point.config.strategy, "safe": point.config.strategy != "pool"}  # as recorded
        path = self.result_path(point)
        path.write_text(json.dumps(data))
        return PointOutcome(point.key, "ok", path.name, 0, 0.0, summary=None)

    monkeypatch.setattr(Sweep, "_run_point", run_point)
    args = ["sweep", "--strategies", "locked,pool", "--apis", "thread", "--concurrency", "4,8"]
    result = CliRunner().invoke(main, [*args, *TINY, "-o", str(tmp_path / "s")], terminal_width=200)
    assert result.exit_code == 3, result.output
    last = result.output.strip().splitlines()[-1]
    assert "locked-thread-c8-p1-closed-d0-rep0: failed (crashed)" in last  # recorded safe: its loss counts
    assert "pool-thread-c8" not in last  # its results say pool was recorded unsafe here


# --- a full disk ---------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 20 MB tmpfs (room for the 16 MB a sweep checks before each point, and little more); skipped where
    mounting is not permitted."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(folder)], check=False).returncode:
        pytest.skip("mounting a tmpfs is not permitted here")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> None:
    """Every byte of the filesystem taken: what a neighbour's log does to a disk."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for block in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError:
                pass
    finally:
        os.close(fd)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _descendants(pid: int) -> list[int]:
    return [d for c in _children(pid) for d in (c, *_descendants(c))]


def _fill_once_loading(pid: int, folder: Path, depth: int = 1, timeout_s: float = 60.0) -> None:
    """Fill the disk once ``tsobench run`` has started its server (``depth`` processes below ``pid``): past its
    check of the output folder, under load, so the disk fills mid-run."""
    deadline = time.monotonic() + timeout_s
    while len(_descendants(pid)) < depth and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    _fill(folder)


def _running_point(out: Path, timeout_s: float = 60.0) -> int:
    """The pid of the sweep's running point, from its manifest."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            for p in json.loads((out / MANIFEST).read_text())["points"]:
                if p["status"] == "running" and p.get("pid"):
                    return int(p["pid"])
        time.sleep(0.05)
    raise AssertionError("no point started")


def test_a_full_disk_mid_sweep_stops_it_cleanly_with_a_resume_line(small_disk: Path) -> None:
    out = small_disk / "sweep"
    args = ["--strategies", "locked", "--apis", "thread", "--concurrency", "1,2", "--duration", "3", "--warmup", "0"]
    proc = sweep(*args, "-o", str(out))
    point = _running_point(out)
    _fill_once_loading(point, small_disk, depth=2)  # the point's process, its `tsobench run`, the run's server
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 5, stdout  # EXIT_DISK
    assert "Traceback" not in stdout
    assert "stopped: could not write" in stdout
    assert f"resume with: tsobench sweep --resume -o {out}" in stdout
    saved = [w for w in stdout.split() if w.startswith(tempfile.gettempdir()) and w.endswith(".json")]
    assert saved and Path(saved[0]).is_file(), stdout  # the point's results, at the unique path named
    assert Path(saved[0]).name != "locked-thread-c1-p1-closed-d0-rep0.json"
    assert json.loads((out / MANIFEST).read_text())["kind"] == "tsobench-sweep"  # the last one whole: resumable
    Path(saved[0]).unlink()


def test_a_run_whose_results_land_only_in_the_fallback_exits_5(small_disk: Path) -> None:
    target = small_disk / "run.json"
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "tsobench.bench", "run", "-s", "locked", "--duration", "2", "--warmup", "0",
         "-q", "-o", str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _fill_once_loading(proc.pid, small_disk)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 5, stderr
    assert f"could not write {target}" in stderr and "Traceback" not in stderr
    line = next(line for line in stderr.splitlines() if line.startswith("saved to"))
    fallback = Path(line.split()[2])
    assert fallback.is_file() and fallback.name.startswith("run-") and not target.exists()
    results.read(fallback)
    fallback.unlink()
