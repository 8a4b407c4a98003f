"""PD's metric declarations: the facts of tikv/pd, and everything derived from them (README, dashboard)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tsobench import pd_metrics as pd

ROOT = Path(__file__).parent.parent.parent
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")
LABEL_NAMES = {"by", "on"}


def test_buckets_and_names_are_pds():
    assert pd.E05[0] == 0.0005 and len(pd.E05) == 13 and pd.number(pd.E05[-1]) == "2.048"
    assert tuple(float(2**i) for i in range(13)) == pd.E1
    assert len(pd.CLIENT_BATCH) == 27 and pd.CLIENT_BATCH[-1] == 1000
    assert len({f.name for f in pd.FAMILIES}) == len(pd.FAMILIES)
    assert pd.family("pd_server_handle_tso_batch_size").versions == ("26",)
    assert pd.family("pd_tso_events").labels_in("8.5") == ("type", "group", "dc")
    assert pd.family("pd_tso_events").labels_in("26") == ("type", "group")
    assert len(pd.TSO_EVENT_TYPES) == 25


def test_render_writes_cumulative_buckets_and_go_numbers():
    fam = pd.family("pd_server_handle_tso_duration_seconds")
    text = pd.render_histogram(fam, [({}, [1, 2] + [0] * 11 + [3], 0.25)])
    assert 'pd_server_handle_tso_duration_seconds_bucket{le="0.001"} 3\n' in text
    assert 'pd_server_handle_tso_duration_seconds_bucket{le="+Inf"} 6\n' in text
    assert "pd_server_handle_tso_duration_seconds_count 6\n" in text
    assert pd.render(pd.family("pd_tso_events"), [({"type": "save", "group": "0"}, 3)]).endswith(
        'pd_tso_events{type="save",group="0"} 3\n'
    )


def test_the_readme_table_is_the_declarations():
    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- pd-metrics:start -->\n", "<!-- pd-metrics:end -->"
    assert readme[readme.index(start) + len(start) : readme.index(end)] == pd.readme_table()


def names_in(expr: str) -> set[str]:
    return set(SELECTOR.findall(expr)) - LABEL_NAMES


def test_names_in_finds_a_misspelt_name():
    assert names_in('rate(pd_server_handle_tso_duration_second_bucket{job="pd"}[1m])') == {
        "pd_server_handle_tso_duration_second_bucket"
    }


@pytest.mark.parametrize("path", ["examples/grafana/tsobench.json"])
def test_every_dashboard_query_names_only_exported_series(path):
    dashboard = json.loads((ROOT / path).read_text())
    exported = pd.exported_series("server") | pd.exported_series("client") | pd.exported_series("process")
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(queries) >= 10
    for expr in queries:
        assert names_in(expr), expr  # every selector carries the cluster labels, so the check sees it
        assert names_in(expr) <= exported, (expr, names_in(expr) - exported)
    covered = {n for q in queries for n in names_in(q)}
    for needed in ("pd_server_handle_tso_duration_seconds_bucket", "pd_client_request_handle_tso_batch_size_bucket"):
        assert needed in covered
