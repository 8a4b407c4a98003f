"""What a command prints for a program to read: ``--json`` documents on stdout.

Every ``--json`` prints exactly one JSON document on stdout and nothing else there; progress,
warnings and the human tables go to stderr, so ``tsobench run --json | jq .throughput_tps`` works
while the run still shows how it goes. The documents are described in results/README.md.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsobench.bench.sweeps.sweep import MANIFEST

if TYPE_CHECKING:
    from tsobench.bench.analysis.report import Written
    from tsobench.bench.model.results import RunResult
    from tsobench.bench.sweeps.slo import Outcome
    from tsobench.bench.sweeps.sweep import Sweep

DOCUMENT_VERSION = 1


def emit_json(document: Mapping[str, Any]) -> None:
    """Print ``document`` as one JSON document on stdout (and only it), flushed at once.

    Values JSON has no word for are written as text (a Fault as its spec, a Path as itself); a
    float that is not finite becomes null, as JSON readers other than Python's refuse NaN."""
    text = json.dumps(_finite(document), indent=2, default=str, allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def run_document(result: RunResult, path: Path | None) -> dict[str, Any]:
    """``tsobench run --json``: the headline figures at the top (``throughput_tps``, ``p99_us``, the
    verdict), then the run's whole ``metrics`` and ``correctness`` as the results file holds them."""
    m, j, cfg = result.metrics, result.judgement, result.config
    return {
        "document": "tsobench-run",
        "version": DOCUMENT_VERSION,
        "run_id": result.run_id,
        "results_file": str(path) if path else None,
        "status": result.status,
        "verdict": j.verdict.value,
        "clean": j.clean,
        "detail": j.detail,
        "strategy": cfg["strategy"],
        "api": cfg["api"],
        "concurrency": cfg["concurrency"],
        "processes": cfg["processes"],
        "rate": cfg.get("rate"),
        "throughput_tps": m["throughput_tps"],
        "throughput_rps": m["throughput_rps"],
        "requests_ok": m["requests_ok"],
        "requests_failed": m["requests_failed"],
        **{f"{k}_us": m["latency_us"][k] if m["requests_ok"] else None for k in ("p50", "p99", "p999", "max")},
        "metrics": m,
        "correctness": result.correctness,
        "faults": result.faults,
    }


def sweep_document(sweep: Sweep, dirty: list[str], report: Path | None) -> dict[str, Any]:
    """``tsobench sweep --json``: each point's outcome (status, results file, summary) as the
    manifest holds it, and the points that make the sweep exit 3."""
    return {
        "document": "tsobench-sweep",
        "version": DOCUMENT_VERSION,
        "name": sweep.name,
        "output": str(sweep.out),
        "manifest": str(sweep.out / MANIFEST),
        "interrupted": sweep.interrupted,
        "stopped_by": sweep.stop_signal,
        "points": [asdict(o) for p in sweep.points if (o := sweep.outcomes.get(p.key)) is not None],
        "dirty": dirty,
        "report": str(report) if report else None,
    }


def report_document(written: Written) -> dict[str, Any]:
    """``tsobench report --json``: where each file went, the files left out (and why), the findings."""
    by_suffix = {p.name: str(p) for p in written.paths}
    return {
        "document": "tsobench-report",
        "version": DOCUMENT_VERSION,
        "html": by_suffix.get("report.html"),
        "markdown": by_suffix.get("report.md"),
        "runs_csv": by_suffix.get("runs.csv"),
        "points_csv": by_suffix.get("points.csv"),
        "files": [str(p) for p in written.paths],
        "skipped": [{"path": s.path, "reason": s.reason} for s in written.skipped],
        "findings": asdict(written.findings),
    }


def slo_document(outcomes: Sequence[Outcome], p99_ms: float, out: Path) -> dict[str, Any]:
    """``tsobench slo --json``: each design's search as ``slo.json`` holds it."""
    return {
        "document": "tsobench-slo",
        "version": DOCUMENT_VERSION,
        "p99_ms": p99_ms,
        "output": str(out),
        "designs": [o.to_dict() for o in outcomes],
    }
