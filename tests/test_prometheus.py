"""A real Prometheus (Debian's ``prometheus`` package, which .ci/run installs) scrapes ``tsobench serve``
as job ``pd`` and a run as job ``tidb``; PD's dashboard-style queries and its TSO alerts run on them.

Skipped only where the binary is missing and the CI variable is not set (in CI a missing binary fails)."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tsobench.server import ChildCluster, ChildServer, ServerConfig

EXAMPLES = Path(__file__).parent.parent / "examples" / "prometheus"
PROMETHEUS, PROMTOOL = shutil.which("prometheus"), shutil.which("promtool")
CLUSTER = 'k8s_cluster="tsobench", tidb_cluster="tsobench"'  # the dashboard's two variables, as the scrape sets them


@pytest.fixture(scope="module", autouse=True)
def _binaries() -> None:
    if PROMETHEUS and PROMTOOL:
        return
    if os.environ.get("CI"):
        pytest.fail("prometheus/promtool missing in CI: .ci/run installs Debian's prometheus package")
    pytest.skip("prometheus/promtool not installed (apt-get install prometheus)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A Prometheus scraping every 250 ms, with PD's TSO rules, in a temporary folder."""

    def __init__(self, folder: Path, pd: list[str], tidb: list[str]) -> None:
        self.port = free_port()
        labels = {"k8s_cluster": "tsobench", "tidb_cluster": "tsobench"}
        config = {
            "global": {"scrape_interval": "250ms", "evaluation_interval": "250ms"},
            "rule_files": [str(EXAMPLES / "pd-tso.rules.yml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets, "labels": labels}]}
                for job, targets in (("pd", pd), ("tidb", tidb))
            ],
        }
        (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        assert PROMETHEUS
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(folder / "prometheus.log", "wb"),  # noqa: SIM115 (closed with the process)
        )
        deadline = time.monotonic() + 20
        while not self._ready():
            assert self.proc.poll() is None and time.monotonic() < deadline, (folder / "prometheus.log").read_text()
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as r:
            answer = json.load(r)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def values(self, expr: str) -> list[float]:
        return [float(s["value"][1]) for s in self.query(expr)]

    def alerts(self) -> dict[str, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/alerts", timeout=5) as r:
            return {a["labels"]["alertname"]: a["state"] for a in json.load(r)["data"]["alerts"]}

    def wait_for(self, expr: str, timeout_s: float = 20) -> list[float]:
        """The query's values once every one is finite (rates need two scrapes in their range)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.values(expr)
            if found and all(math.isfinite(v) for v in found):
                return found
            assert time.monotonic() < deadline, f"no finite data for {expr}: {found}"
            time.sleep(0.25)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start_run(folder: Path, target: str, port: int, *extra: str) -> subprocess.Popen:
    """A run exporting on ``port``, its results in ``folder`` (never the work tree's results/)."""
    argv = [sys.executable, "-m", "tsobench.bench", "run", "--target", target, "--metrics-port", str(port)]
    argv += ["-o", str(folder / "run.json"), "-q", "--warmup", "0", *extra]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def dashboard_queries(version: str) -> dict[str, str]:
    """The TSO panels' kind of queries: quantiles of both server histograms over rate(...[30s]), the request
    rate, events by type, the TSO gauge and gap, the client's duration by type and its batch size."""
    dc = ', dc="global"' if version == "8.5" else ""
    q = {
        "server TSO handle duration p99": "histogram_quantile(0.99, sum(rate("
        f"pd_server_handle_tso_duration_seconds_bucket{{{CLUSTER}}}[30s])) by (type, le))",
        "server TSO batch size p99": "histogram_quantile(0.99, sum(rate(pd_server_handle_tso_batch_size_bucket"
        f"{{{CLUSTER}}}[30s])) by (le))",
        "handle TSO requests rate": "sum(rate("
        f"pd_server_handle_tso_duration_seconds_count{{{CLUSTER}}}[1m])) by (type)",
        "TSO events by type": f"sum(rate(pd_tso_events{{{CLUSTER}}}[1m])) by (type)",
        "current TSO physical": f'max(pd_cluster_tso{{type="tso"{dc}}}) by (type)',
        "max TSO gap": f"sum(pd_cluster_tso_gap_millionseconds{{{CLUSTER}}}) by (dc)",
        "client TSO handle duration p99": "histogram_quantile(0.99, sum(rate("
        f'pd_client_request_handle_requests_duration_seconds_bucket{{{CLUSTER}, type=~"tso.*"}}[30s])) by (type, le))',
        "client cmd duration by type": "histogram_quantile(0.99, sum(rate("
        f"pd_client_cmd_handle_cmds_duration_seconds_bucket{{{CLUSTER}}}[30s])) by (type, le))",
        "client TSO batch size p99": "histogram_quantile(0.99, sum(rate(pd_client_request_handle_tso_batch_size_bucket"
        f"{{{CLUSTER}}}[1m])) by (le))",
        "server CPU per core": f'irate(process_cpu_seconds_total{{{CLUSTER}, job="pd"}}[30s])',
        "instances (pd_service_maxprocs)": f"pd_service_maxprocs{{{CLUSTER}}}",
    }
    if version == "8.5":
        del q["server TSO batch size p99"]
    return q


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def promtool_check(url: str) -> tuple[str, int, str]:
    """(promtool's findings, its exit code, the text it checked)."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    assert PROMTOOL
    done = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    return (done.stdout + done.stderr).strip(), done.returncode, text


# What promtool's lint says of a real PD as well: PD names its event counter without "_total", and PD's
# dashboard and alert rules query that name, so it is served as PD serves it.
PD_OWN_LINT = 'pd_tso_events counter metrics should have "_total" suffix'


@pytest.mark.parametrize("version", ["26", "8.5"])  # no timing asserted: the parallel phase
def test_pd_dashboard_queries_return_data_from_serve_and_a_run(workdir, version):
    config = ServerConfig(data_dir=str(workdir / "data"), pd_version=version)
    with ChildServer(config) as server:
        client_port = free_port()
        run = start_run(
            workdir, server.address, client_port, "-s", "dispatcher", "--api", "asyncio", "-c", "16", "--duration", "8"
        )
        prometheus = Prometheus(workdir, [f"127.0.0.1:{server.metrics_port}"], [f"127.0.0.1:{client_port}"])
        try:
            answered = {name: prometheus.wait_for(expr) for name, expr in dashboard_queries(version).items()}
            server_check = promtool_check(server.metrics_url or "")
            client_check = promtool_check(f"http://127.0.0.1:{client_port}/metrics")
        finally:
            prometheus.close()
            _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
    assert answered["current TSO physical"][0] > 1.7e12  # Unix ms: Grafana's dateTimeAsIso shows it as now
    assert answered["client TSO batch size p99"][0] >= 1
    assert server_check[:2] == (PD_OWN_LINT, 3)
    assert client_check[:2] == ("", 0)
    assert ("pd_server_handle_tso_batch_size_bucket" in server_check[2]) == (version == "26")
    assert ('dc="global"' in server_check[2]) == (version == "8.5")


@pytest.mark.serial
def test_the_client_latency_alert_holds_at_150_ms_and_not_at_loopback(workdir):
    rule = (
        "histogram_quantile(0.99, sum(rate(pd_client_request_handle_requests_duration_seconds_bucket"
        '{type="tso"}[1m])) by (instance,job,le) ) > 0.1'
    )
    found = {}
    for delay in (150, 0):
        folder = workdir / f"d{delay}"
        folder.mkdir()
        with ChildServer(ServerConfig(data_dir=str(folder / "data"), delay_ms=delay)) as server:
            port = free_port()
            run = start_run(folder, server.address, port, "-s", "pool", "-c", "2", "--duration", "5")
            prometheus = Prometheus(folder, [f"127.0.0.1:{server.metrics_port}"], [f"127.0.0.1:{port}"])
            try:
                prometheus.wait_for(
                    'sum(rate(pd_client_request_handle_requests_duration_seconds_count{type="tso"}[1m]))'
                )
                time.sleep(1.0)
                found[delay] = (prometheus.values(rule), prometheus.alerts())
            finally:
                prometheus.close()
                run.communicate(timeout=60)
    slow, slow_alerts = found[150]
    assert slow and slow[0] > 0.1
    assert slow_alerts.get("PD_tidb_handle_requests_duration") in ("pending", "firing")  # "for: 1m" not waited
    fast, fast_alerts = found[0]
    assert fast == [] and "PD_tidb_handle_requests_duration" not in fast_alerts


def _transfer_when_paced(cluster: ChildCluster) -> None:
    """A new leader refuses to hand over while its physical time is ahead of the wall clock: retry."""
    deadline = time.monotonic() + 30  # a bound for a hang only
    while True:
        try:
            cluster.transfer_leader()
            return
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_leader_change_alert_holds_after_two_transfers_and_not_without(workdir):
    rule = 'count( changes(pd_tso_events{type="save"}[10m]) > 0 )   >= 2'
    config = ServerConfig(data_dir=str(workdir / "data"), admin=True)
    with ChildCluster(config, 3) as cluster:
        targets = [f"127.0.0.1:{m.metrics_port}" for m in cluster.members]
        prometheus = Prometheus(workdir, targets, [])
        try:
            prometheus.wait_for('sum(pd_tso_events{type="save"})')
            time.sleep(1.0)
            before = prometheus.values(rule)
            for _ in range(2):
                _transfer_when_paced(cluster)
                cluster.wait_for_leader()
                time.sleep(1.0)
            after = prometheus.wait_for(rule)
        finally:
            prometheus.close()
    assert before == []
    assert after and after[0] >= 2


def test_promtool_unit_tests_of_pd_tso_alerts():
    assert PROMTOOL
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "pd-tso.rules.test.yml"], cwd=EXAMPLES, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
