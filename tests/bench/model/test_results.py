"""The results model: declared once, read back for the docs and the analysis's columns."""

from __future__ import annotations

from pathlib import Path

from tsobench.bench.model import results

README = Path(__file__).parents[3] / "results" / "README.md"


def test_the_readme_field_tables_are_the_declarations():
    text = README.read_text()
    between = text.split("<!-- fields:start -->\n", 1)[1].split("<!-- fields:end -->", 1)[0]
    assert between == results.field_tables(), "regenerate: python -m tsobench.bench.model.results"


def test_sections_become_columns_with_their_templates():
    columns = results.columns()
    assert columns["p99_us"][0] == "int" and columns["p99_uncorrected_us"][0] == "int"
    assert columns["server_cpu_us_per_ts"][0] == "float" and columns["jain"][0] == "float"
    assert "error_samples" not in columns  # declared without a column
    assert columns["violations"] == ("int", "the sum of those three")


def test_a_row_reads_every_column_and_none_where_an_old_file_lacks_it():
    data = {"metrics": {"requests_ok": 5, "latency_us": {"p99": 10}, "server": None}, "correctness": {}}
    row = results.row(data)
    assert set(row) == set(results.columns())
    assert (row["requests_ok"], row["p99_us"], row["server_rpcs"], row["violations"]) == (5, 10, None, None)


FIXTURE = Path(__file__).parents[3] / "results" / "fixtures" / "locked-thread-c4.json"


def test_an_earlier_version_1_file_is_read_as_the_current_schema():
    import json

    data = json.loads(FIXTURE.read_text())
    data["metrics"] = {k: v for k, v in data["metrics"].items() if k != "censored"} | {"in_flight_at_end": 3}
    data["shards"] = [{"index": 0, "failure": "it died"}]
    for key in ("strategy", "verdict", "network", "timeline", "faults"):
        data.pop(key, None)
    upgraded = results.upgrade(data)
    assert upgraded["metrics"]["censored"] == 3  # its name before
    assert upgraded["shards"] == [{"index": 0, "error": "it died"}]
    assert (upgraded["strategy"], upgraded["verdict"], upgraded["timeline"], upgraded["faults"]) == ({}, None, [], [])
    assert results.RunResult.from_dict(data).metrics["censored"] == 3


def test_a_version_it_does_not_know_is_refused_with_the_versions_it_reads():
    import pytest

    for version in (2, True, "1", None):
        with pytest.raises(results.UnsupportedVersion, match=r"schema_version .* \(this tsobench reads 1\)"):
            results.upgrade({"schema_version": version})
