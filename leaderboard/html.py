"""One self-contained HTML page: sortable tables (inline JS) and plots as base64 data URIs.

The page works alone (mailed, attached to a paper review, opened offline). On load, an
inline script writes what rendered (table rows, images decoded) into #selftest, which the
headless-browser test reads.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from bench.compare import Comparison, fmt, predictor_name
from leaderboard.tables import Cell, DisplayTable

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 1em; vertical-align: top; }
figure img { max-width: 900px; }
figcaption { font-size: 0.85em; color: #555; }
"""

_SCRIPT = """
(function () {
  function key(cell) { return cell.getAttribute('data-sort'); }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener('click', function () {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x === '' || y === '') { return (x === '') - (y === ''); }  // missing values last
          var nx = Number(x), ny = Number(y);
          var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  window.addEventListener('load', function () {
    var images = document.images, loaded = 0;
    for (var i = 0; i < images.length; i++) {
      if (images[i].complete && images[i].naturalWidth > 0) { loaded++; }
    }
    var out = document.getElementById('selftest');
    out.textContent = JSON.stringify({
      rows: document.querySelectorAll('#leaderboard tbody tr').length,
      images: images.length,
      loaded: loaded
    });
  });
})();
"""


def data_uri(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def table_html(table: DisplayTable, table_id: str) -> str:
    def td(c: Cell) -> str:
        sort = "" if c.sort is None else (repr(round(c.sort, 6)) if isinstance(c.sort, float) else str(c.sort))
        return f'<td data-sort="{html.escape(sort)}">{html.escape(c.text)}</td>'

    head = "".join(f'<th scope="col" title="click to sort">{html.escape(h)}</th>' for h in table.headers)
    body = "\n".join("<tr>" + "".join(td(c) for c in row) + "</tr>" for row in table.rows)
    return f'<table id="{table_id}" class="sortable">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def _num_cell(v: Any) -> Cell:
    if isinstance(v, bool):
        return Cell(fmt(v), int(v))
    return Cell(fmt(v), v if isinstance(v, (int, float)) else None)


def comparison_tables(comp: Comparison) -> tuple[DisplayTable, DisplayTable]:
    """The comparator's aggregates and per-pair tables, as sortable display tables."""
    ks = comp.top_ks
    agg = DisplayTable(
        ["predictor", "pairs", "mean Spearman rho", "mean Kendall tau"] + [f"top-{k} hit rate" for k in ks] + ["mean regret"],
        [
            [Cell(predictor_name(a.predictor), predictor_name(a.predictor)), _num_cell(a.pairs), _num_cell(a.mean_rho),
             _num_cell(a.mean_tau)] + [_num_cell(a.top_k_hit_rate.get(k)) for k in ks] + [_num_cell(a.mean_regret)]
            for a in comp.aggregates
        ],
    )
    pairs = DisplayTable(
        ["upstream", "task", "property", "Spearman rho", "Kendall tau", "rho weights", "best layer (dev)", "CCA layer", "regret"]
        + [f"top-{k}" for k in ks] + ["best - weighted sum"],
        [
            [Cell(p.display, p.display), Cell(p.task, p.task), Cell(p.property, p.property), _num_cell(p.rho_cca),
             _num_cell(p.tau_cca), _num_cell(p.rho_weights), _num_cell(p.best_layer), _num_cell(p.recommended_layer),
             _num_cell(p.regret)] + [_num_cell(p.top_k_hit.get(k)) for k in ks] + [_num_cell(p.best_minus_ws)]
            for p in comp.pairs
        ],
    )
    return agg, pairs


def render_html(
    table: DisplayTable,
    comp: Comparison,
    plots: dict[str, Path],
    title: str = "LayerBench leaderboard",
) -> str:
    agg, pairs = comparison_tables(comp)
    failures = "".join(
        f"<li>{html.escape(str(f.get('upstream')))} / {html.escape(str(f.get('task') or f.get('property')))}: "
        f"{html.escape(str(f.get('error')))}</li>"
        for f in comp.failures
    )
    figures = "\n".join(
        f'<figure><img alt="{html.escape(stem)}" src="{data_uri(path)}"><figcaption>{html.escape(stem)}</figcaption></figure>'
        for stem, path in plots.items()
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p>Test scores in each task's metric (↓ lower is better, ↑ higher is better). Best layer: chosen on dev, "
        "layer index in brackets. CCA pick: the layer ranked first by the task's CCA property. Click a header to sort.</p>",
        table_html(table, "leaderboard"),
        "<h2>Does CCA predict the best layer?</h2>",
        "<p>Rank correlations over layers between CCA scores (or weighted-sum weights) and test scores "
        "(error rates as 100 - error); regret = best layer's test score - CCA-recommended layer's test score.</p>",
        table_html(agg, "aggregates"),
        f"<p>Best single layer &ge; weighted sum in {comp.single_vs_ws.single_better_or_equal} of "
        f"{comp.single_vs_ws.pairs} (upstream, task) pairs; mean difference {fmt(comp.single_vs_ws.mean_difference)} points.</p>",
        table_html(pairs, "pairs"),
    ]
    notes = [*comp.notes, *(f"{p.display} / {p.task} / {p.property}: {n}" for p in comp.pairs for n in p.notes)]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    if failures:
        parts.append(f"<h2>Failed units</h2><ul>{failures}</ul>")
    parts += [
        "<h2>Plots</h2>",
        figures,
        '<pre id="selftest" hidden></pre>',
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
