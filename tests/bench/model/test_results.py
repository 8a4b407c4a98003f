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
