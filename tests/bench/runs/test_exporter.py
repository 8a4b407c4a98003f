"""A run serves its client metrics live (--metrics-port) and pushes the final figures (--pushgateway)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import urllib.request

import pytest

from tsobench.bench.model.config import ConfigError, RunConfig
from tsobench.bench.runs import exporter
from tsobench.bench.runs.runner import run


def test_live_metrics_while_it_runs_and_the_final_push(child_server, http_stub):
    pushed, url = http_stub.pushed, http_stub.url
    config = RunConfig(
        strategy="pool",
        api="asyncio",
        concurrency=4,
        processes=2,
        duration_s=3.0,
        warmup_s=0.2,
        target=child_server.address,
        metrics_port=0,
        pushgateway=url,
    )
    scraped: list[str] = []

    def scrape_while_running() -> None:
        """Until a scrape shows RPCs (a labelled series exists once something was observed in it)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not scraped:
            time.sleep(0.2)
            port = next((t.port for t in _exporters() if t is not None), None)
            if port:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
                if "pd_client_request_handle_requests_duration_seconds_count" in text:
                    scraped.append(text)

    threading.Thread(target=scrape_while_running, daemon=True).start()
    result = run(config)
    assert (
        scraped and 'pd_client_request_handle_requests_duration_seconds_count{type="tso",strategy="pool"' in scraped[0]
    )
    path, kind, body = pushed[0]
    assert path.startswith("/metrics/job/tsobench/instance/") and kind.startswith("text/plain; version=0.0.4")
    text = body.decode()
    line = 'tsobench_client_requests_total{strategy="pool",api="asyncio",processes="2"} '
    total = int(next(x for x in text.splitlines() if x.startswith(line)).split()[-1])
    assert total >= result.metrics["requests_ok"] > 0  # the push counts the warm-up too
    if shutil.which("promtool"):
        for exposition in (scraped[0], text):
            check = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True)
            assert check.returncode == 0, check.stdout + check.stderr


_live: list = []


def _exporters():
    return _live


@pytest.fixture(autouse=True)
def _track_exporters(monkeypatch):
    """Note each exporter's HTTP endpoint as the run starts it (the test scrapes it)."""
    start = exporter.ClientExporter.start

    def tracked(self):
        started = start(self)
        _live.append(started.http)
        return started

    monkeypatch.setattr(exporter.ClientExporter, "start", tracked)
    yield
    _live.clear()


def test_client_metrics_need_spawned_shards():
    with pytest.raises(ConfigError, match="need spawned shards"):
        RunConfig(strategy="pool", metrics_port=0, scheduler="local")
    with pytest.raises(ConfigError, match="--pushgateway must be an http"):
        RunConfig(strategy="pool", pushgateway="gateway:9091")
