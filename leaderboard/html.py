"""One self-contained HTML page: sortable tables (inline JS) and figures as base64 data URIs.

The page works alone (mailed, attached to a paper review, opened offline) and fits a 1400-px
window without sideways scrolling: the headline has one column per task, the wide per-task
detail is split into one table per task, figures scale to the page width, and each table sits
in a box that scrolls on its own should a zoo bring more tasks than fit. Every section starts
with a short "how to read this". On load, an inline script writes what rendered (table rows,
images decoded, page and window widths) into #selftest, which the headless-browser test reads.

Other figure sets (e.g. CCA across pre-training checkpoints) join the page as extra `Section`s
passed to `render_html` / `build_leaderboard`.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bench.compare import MIN_RANKED_LAYERS, Comparison, aggregate_table, pair_table, summary_lines
from bench.records import FailureRecord
from bench.results import slug
from leaderboard.plots import Figure
from leaderboard.tables import MARK, Cell, DisplayTable, Headline, headline_table, task_table


@dataclass(frozen=True)
class Section:
    """A page section: a title, a short "how to read this", optional HTML body, then figures."""

    id: str
    title: str
    how_to_read: str
    body: str = ""
    figures: Sequence[Figure] = ()
    columns: int = 1  # figures per row (2 for small figures)


_CSS = """
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0; color: #222; line-height: 1.4; }
main { max-width: 1360px; margin: 0 auto; padding: 0 20px 40px; }
nav { font-size: 0.9em; margin: 0.5em 0 1em; }
nav a { margin-right: 1.2em; }
.how { background: #f5f7fa; border-left: 4px solid #8aa4c8; padding: 0.5em 0.9em; font-size: 0.92em; max-width: 110ch; }
.tablebox { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; text-align: right; vertical-align: top; }
th { background: #eef1f5; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
th.name { text-align: left; }
td.name { text-align: left; max-width: 22em; overflow-wrap: anywhere; }
td .sub { display: block; font-size: 0.8em; color: #666; white-space: nowrap; }
td .sub.beats { color: #b00; font-weight: 600; }
details { margin: 0.3em 0; }
summary { cursor: pointer; font-weight: 600; }
.figs { display: flex; flex-wrap: wrap; gap: 0 1.2em; }
figure { margin: 1.2em 0; max-width: 100%; }
.cols-2 figure { width: calc(50% - 0.6em); }
.cols-2 figure img { width: 100%; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #444; max-width: 110ch; margin-top: 0.3em; }
ul.notes { font-size: 0.9em; }
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
      loaded: loaded,
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth
    });
  });
})();
"""


def data_uri(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _esc(text: Any) -> str:
    return html.escape(str(text))


def table_html(table: DisplayTable, table_id: str, name_cols: int = 1, titles: Sequence[str] = ()) -> str:
    """A sortable table; the first `name_cols` columns are left-aligned names; `titles` are header tooltips."""

    def th(i: int, text: str, tip: str) -> str:
        cls = ' class="name"' if i < name_cols else ""
        return f'<th scope="col"{cls} title="{_esc((tip + ". ") if tip else "")}click to sort">{_esc(text)}</th>'

    def td(i: int, c: Cell) -> str:
        sort = "" if c.sort is None else (repr(round(c.sort, 6)) if isinstance(c.sort, float) else str(c.sort))
        cls = ' class="name"' if i < name_cols else ""
        sub = ""
        if c.sub:
            beats = " beats" if c.sub.endswith(MARK) else ""
            sub = f'<span class="sub{beats}">{_esc(c.sub)}</span>'
        return f'<td{cls} data-sort="{_esc(sort)}">{_esc(c.text)}{sub}</td>'

    tips = list(titles) + [""] * (len(table.headers) - len(titles))
    head = "".join(th(i, h, tip) for i, (h, tip) in enumerate(zip(table.headers, tips)))
    body = "\n".join("<tr>" + "".join(td(i, c) for i, c in enumerate(row)) + "</tr>" for row in table.rows)
    return (f'<div class="tablebox"><table id="{table_id}" class="sortable">\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody>\n</table></div>")


def _plain_table(headers: list[str], rows: list[list[Any]], table_id: str, name_cols: int) -> str:
    cells = [[Cell(str(v), _sort_value(v)) for v in row] for row in rows]
    return table_html(DisplayTable(headers, cells), table_id, name_cols)


def _sort_value(v: Any) -> float | str | None:
    if v is None or v == "–":
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    try:
        return float(v)
    except ValueError:
        return str(v)


def figure_html(fig: Figure) -> str:
    return (f'<figure id="fig-{_esc(fig.stem)}"><img alt="{_esc(fig.alt)}" src="{data_uri(fig.path)}">'
            f"<figcaption>{_esc(fig.caption)}</figcaption></figure>")


def section_html(s: Section) -> str:
    parts = [f'<section id="{_esc(s.id)}">', f"<h2>{_esc(s.title)}</h2>", f'<p class="how">{_esc(s.how_to_read)}</p>']
    if s.body:
        parts.append(s.body)
    if s.figures:
        parts.append(f'<div class="figs cols-{max(1, min(s.columns, 2))}">')
        parts += [figure_html(f) for f in s.figures]
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def headline_section(h: Headline) -> Section:
    table = headline_table(h)
    titles = ["rank order (mean rank, then score)", "upstream", "normalised score: FBANK 0, best 100",
              "mean of per-task ranks"] + [f"{t.header(arrows=False)}: {t.unit()}; weighted sum, best single layer below" for t in h.tasks]
    details = []
    for t in (t for t in h.tasks if t.ranked):
        detail = task_table(h, t)
        if not detail.rows:
            continue
        top = min(detail.rows, key=lambda r: r[2].sort if isinstance(r[2].sort, float) else float("inf"))
        summary = f"{t.header()} ({t.unit()}): best weighted sum {top[1].text}, {top[4].text}"
        details.append(f"<details><summary>{_esc(summary)}</summary>\n"
                       f"{table_html(detail, f'task-{t.task}', name_cols=2)}</details>")
    body = (table_html(table, "leaderboard", name_cols=2, titles=titles)
            + f"<p>{_esc(h.score_note()[0].upper() + h.score_note()[1:])}.</p>"
            + "<h3>Per task</h3>\n" + "\n".join(details))
    return Section(
        "headline", "Leaderboard",
        "One row per upstream, ranked by its mean rank over tasks. Each task cell is the test score of the weighted "
        "sum of all layers (SUPERB's headline number) in the task's metric (↓ lower is better, ↑ higher is better); "
        f"below it the best single layer, chosen on dev, as 'score @L<layer>' — red with {MARK} where that one layer "
        "beats the weighted sum. Click a header to sort. The per-task tables below add each task's rank, the "
        "normalised score and the layer CCA picks.",
        body,
    )


def comparison_section(comp: Comparison, figures: dict[str, Figure]) -> Section:
    headers, rows = aggregate_table(comp)
    body = [_plain_table(headers, rows, "aggregates", 1) if rows else
            f"<p>No (upstream, task, property) pair covers {MIN_RANKED_LAYERS} or more layers.</p>"]
    body += [f"<p>{_esc(line)}</p>" for line in summary_lines(comp)]
    p_headers, p_rows = pair_table(comp)
    if p_rows:
        body.append(f"<details><summary>Every ranked (upstream, task, property) pair ({len(p_rows)})</summary>\n"
                    f"{_plain_table(p_headers, p_rows, 'pairs', 3)}</details>")
    notes = comp.grouped_notes()
    if notes:
        body.append(f"<details><summary>Notes ({len(notes)})</summary><ul class=\"notes\">"
                    + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul></details>")
    return Section(
        "cca", "Does CCA predict the layer?",
        "Can the cheap layer-wise CCA pick the layer a costly probe would? Per (upstream, task), Spearman rho and "
        "Kendall tau relate the CCA property mapped to the task (configs/compare.yaml) to the per-layer test score "
        "(error rates as 100 - error); hit@k: the best layer (on dev) is among the k layers CCA ranks highest; "
        "regret: best layer's test score minus the CCA pick's. 'pairs' is how many (upstream, task) pairs each "
        f"mean averages: only those with at least {MIN_RANKED_LAYERS} layers; one-layer upstreams are listed once "
        "as not ranked. 'layer weights' correlates the weighted sum's weights instead of CCA.",
        "\n".join(body),
        [figures[s] for s in ("rank_correlation_heatmap", "cca_vs_task_scatter", "best_layer_vs_weighted_sum")
         if s in figures],
    )


def layer_section(h: Headline, figures: dict[str, Figure]) -> Section:
    stems = [f"layers_{slug(s.upstream)}" for s in h.standings]  # in leaderboard order
    views = [figures[stem] for stem in stems if stem in figures]
    with_view = {f.stem for f in views}
    single = [s.display for s in h.standings if f"layers_{slug(s.upstream)}" not in with_view]
    body = f"<p>No layer view (one layer): {_esc(', '.join(single))}.</p>" if single else ""
    return Section(
        "layers", "Layer view per upstream",
        "One figure per upstream, layers left to right. Top: how much each layer shares with mel features, phones "
        "and words (CCA). Middle: each task's test score per layer, scaled per task from the upstream's worst "
        "layer (dark) to its best (bright), grey where every layer scores the same, with the score printed in "
        "the cell; the red box is the best layer on dev, the circle the layer CCA picks for that task. Bottom: "
        "the weights the weighted-sum head learned.",
        body, views,
    )


def render_html(
    h: Headline,
    comp: Comparison,
    figures: dict[str, Figure],
    title: str = "LayerBench leaderboard",
    sections: Sequence[Section] = (),
    failures: Sequence[FailureRecord] = (),
) -> str:
    """The whole page: headline, layer views, the comparator, then `sections` (other figure sets), failures."""
    all_sections = [headline_section(h), layer_section(h, figures), comparison_section(comp, figures), *sections]
    if failures:
        items = "".join(f"<li>{_esc(f.upstream)} / {_esc(f.unit)}: {_esc(f.error)}</li>" for f in failures)
        all_sections.append(Section("failures", "Failed units",
                                    "Units that did not finish; they are missing from the tables and figures above. "
                                    "Rerunning the suite retries them.", f'<ul class="notes">{items}</ul>'))
    nav = "".join(f'<a href="#{_esc(s.id)}">{_esc(s.title)}</a>' for s in all_sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_esc(title)}</h1>",
        f"<nav>{nav}</nav>",
        *(section_html(s) for s in all_sections),
        '<pre id="selftest" hidden></pre>',
        "</main>",
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
