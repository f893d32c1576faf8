"""`sluiceway view`: the pipeline as a graph and its last runs, on one self-contained page.

Pure: a parsed spec and run reports (dicts as `pipeline.RunReport.to_json` writes them) in,
HTML out. Every style and script is inlined and nothing is fetched, so the page opens from
a file, offline, or as a CI artifact. The graph and the charts are SVG drawn here; the
small script only highlights a node's edges and jumps to its charts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sluiceway.spec import IcebergSink, OutputSpec, PipelineSpec, TableSpec

NodeKind = Literal["connection", "table", "output", "quarantine", "load"]

NODE_W, NODE_H, COL_GAP, ROW_GAP, MARGIN = 190, 44, 250, 60, 16
CHART_W, CHART_H = 330, 110
STATUS_COLORS = {
    "succeeded": "#2e7d32",
    "written": "#2e7d32",
    "unchanged": "#9e9e9e",
    "failed": "#c62828",
    "pending": "#f9a825",
    "running": "#f9a825",
}
SERIES = (  # (report field, label, colour)
    ("rows_read", "read", "#90caf9"),
    ("rows_written", "written", "#1565c0"),
    ("rows_quarantined", "quarantined", "#c62828"),
)


@dataclass(frozen=True)
class Node:
    id: str
    kind: NodeKind
    label: str
    sub: str  # the second line: engine, mode, ...
    detail: tuple[str, ...] = ()  # the tooltip
    marks: tuple[str, ...] = ()  # badges: a Glue catalog table, an Iceberg table
    dataset: str | None = None  # the table or output whose charts it links to


@dataclass(frozen=True)
class Edge:
    source: str
    target: str


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


@dataclass(frozen=True)
class RunPoint:
    """One dataset in one run report."""

    run_id: str
    started_at: str
    status: str
    values: Mapping[str, float]  # rows_read, rows_written, rows_quarantined, seconds
    watermark: str | None
    error: str | None


@dataclass(frozen=True)
class Page:
    html: str
    nodes: int
    charts: int


# ---------------------------------------------------------------------------------------
# the graph


def pipeline_graph(spec: PipelineSpec) -> Graph:
    """connections -> tables -> (quarantines, outputs) -> loads."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    sources = {t.connection for t in spec.tables}  # a load target appears as its load
    for conn in (c for c in spec.connections.values() if c.name in sources):
        where = f"{conn.host or '(from secret)'}:{conn.port or ''}/{conn.database or ''}"
        node = Node(f"connection:{conn.name}", "connection", conn.name, conn.engine, (where,))
        nodes.append(node)
    for table in spec.tables:
        nodes.append(_dataset_node(table, "table"))
        edges.append(Edge(f"connection:{table.connection}", f"table:{table.name}"))
        if table.quality:
            nodes.append(
                Node(
                    f"quarantine:{table.name}",
                    "quarantine",
                    f"{table.name} quarantine",
                    f"{len(table.quality)} rule{'s' if len(table.quality) > 1 else ''}",
                    (table.sink.quarantine_path,),
                    dataset=table.name,
                )
            )
            edges.append(Edge(f"table:{table.name}", f"quarantine:{table.name}"))
    for output in spec.outputs:
        nodes.append(_dataset_node(output, "output"))
        edges += [Edge(_item_id(spec, name), f"output:{output.name}") for name in output.inputs]
    items: tuple[TableSpec | OutputSpec, ...] = (*spec.tables, *spec.outputs)
    for item in items:
        for index, load in enumerate(item.load):
            node_id = f"load:{item.name}:{index}"
            target = load.connection or getattr(load, "workgroup_name", None) or ""
            target = target or getattr(load, "cluster_identifier", None) or ""
            label = f"{target}: {load.table}" if target else load.table
            nodes.append(Node(node_id, "load", label, f"{load.kind} {load.mode}", (label,)))
            edges.append(Edge(_item_id(spec, item.name), node_id))
    return Graph(tuple(nodes), tuple(edges))


def _item_id(spec: PipelineSpec, name: str) -> str:
    kind = "table" if any(t.name == name for t in spec.tables) else "output"
    return f"{kind}:{name}"


def _dataset_node(item: TableSpec | OutputSpec, kind: NodeKind) -> Node:
    sink = item.sink
    marks = []
    if isinstance(sink, IcebergSink):
        marks.append("iceberg")
    if item.catalog is not None:
        marks.append("glue")
    if isinstance(item, TableSpec):
        source = item.table or "query"
        cursor = f", by {item.incremental_column}" if item.incremental_column else ""
        detail: tuple[str, ...] = (f"from {source}{cursor}",)
    else:
        detail = (f"builder {item.builder}", f"inputs {', '.join(item.inputs)}")
    where = sink.identifier if isinstance(sink, IcebergSink) else sink.path
    if item.catalog is not None:
        detail += (f"Glue table {item.catalog.database}.{item.catalog.table}",)
    return Node(
        f"{kind}:{item.name}",
        kind,
        item.name,
        sink.mode,
        (*detail, f"{sink.format} {where}"),
        tuple(marks),
        dataset=item.name,
    )


def layout(graph: Graph) -> dict[str, tuple[int, int]]:
    """(column, row) of each node: one column per step, rows ordered to shorten edges."""
    preds: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for edge in graph.edges:
        preds[edge.target].append(edge.source)
    column: dict[str, int] = {}
    for node in graph.nodes:  # spec order: inputs come before what they feed
        if node.kind != "load":
            column[node.id] = _column(node, preds, column)
    loads = max(column.values(), default=0) + 1  # loads come last, after every dataset
    column.update({n.id: loads for n in graph.nodes if n.kind == "load"})
    rows: dict[str, int] = {}
    for col in sorted(set(column.values())):
        members = [n.id for n in graph.nodes if column[n.id] == col]
        order = {node_id: i for i, node_id in enumerate(members)}
        members.sort(key=lambda node_id: (_barycentre(preds[node_id], rows), order[node_id]))
        rows.update({node_id: i for i, node_id in enumerate(members)})
    return {node_id: (column[node_id], rows[node_id]) for node_id in column}


def _column(node: Node, preds: Mapping[str, list[str]], known: Mapping[str, int]) -> int:
    if node.kind == "connection":
        return 0
    if node.kind == "table":
        return 1
    return 1 + max((known.get(p, 1) for p in preds[node.id]), default=1)


def _barycentre(sources: Sequence[str], rows: Mapping[str, int]) -> float:
    placed = [rows[s] for s in sources if s in rows]
    return sum(placed) / len(placed) if placed else 0.0


def graph_svg(graph: Graph, positions: Mapping[str, tuple[int, int]]) -> str:
    """The graph as SVG: nodes as labelled boxes, edges as curves with arrows."""
    xy = {
        node_id: (MARGIN + col * COL_GAP, MARGIN + row * ROW_GAP)
        for node_id, (col, row) in positions.items()
    }
    width = max((x for x, _ in xy.values()), default=0) + NODE_W + 2 * MARGIN
    height = max((y for _, y in xy.values()), default=0) + NODE_H + 2 * MARGIN
    parts = [
        f'<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="pipeline graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#78909c"/>'
        "</marker></defs>",
    ]
    for edge in graph.edges:
        parts.append(
            f'<path class="edge" data-from="{_a(edge.source)}" data-to="{_a(edge.target)}" '
            f'd="{_edge_path(xy[edge.source], xy[edge.target])}" marker-end="url(#arrow)"/>'
        )
    for node in graph.nodes:
        parts.append(_node_svg(node, *xy[node.id]))
    parts.append("</svg>")
    return "\n".join(parts)


def _edge_path(source: tuple[int, int], target: tuple[int, int]) -> str:
    """A curve from the source's right side to the target's left. An edge that skips a
    column runs along the empty lane above the target's row: straight across, it would
    pass under the nodes of the columns between."""
    (sx, sy), (tx, ty) = source, target
    x1, y1, x2, y2 = sx + NODE_W, sy + NODE_H // 2, tx, ty + NODE_H // 2
    gap = COL_GAP - NODE_W
    if x2 - x1 <= gap:
        mid = (x1 + x2) // 2
        return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"
    lane = ty - (ROW_GAP - NODE_H) // 2
    a, b = x1 + gap, x2 - gap  # where the lane starts and ends: the first and last gaps
    return (
        f"M{x1},{y1} C{x1 + gap // 2},{y1} {x1 + gap // 2},{lane} {a},{lane} "
        f"L{b},{lane} C{b + gap // 2},{lane} {b + gap // 2},{y2} {x2},{y2}"
    )


def _node_svg(node: Node, x: int, y: int) -> str:
    tip = "\n".join((f"{node.kind} {node.label}", *node.detail))
    link = f' data-dataset="{_a(node.dataset)}"' if node.dataset else ""
    marks = "".join(
        f'<text class="mark {_a(m)}" x="{NODE_W - 8 - 46 * i}" y="15" text-anchor="end">'
        f"{_t(m)}</text>"
        for i, m in enumerate(node.marks)
    )
    return (
        f'<g class="node {node.kind}" data-id="{_a(node.id)}"{link} '
        f'transform="translate({x},{y})"><title>{_t(tip)}</title>'
        f'<rect width="{NODE_W}" height="{NODE_H}" rx="7"/>'
        f'<text class="label" x="10" y="18">{_t(_clip(node.label, 22 - 7 * len(node.marks)))}'
        "</text>"
        f'<text class="sub" x="10" y="35">{_t(_clip(node.sub, 30))}</text>{marks}</g>'
    )


# ---------------------------------------------------------------------------------------
# the runs


def dataset_history(name: str, runs: Iterable[Mapping[str, Any]]) -> list[RunPoint]:
    """`name`'s entry in each run report that has one, in the reports' order."""
    points = []
    for run in runs:
        for item in run.get("tables") or ():
            if item.get("name") != name:
                continue
            watermark = item.get("watermark_after") or {}
            points.append(
                RunPoint(
                    run_id=str(run.get("run_id", "")),
                    started_at=str(run.get("started_at", "")),
                    status=str(item.get("status", "")),
                    values={
                        key: float(item.get(key) or 0)
                        for key in ("rows_read", "rows_written", "rows_quarantined", "seconds")
                    },
                    watermark=watermark.get("value"),
                    error=item.get("error"),
                )
            )
    return points


def bar_chart(
    title: str,
    points: Sequence[RunPoint],
    series: Sequence[tuple[str, str, str]],
    *,
    log: bool = False,
) -> str:
    """Grouped bars, one group per run, one bar per series; the scale's top is labelled.

    `log`: heights on a log scale, so a 100-row incremental run still shows beside a
    10-million-row full one (the exact value is in each bar's tooltip).
    """

    def scaled(value: float) -> float:
        return math.log10(1 + value) if log else value

    top = max((p.values[key] for p in points for key, _, _ in series), default=0.0) or 1.0
    left, bottom, plot_h = 40, CHART_H - 18, CHART_H - 34
    group = (CHART_W - left - 6) / max(len(points), 1)
    bar = max(min(group * 0.8 / len(series), 18.0), 1.0)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" '
        f'height="{CHART_H}" viewBox="0 0 {CHART_W} {CHART_H}" role="img" '
        f'aria-label="{_a(title)}">',
        f'<text class="chart-title" x="{left}" y="11">{_t(title)}'
        + (" (log scale)" if log else "")
        + "</text>",
        f'<text class="axis" x="{left - 4}" y="{bottom - plot_h + 4}" text-anchor="end">'
        f"{_t(_compact(top))}</text>",
        f'<text class="axis" x="{left - 4}" y="{bottom}" text-anchor="end">0</text>',
        f'<line class="axis-line" x1="{left}" y1="{bottom}" x2="{CHART_W - 4}" y2="{bottom}"/>',
    ]
    for i, point in enumerate(points):
        x0 = left + i * group + (group - bar * len(series)) / 2
        for j, (key, label, colour) in enumerate(series):
            value = point.values[key]
            h = max(plot_h * scaled(value) / scaled(top), 1.0 if value > 0 else 0.0)
            parts.append(
                f'<rect class="bar {_a(label)}" x="{x0 + j * bar:.1f}" y="{bottom - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{_t(f'{point.run_id}: {_compact(value)} {label}')}</title></rect>"
            )
    legend_x = left
    for _, label, colour in series:
        parts.append(
            f'<rect x="{legend_x}" y="{CHART_H - 10}" width="8" height="8" fill="{colour}"/>'
            f'<text class="axis" x="{legend_x + 11}" y="{CHART_H - 2}">{_t(label)}</text>'
        )
        legend_x += 14 + 7 * len(label)
    parts.append("</svg>")
    return "".join(parts)


def status_strip(points: Sequence[RunPoint]) -> str:
    """One square per run, coloured by the dataset's status in it."""
    cells = "".join(
        f'<rect class="status-cell {_a(p.status)}" x="{i * 14}" y="0" width="12" height="12" '
        f'rx="2" fill="{STATUS_COLORS.get(p.status, "#607d8b")}"><title>'
        f"{_t(f'{p.run_id} {p.started_at}: {p.status}' + (f' ({p.error})' if p.error else ''))}"
        "</title></rect>"
        for i, p in enumerate(points)
    )
    width = max(len(points) * 14, 14)
    return (
        f'<svg class="strip" xmlns="http://www.w3.org/2000/svg" width="{width}" height="12" '
        f'viewBox="0 0 {width} 12">{cells}</svg>'
    )


def _card(item: TableSpec | OutputSpec, kind: str, points: Sequence[RunPoint]) -> tuple[str, int]:
    """A dataset's section: last status and watermark, then its charts. (html, charts)"""
    head = (
        f'<section class="card" id="card-{_a(item.name)}"><h3>{_t(item.name)} '
        f'<span class="kind">{kind}</span></h3>'
    )
    if not points:
        return head + '<p class="none">not in any run report yet</p></section>', 0
    last = points[-1]
    watermark = next((p.watermark for p in reversed(points) if p.watermark), None)
    facts = (
        f'<p>last run <code>{_t(last.run_id)}</code>: <b class="st {_a(last.status)}">'
        f"{_t(last.status)}</b>, {_compact(last.values['rows_written'])} rows written, "
        f"{last.values['seconds']:.1f}s"
        + (f", watermark <code>{_t(watermark)}</code>" if watermark else "")
        + "</p>"
    )
    if last.error:
        facts += f'<p class="error">{_t(last.error)}</p>'
    charts = [
        bar_chart("rows per run", points, SERIES, log=True),
        bar_chart("seconds per run", points, (("seconds", "seconds", "#6a1b9a"),)),
    ]
    body = f'{status_strip(points)}<div class="charts">{"".join(charts)}</div>'
    return head + facts + body + "</section>", len(charts)


def _runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for run in reversed(runs):
        written = sum(int(t.get("rows_written") or 0) for t in run.get("tables") or ())
        status = str(run.get("status", ""))
        rows.append(
            f"<tr><td><code>{_t(run.get('run_id', ''))}</code></td>"
            f"<td>{_t(run.get('started_at', ''))}</td>"
            f'<td class="st {_a(status)}">{_t(status)}</td>'
            f"<td>{float(run.get('seconds') or 0):.1f}</td><td>{_compact(written)}</td>"
            f"<td>{'full refresh' if run.get('full_refresh') else ''}</td>"
            f'<td class="error">{_t(_clip(str(run.get("error") or ""), 160))}</td></tr>'
        )
    return (
        '<table class="runs"><thead><tr><th>run</th><th>started</th><th>status</th>'
        "<th>seconds</th><th>rows written</th><th></th><th>error</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# ---------------------------------------------------------------------------------------
# the page


def render_page(
    spec: PipelineSpec, runs: Sequence[Mapping[str, Any]], *, now: datetime | None = None
) -> Page:
    """The whole page: header, graph, a card per dataset, the runs table."""
    graph = pipeline_graph(spec)
    cards, charts = [], 0
    items: list[tuple[TableSpec | OutputSpec, str]] = [
        *((t, "table") for t in spec.tables),
        *((o, "output") for o in spec.outputs),
    ]
    for item, kind in items:
        card, count = _card(item, kind, dataset_history(item.name, runs))
        cards.append(card)
        charts += count
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    runs_html = (
        _runs_table(runs)
        if runs
        else f'<p class="none">no run reports in {_t(spec.state_location)} yet</p>'
    )
    body = (
        f"<header><h1>{_t(spec.name)}</h1><p>spec <code>{_t(spec.source_file)}</code> · "
        f"output <code>{_t(spec.output_root)}</code> · state <code>{_t(spec.state_location)}"
        f"</code> · {len(runs)} runs · drawn {stamp}</p></header>"
        f'<h2>Pipeline</h2><div class="legend">{_LEGEND}</div>'
        f'<div class="graph">{graph_svg(graph, layout(graph))}</div>'
        f'<h2>Last runs per dataset</h2><div class="cards">{"".join(cards)}</div>'
        f"<h2>Runs</h2>{runs_html}"
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_t(spec.name)}: sluiceway</title><style>{_CSS}</style></head>"
        f"<body>{body}<script>{_SCRIPT}</script></body></html>\n"
    )
    return Page(page, len(graph.nodes), charts)


def _t(text: object) -> str:
    return html.escape(str(text), quote=False)


def _a(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _compact(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return str(int(value)) if value == int(value) else f"{value:.1f}"


_LEGEND = (
    "".join(
        f'<span class="key {kind}">{label}</span>'
        for kind, label in (
            ("connection", "connection"),
            ("table", "table"),
            ("output", "output"),
            ("quarantine", "quarantine"),
            ("load", "load"),
        )
    )
    + '<span class="mark-key">glue: a Glue Data Catalog table · iceberg: an Iceberg table</span>'
)

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 24px 40px;color:#263238}
h1{margin:16px 0 0;font-size:22px}
h2{font-size:16px;margin:22px 0 8px}
header p{margin:2px 0;color:#546e7a}
code{font-size:12px}
.graph{overflow-x:auto;border:1px solid #eceff1;border-radius:8px;background:#fafbfc}
.edge{fill:none;stroke:#b0bec5;stroke-width:1.6}
.edge.hot{stroke:#1565c0;stroke-width:2.6}
.node{cursor:pointer}
.node rect{stroke-width:1.5}
.node .label{font-weight:600;font-size:13px}
.node .sub{font-size:11px;fill:#546e7a}
.node .mark{font-size:10px;font-weight:700}
.mark.glue{fill:#ef6c00}
.mark.iceberg{fill:#00838f}
.connection rect{fill:#ede7f6;stroke:#5e35b1}
.table rect{fill:#e3f2fd;stroke:#1565c0}
.output rect{fill:#e8f5e9;stroke:#2e7d32}
.load rect{fill:#fff8e1;stroke:#f9a825}
.quarantine rect{fill:#ffebee;stroke:#c62828;stroke-dasharray:5 3}
.legend{margin:0 0 6px;font-size:12px}
.legend .key{padding:1px 8px;margin-right:6px;border-radius:4px;border:1.5px solid}
.key.connection{background:#ede7f6;border-color:#5e35b1}
.key.table{background:#e3f2fd;border-color:#1565c0}
.key.output{background:#e8f5e9;border-color:#2e7d32}
.key.load{background:#fff8e1;border-color:#f9a825}
.key.quarantine{background:#ffebee;border-color:#c62828;border-style:dashed}
.mark-key{color:#546e7a}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #cfd8dc;border-radius:8px;padding:8px 12px;width:700px}
.card{max-width:100%;transition:background .4s}
.card.flash{background:#fff9c4}
.card h3{margin:0 0 4px;font-size:15px}
.card p{margin:2px 0 6px}
.kind{font-weight:400;font-size:12px;color:#78909c}
.none{color:#78909c}
.charts{display:flex;gap:10px;flex-wrap:wrap;margin-top:6px}
.chart-title{font-size:11px;font-weight:600;fill:#37474f}
.axis{font-size:10px;fill:#78909c}
.axis-line{stroke:#b0bec5}
.st.succeeded,.st.written{color:#2e7d32}
.st.failed{color:#c62828}
.st.unchanged{color:#757575}
.error{color:#c62828;font-size:12px}
table.runs{border-collapse:collapse;font-size:12px}
.runs td,.runs th{padding:3px 10px 3px 0;text-align:left;vertical-align:top}
"""

# Hover a node: its edges light up. Click a table or output: jump to its charts.
_SCRIPT = """
(function () {
  "use strict";
  var graph = document.getElementById("graph");
  if (!graph) { return; }
  function light(id, on) {
    graph.querySelectorAll(".edge").forEach(function (edge) {
      if (edge.getAttribute("data-from") === id || edge.getAttribute("data-to") === id) {
        edge.classList.toggle("hot", on);
      }
    });
  }
  graph.querySelectorAll(".node").forEach(function (node) {
    var id = node.getAttribute("data-id");
    node.addEventListener("mouseenter", function () { light(id, true); });
    node.addEventListener("mouseleave", function () { light(id, false); });
    var card = document.getElementById("card-" + node.getAttribute("data-dataset"));
    if (!card) { return; }
    node.addEventListener("click", function () {
      card.scrollIntoView({behavior: "smooth", block: "start"});
      card.classList.add("flash");
      setTimeout(function () { card.classList.remove("flash"); }, 1200);
    });
  });
})();
"""
