"""What commands print for programs: one JSON document on stdout."""

import json
import math
from pathlib import Path

from tsobench.bench.cli.output import emit_json, run_document
from tsobench.bench.model import results

FIXTURES = Path(__file__).parents[3] / "results" / "fixtures"


def test_emit_json_prints_one_document_and_writes_no_nan(capsys):
    emit_json({"tps": 1.5, "ratio": math.nan, "spread": [math.inf, 2], "where": Path("/x")})
    out = capsys.readouterr().out
    assert json.loads(out) == {"tps": 1.5, "ratio": None, "spread": [None, 2], "where": "/x"}
    assert out.count("\n{") == 0 and out.endswith("}\n")


def test_a_runs_document_leads_with_its_figures_and_carries_its_metrics():
    result = results.read(FIXTURES / "pool-thread-c4.json")
    document = run_document(result, FIXTURES / "pool-thread-c4.json")
    assert document["throughput_tps"] == result.metrics["throughput_tps"]
    assert document["p99_us"] == result.metrics["latency_us"]["p99"]
    assert document["verdict"] == result.judgement.verdict.value and document["metrics"] == result.metrics
    json.dumps(document)  # every value is JSON's
