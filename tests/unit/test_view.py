"""`sluiceway view`: the graph's nodes and columns, the charts, and a page that needs nothing
outside itself."""

from __future__ import annotations

import re

import pytest

from sluiceway.cli import main
from sluiceway.spec import load_spec
from sluiceway.state import LocalStateStore
from sluiceway.view import (
    COL_GAP,
    MARGIN,
    NODE_H,
    NODE_W,
    ROW_GAP,
    dataset_history,
    graph_svg,
    layout,
    pipeline_graph,
    render_page,
)

from ..view_fixture import EVIL, OUTPUTS, TABLES, reports, write_spec

pytestmark = pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only


@pytest.fixture
def spec(tmp_path):
    return load_spec(write_spec(tmp_path))


def test_graph_has_a_node_per_source_dataset_quarantine_and_load(spec):
    graph = pipeline_graph(spec)
    kinds = {n.id: n.kind for n in graph.nodes}
    assert kinds == {
        "connection:src": "connection",  # `serving` is only a load target: drawn as the load
        "table:orders": "table",
        "table:customers": "table",
        "quarantine:orders": "quarantine",
        "output:daily": "output",
        "output:top_customers": "output",
        "load:orders:0": "load",
    }
    assert {(e.source, e.target) for e in graph.edges} == {
        ("connection:src", "table:orders"),
        ("connection:src", "table:customers"),
        ("table:orders", "quarantine:orders"),
        ("table:orders", "output:daily"),
        ("output:daily", "output:top_customers"),
        ("table:customers", "output:top_customers"),
        ("table:orders", "load:orders:0"),
    }
    marks = {n.id: n.marks for n in graph.nodes}
    assert marks["table:orders"] == ("glue",)
    assert marks["table:customers"] == ("iceberg",)


def test_layout_puts_each_step_in_its_own_column(spec):
    positions = layout(pipeline_graph(spec))
    columns = {node_id: col for node_id, (col, _) in positions.items()}
    assert columns == {
        "connection:src": 0,
        "table:orders": 1,
        "table:customers": 1,
        "quarantine:orders": 2,
        "output:daily": 2,
        "output:top_customers": 3,
        "load:orders:0": 4,
    }
    # No two nodes share a place.
    assert len(set(positions.values())) == len(positions)


def test_an_edge_that_skips_a_column_runs_between_the_rows(spec):
    """customers (column 1) -> top_customers (column 3) passes column 2: its straight run
    lies in the lane between two rows, where no node is."""
    graph = pipeline_graph(spec)
    svg = graph_svg(graph, layout(graph))
    path = re.search(r'data-from="table:customers" data-to="output:top_customers" d="([^"]+)"', svg)
    assert path is not None
    straight = re.search(r"L(\d+),(\d+)", path.group(1))
    assert straight is not None, path.group(1)  # a long edge has a straight run
    x, lane = int(straight.group(1)), int(straight.group(2))
    assert x == MARGIN + 3 * COL_GAP - (COL_GAP - NODE_W)  # it ends in the gap before column 3
    row_tops = range(MARGIN, MARGIN + 10 * ROW_GAP, ROW_GAP)
    assert not any(top <= lane <= top + NODE_H for top in row_tops)  # never over a node
    # An edge to the next column is one curve.
    near = re.search(r'data-from="connection:src" data-to="table:orders" d="([^"]+)"', svg)
    assert near is not None and "L" not in near.group(1)


def test_history_follows_one_dataset_through_the_reports():
    points = dataset_history("orders", reports(3))
    assert [p.values["rows_read"] for p in points] == [100_000, 150, 300]
    assert [p.watermark for p in points][-1] == "2026-12-03 00:00:00"
    assert dataset_history("top_customers", reports(3)) == []


def test_page_charts_every_dataset_that_ran_and_says_which_never_did(spec):
    runs = reports(4)
    page = render_page(spec, runs)

    assert page.nodes == 7
    assert page.charts == 6  # rows and seconds for orders, customers and daily
    assert page.html.count('<svg class="chart"') == 6
    # rows: read/written/quarantined per run; seconds: one bar per run.
    assert page.html.count('class="bar written"') == 3 * 4
    assert page.html.count('class="bar seconds"') == 3 * 4
    assert page.html.count('class="status-cell failed"') == 1
    for name in (*TABLES, *OUTPUTS):
        assert f'id="card-{name}"' in page.html
    top = page.html.split('id="card-top_customers"')[1].split("</section>")[0]
    assert "not in any run report yet" in top
    assert "watermark <code>2026-12-04 00:00:00</code>" in page.html


def test_page_is_self_contained_and_escapes_what_reports_hold(spec):
    html = render_page(spec, reports(4)).html

    assert EVIL not in html
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; more" in html
    assert len(re.findall(r"<script", html)) == 1  # the page's own, inline
    assert not re.search(r"\b(src|href)\s*=", html)
    assert not re.search(r"@import|url\((?!#)", html)  # CSS fetches nothing either
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}


def test_page_without_runs_still_draws_the_graph(spec):
    page = render_page(spec, [])
    assert page.charts == 0
    assert "no run reports in" in page.html
    assert page.html.count('<g class="node ') == 7


def test_cli_view_reads_the_state_and_writes_one_file(tmp_path, capsys):
    spec_path = write_spec(tmp_path)
    store = LocalStateStore(str(tmp_path / "out" / "_state"))
    for run in reports(3):
        store.write_json(f"shop/runs/{run['run_id']}.json", run)
        store.write_json("shop/runs/latest.json", run)
    out = tmp_path / "page" / "shop.html"
    out.parent.mkdir()

    assert main(["view", str(spec_path), "--out", str(out), "--runs", "2"]) == 0

    html = out.read_text(encoding="utf-8")
    assert html.count('class="bar seconds"') == 3 * 2  # only the last two runs
    assert "20261201T000000Z" not in html
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1
    assert summary[0].startswith(f"view: {out}: 7 nodes, 6 charts from 2 runs (state ")


def test_cli_view_to_an_unwritable_place_is_one_error(tmp_path, capsys):
    spec_path = write_spec(tmp_path)
    assert main(["view", str(spec_path), "--out", str(tmp_path / "no" / "such" / "p.html")]) == 1
    assert capsys.readouterr().err.startswith("sluiceway: error: view: cannot write ")
