"""`sluiceway view`'s page in headless Chromium: every node drawn, the charts render with
real sizes, the script runs without a console error, and nothing is fetched."""

from __future__ import annotations

import pytest

from sluiceway.cli import main
from sluiceway.state import LocalStateStore

from ..browser import PAGE_FACTS
from ..view_fixture import OUTPUTS, TABLES, reports, write_spec

pytestmark = pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only


def test_view_page_draws_every_table_and_output_and_its_charts(tmp_path, capsys, chromium):
    spec_path = write_spec(tmp_path)
    store = LocalStateStore(str(tmp_path / "out" / "_state"))
    for run in reports(6):
        store.write_json(f"shop/runs/{run['run_id']}.json", run)
    page = tmp_path / "shop.html"
    assert main(["view", str(spec_path), "--out", str(page)]) == 0
    capsys.readouterr()

    chromium.open(page.as_uri())
    facts = chromium.evaluate(PAGE_FACTS)

    assert facts["nodes"] == {
        "connection": ["src"],
        "table": list(TABLES),
        "quarantine": ["orders"],
        "output": list(OUTPUTS),
        "load": ["orders"],
    }
    assert all(box == [190, 44] for box in facts["node_boxes"])
    marks = chromium.evaluate(
        """Object.fromEntries([...document.querySelectorAll('#graph .node')].map((n) =>
             [n.dataset.id, [...n.querySelectorAll('.mark')].map((m) => m.textContent)]))"""
    )
    # The Iceberg table and the Glue catalog table are marked; the others are not.
    assert {node: m for node, m in marks.items() if m} == {
        "table:orders": ["glue"],
        "table:customers": ["iceberg"],
    }
    assert facts["edges"] == 7
    assert facts["cards"] == [f"card-{name}" for name in (*TABLES, *OUTPUTS)]
    # orders, customers and daily ran: a rows chart and a seconds chart each, drawn full size.
    assert facts["charts"] == [[330, 110]] * 6
    drawn = [h for _, h in facts["bars"] if h > 0]
    assert len(drawn) >= 6 * 3  # orders: read/written/quarantined and seconds in six runs
    assert max(h for _, h in facts["bars"]) == pytest.approx(76, abs=1)  # the tallest fills it
    assert (facts["scripts_with_src"], facts["stylesheets"]) == (0, 0)

    # The script works: hovering a node lights its edges, clicking it flashes its card.
    hot = chromium.evaluate(
        """(() => {
          const node = document.querySelector('#graph .node[data-id="table:orders"]');
          node.dispatchEvent(new MouseEvent('mouseenter'));
          const lit = document.querySelectorAll('#graph .edge.hot').length;
          node.dispatchEvent(new MouseEvent('click'));
          return [lit, document.getElementById('card-orders').classList.contains('flash')];
        })()"""
    )
    assert hot == [4, True]  # from src; to its quarantine, daily and its load
    assert chromium.problems() == []
    assert chromium.requested_urls() == [page.as_uri()]
    shot = chromium.screenshot(tmp_path / "shop.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
