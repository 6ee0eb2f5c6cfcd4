"""Leaderboard tables: a SUPERB-style headline (a row per upstream, a column per task) and per-task detail.

Scores are shown in each task's own metric (PER/WER in %, lower is better; accuracy in %,
higher is better), all on the test split.

- **Weighted sum (WS)**: the test score of the learned weighted sum of all layers, SUPERB's
  headline number, and what upstreams are ranked on.
- **Best layer** `20.00 @L2`: the best single layer, chosen on dev (as the comparator does),
  and its test score. `*` marks a single layer that beats the weighted sum on test (only for
  upstreams with more than one layer: with one layer both heads see the same features).
- **Secondary metrics** a task reports beside its own (ASR: CER beside WER) get a column of
  their own, `ASR CER`, for the same heads (WS, and the best layer chosen on dev by the task's
  own metric); they are shown, not ranked or scored.
- **CCA pick**: the arg-max layer of the task's first mapped CCA property (configs/compare.yaml)
  and its test score (per-task detail only).
- **Overall rank**: per task, upstreams are ranked by WS (1 = best, ties share the mean rank);
  `mean rank` averages an upstream's ranks over the tasks it has a WS score for, and rows are
  ordered by it (ties: higher score first).
- **Score** (normalised, SUPERB-score style): per task, 100 x (WS - WS of FBANK) / (best WS in
  the zoo - WS of FBANK), so FBANK is 0, the zoo's best is 100 and an upstream worse than FBANK
  is negative, floored at -100 (FLOOR: where the best is barely above FBANK, the spread is tiny
  and one task's ratio would otherwise swamp the average); averaged over the tasks an upstream has. FBANK is the zoo's upstream with spec
  `fbank` (else `fbank:...`); a zoo without one uses its worst WS per task as 0. A task where
  the reference is itself the best is left out of the score (no spread to normalise).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

import tasks as task_registry
from bench.compare import Comparison, ResultSet, best_probed_layer, fmt, markdown_table
from bench.records import ERROR_METRICS, FailureRecord, ProbeResult

FIELDS = ("ws", "best", "best_layer", "cca", "cca_layer")
MARK = "*"
TERMINAL_WIDTH = 120
FLOOR = -100.0  # lowest per-task normalised score (module docstring)
NAME_WIDTH = 24  # upstream names longer than this are shortened in the terminal print


@dataclass(frozen=True)
class Entry:
    """One (upstream, task) cell group of the leaderboard, in the task's own metric."""

    upstream: str
    display: str
    task: str
    metric: str
    higher_is_better: bool
    ws: float | None
    best: float | None
    best_layer: int | None
    cca: float | None
    cca_layer: int | None
    cca_property: str | None
    n_layers: int  # probed layers: with one, "best layer" and "beats the weighted sum" say nothing
    ranked: bool = True  # False: a secondary metric (ASR's CER), shown beside the task's own

    @property
    def key(self) -> str:
        """The column: the task, or `<task>_<metric>` for a secondary metric."""
        return self.task if self.ranked else f"{self.task}_{self.metric}"

    @property
    def single_beats_ws(self) -> bool:
        """A single layer tests better than the weighted sum (upstreams with more than one layer)."""
        if self.n_layers < 2 or self.best is None or self.ws is None:
            return False
        return self.best > self.ws if self.higher_is_better else self.best < self.ws

    def best_text(self) -> str:
        """`20.00 @L2` (with `*` when it beats the weighted sum); empty for one-layer upstreams."""
        if self.n_layers < 2 or self.best_layer is None:
            return ""
        return f"{fmt(self.best)} @L{self.best_layer}{MARK if self.single_beats_ws else ''}"


@dataclass(frozen=True)
class TaskInfo:
    task: str
    metric: str
    higher_is_better: bool
    ranked: bool = True

    @property
    def key(self) -> str:
        return self.task if self.ranked else f"{self.task}_{self.metric}"

    def header(self, arrows: bool = True) -> str:
        return task_header(self.task, self.metric, self.higher_is_better, arrows)

    def unit(self) -> str:
        """`PER %, lower is better`."""
        short = {"accuracy": "accuracy"}.get(self.metric.lower(), self.metric.upper())
        return f"{short} %, {'higher' if self.higher_is_better else 'lower'} is better"


@dataclass(frozen=True)
class Standing:
    """An upstream's overall place: position (1 = first row), mean rank, normalised score."""

    upstream: str
    display: str
    position: int
    mean_rank: float | None
    score: float | None
    task_ranks: dict[str, float] = field(default_factory=dict)
    task_scores: dict[str, float] = field(default_factory=dict)  # per-task normalised score

    @property
    def n_tasks(self) -> int:
        return len(self.task_ranks)


@dataclass(frozen=True)
class Headline:
    """Everything the tables print: tasks, upstreams in rank order, their entries, the score's reference."""

    tasks: list[TaskInfo]
    standings: list[Standing]
    entries: dict[tuple[str, str], Entry]
    reference: str | None  # display name of the upstream scored 0 (FBANK), None = worst per task
    unscored_tasks: list[str]  # tasks left out of the normalised score, each with why

    def entry(self, upstream: str, task: str) -> Entry | None:
        return self.entries.get((upstream, task))

    def score_note(self) -> str:
        ref = f"{self.reference} = 0" if self.reference else "the zoo's worst per task = 0 (no FBANK in the zoo)"
        note = (f"score: per-task weighted-sum score normalised to {ref}, the zoo's best = 100 (floor {FLOOR:.0f}), "
                "averaged over tasks")
        if self.unscored_tasks:
            note += f"; left out: {', '.join(self.unscored_tasks)}"
        shown = [t.header(arrows=False) for t in self.tasks if not t.ranked]
        if shown:
            note += f"; {', '.join(shown)}: same heads, shown beside the task's own metric, not ranked or scored"
        return note


@dataclass(frozen=True)
class Cell:
    """Display text plus the value a sortable table sorts on (None sorts last)."""

    text: str
    sort: float | str | None
    sub: str = ""  # a second, smaller line (HTML only)


@dataclass(frozen=True)
class DisplayTable:
    headers: list[str]
    rows: list[list[Cell]]


def short_metric(metric: str) -> str:
    """`PER`, `WER`, `ACC`: the metric as a column header names it."""
    return "ACC" if metric.lower() == "accuracy" else metric.upper()


def task_header(task: str, metric: str, higher_is_better: bool, arrows: bool = True) -> str:
    direction = ("↑" if higher_is_better else "↓") if arrows else ""
    return f"{task.upper()} {short_metric(metric)}{direction}"


def leaderboard_entries(rs: ResultSet, comp: Comparison) -> list[Entry]:
    """Entries in upstream display order, then canonical task order (a task's secondary metrics after it)."""
    out = []
    for up in rs.upstreams:
        for task in rs.tasks:
            probe = rs.probes.get((up, task))
            if probe is None:
                continue
            layer, _, _ = best_probed_layer(probe)
            test = probe.scores("test")
            rec = comp.recommended(up, task)
            out.append(
                Entry(
                    upstream=up,
                    display=rs.display(up),
                    task=task,
                    metric=probe.metric,
                    higher_is_better=probe.higher_is_better,
                    ws=probe.to_native(probe.ws_score),
                    best=probe.to_native(test.get(layer)) if layer is not None else None,
                    best_layer=layer,
                    cca=probe.to_native(rec.recommended_test) if rec else None,
                    cca_layer=rec.recommended_layer if rec else None,
                    cca_property=rec.property if rec else None,
                    n_layers=len(probe.per_layer),
                )
            )
            out += secondary_entries(probe, out[-1])
    return out


def secondary_entries(probe: ProbeResult, main: Entry) -> list[Entry]:
    """One not-ranked entry per secondary test metric (`test_<metric>` in the heads' results, ASR:
    `test_cer`), for the same heads as `main`: the weighted sum and the layer chosen on dev."""
    ws = probe.weighted_sum
    keys = sorted({k for h in [*probe.per_layer, *([ws] if ws else [])] for k in h.extra if k.startswith("test_")})
    out = []
    for key in keys:
        layer = probe.layer(main.best_layer) if main.best_layer is not None else None
        metric = key.removeprefix("test_")
        out.append(Entry(
            upstream=main.upstream, display=main.display, task=main.task, metric=metric,
            higher_is_better=metric not in ERROR_METRICS,
            ws=ws.extra.get(key) if ws else None, best=layer.extra.get(key) if layer else None,
            best_layer=main.best_layer, cca=None, cca_layer=None, cca_property=None, n_layers=main.n_layers,
            ranked=False))
    return out


def _reference(upstreams: list[str]) -> str | None:
    """The zoo's FBANK: spec `fbank`, else the first `fbank:<variant>`."""
    if "fbank" in upstreams:
        return "fbank"
    return next((u for u in upstreams if u.split(":", 1)[0] == "fbank"), None)


def headline(entries: list[Entry], upstreams: list[tuple[str, str]] | None = None) -> Headline:
    """Rank upstreams per task on the weighted sum, average the ranks, normalise scores (module docstring)."""
    tasks: dict[str, TaskInfo] = {}
    names: dict[str, str] = dict(upstreams or [])
    by_key: dict[tuple[str, str], Entry] = {}
    for e in entries:
        tasks.setdefault(e.key, TaskInfo(e.task, e.metric, e.higher_is_better, e.ranked))
        names.setdefault(e.upstream, e.display)
        by_key[(e.upstream, e.key)] = e
    ref = _reference(list(names))
    ranks: dict[str, dict[str, float]] = {u: {} for u in names}
    norm: dict[str, dict[str, float]] = {u: {} for u in names}
    unscored = []
    for t in (t for t in tasks.values() if t.ranked):
        # Higher is better after a sign flip for error rates; ratios and ranks do not care about the offset.
        vals = {u: (e.ws if t.higher_is_better else -e.ws) for (u, task), e in by_key.items() if task == t.task and e.ws is not None}
        if not vals:
            continue
        ups = list(vals)
        for u, r in zip(ups, stats.rankdata([-vals[u] for u in ups], method="average")):
            ranks[u][t.task] = float(r)
        zero = vals.get(ref) if ref else min(vals.values())
        top = max(vals.values())
        if zero is None:
            unscored.append(f"{t.task} (no {names[ref]} result)")
            continue
        if top - zero <= 1e-9:
            tie = max(vals.values()) - min(vals.values()) <= 1e-9
            unscored.append(f"{t.task} ({'every upstream scores the same' if tie or not ref else names[ref] + ' scores the best'})")
            continue
        for u, v in vals.items():
            norm[u][t.task] = max(FLOOR, 100.0 * (v - zero) / (top - zero))
    rows = []
    for u, display in names.items():
        mean_rank = sum(ranks[u].values()) / len(ranks[u]) if ranks[u] else None
        score = sum(norm[u].values()) / len(norm[u]) if norm[u] else None
        rows.append((u, display, mean_rank, score))
    rows.sort(key=lambda r: (r[2] is None, r[2] or 0.0, -(r[3] if r[3] is not None else float("-inf")), r[1], r[0]))
    standings = [Standing(u, d, i + 1, mr, sc, ranks[u], norm[u]) for i, (u, d, mr, sc) in enumerate(rows)]
    ordered = sorted(tasks.values(), key=lambda t: (task_registry.sort_key(t.task), not t.ranked, t.metric))
    return Headline(ordered, standings, by_key, names.get(ref) if ref else None, unscored)


# ----------------------------------------------------------------------------- terminal


def _short(name: str, width: int = NAME_WIDTH) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _overall_cells(s: Standing) -> list[str]:
    return [str(s.position), _short(s.display), fmt(s.score, 1), fmt(s.mean_rank, 2)]


def terminal_table(h: Headline, width: int = TERMINAL_WIDTH) -> str:
    """The headline as aligned text no wider than `width`: tasks wrap into blocks, each repeating the names.

    Per task two columns: WS and the best single layer (`20.00 @L2*`).
    """
    left_heads = ["#", "upstream", "score", "mean rank"]
    left_rows = [_overall_cells(s) for s in h.standings]
    groups = []  # (task header, [ws texts], [best texts])
    for t in h.tasks:
        ws, best = [], []
        for s in h.standings:
            e = h.entry(s.upstream, t.key)
            ws.append(fmt(e.ws) if e else "–")
            best.append(e.best_text() if e else "")
        groups.append((t.header(), ws, best))

    def col_width(head: str, cells: list[str]) -> int:
        return max([len(head)] + [len(c) for c in cells])

    left_w = [col_width(hd, [r[i] for r in left_rows]) for i, hd in enumerate(left_heads)]
    group_w = []
    for head, ws, best in groups:
        w_ws, w_best = col_width("WS", ws), col_width("best @L", best)
        extra = max(0, len(head) - (w_ws + 2 + w_best))  # a long task header widens the best column
        group_w.append((w_ws, w_best + extra))

    blocks, current, used = [], [], 0
    first_left = sum(left_w) + 2 * (len(left_w) - 1)
    later_left = left_w[0] + 2 + left_w[1]
    for gi, (w_ws, w_best) in enumerate(group_w):
        need = 3 + w_ws + 2 + w_best
        base = first_left if not blocks else later_left
        if current and base + used + need > width:
            blocks.append(current)
            current, used = [], 0
        current.append(gi)
        used += need
    if current or not blocks:
        blocks.append(current)

    out: list[str] = []
    for bi, block in enumerate(blocks):
        ncols = len(left_heads) if bi == 0 else 2
        lw = left_w[:ncols]
        pad_left = "  ".join(" " * w for w in lw)
        top = [pad_left]
        heads = ["  ".join(hd.rjust(w) if i >= 2 else hd.ljust(w) for i, (hd, w) in enumerate(zip(left_heads, lw)))]
        rule = ["  ".join("-" * w for w in lw)]
        for gi in block:
            w_ws, w_best = group_w[gi]
            top.append(groups[gi][0].ljust(w_ws + 2 + w_best))
            heads.append("WS".rjust(w_ws) + "  " + "best @L".ljust(w_best))
            rule.append("-" * (w_ws + 2 + w_best))
        lines = ["   ".join(top).rstrip(), "   ".join(heads).rstrip(), "   ".join(rule)]
        for ri, row in enumerate(left_rows):
            cells = ["  ".join(v.rjust(w) if i in (0, 2, 3) else v.ljust(w) for i, (v, w) in enumerate(zip(row, lw)))]
            for gi in block:
                w_ws, w_best = group_w[gi]
                cells.append(groups[gi][1][ri].rjust(w_ws) + "  " + groups[gi][2][ri].ljust(w_best))
            lines.append("   ".join(cells).rstrip())
        if bi:
            out.append("")
        out += lines
    legend = (f"WS = weighted-sum test score (ranked on); best @L = best single layer (chosen on dev), its test "
              f"score and index; {MARK} = that layer beats the weighted sum; mean rank over tasks; {h.score_note()}.")
    out += [""] + textwrap.wrap(legend, width)
    return "\n".join(out)


# ----------------------------------------------------------------------------- files


def headline_table(h: Headline) -> DisplayTable:
    """The headline for Markdown/HTML: one column per task, WS with the best layer beside it."""
    headers = ["#", "upstream", "score", "mean rank"] + [t.header() for t in h.tasks]
    rows = []
    for s in h.standings:
        row = [Cell(str(s.position), s.position), Cell(s.display, s.display), Cell(fmt(s.score, 1), s.score),
               Cell(fmt(s.mean_rank, 2), s.mean_rank)]
        for t in h.tasks:
            e = h.entry(s.upstream, t.key)
            if e is None:
                row.append(Cell("–", None))
            else:
                row.append(Cell(fmt(e.ws), e.ws, e.best_text()))
        rows.append(row)
    return DisplayTable(headers, rows)


def task_table(h: Headline, t: TaskInfo) -> DisplayTable:
    """Per-task detail: rank, WS, best layer and CCA pick for every upstream with a result."""
    headers = ["#", "upstream", "rank", "normalised", "weighted sum", "best layer", "layer", "CCA pick", "CCA layer",
               "CCA property"]
    rows = []
    for s in h.standings:
        e = h.entry(s.upstream, t.key)
        if e is None:
            continue
        mark = MARK if e.single_beats_ws else ""
        rows.append([
            Cell(str(s.position), s.position), Cell(s.display, s.display),
            Cell(fmt(s.task_ranks.get(t.key), 1), s.task_ranks.get(t.key)),
            Cell(fmt(s.task_scores.get(t.key), 1), s.task_scores.get(t.key)),
            Cell(fmt(e.ws), e.ws), Cell(fmt(e.best) + mark, e.best), Cell(fmt(e.best_layer), e.best_layer),
            Cell(fmt(e.cca), e.cca), Cell(fmt(e.cca_layer), e.cca_layer),
            Cell(e.cca_property or "–", e.cca_property),
        ])
    return DisplayTable(headers, rows)


def numeric_frame(h: Headline) -> pd.DataFrame:
    """Wide numeric table for CSV: one row per upstream in rank order, columns `<task>_<field>`."""
    per_task = ("ws", "rank", "normalised", "best", "best_layer", "single_beats_ws", "cca", "cca_layer", "cca_property")
    rows = []
    for s in h.standings:
        row: dict[str, Any] = {"position": s.position, "upstream": s.display, "spec": s.upstream, "score": s.score,
                               "mean_rank": s.mean_rank, "tasks": s.n_tasks}
        for t in h.tasks:
            e = h.entry(s.upstream, t.key)
            vals = {
                "ws": e.ws if e else None, "rank": s.task_ranks.get(t.key), "normalised": s.task_scores.get(t.key),
                "best": e.best if e else None, "best_layer": e.best_layer if e else None,
                "single_beats_ws": e.single_beats_ws if e else None, "cca": e.cca if e else None,
                "cca_layer": e.cca_layer if e else None, "cca_property": e.cca_property if e else None,
            }
            row.update({f"{t.key}_{k}": vals[k] for k in per_task})
        rows.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    columns = ["position", "upstream", "spec", "score", "mean_rank", "tasks"] + [f"{t.key}_{k}" for t in h.tasks for k in per_task]
    df = pd.DataFrame(rows, columns=columns)
    for col in df.columns:
        if col.endswith("_layer"):
            df[col] = df[col].astype("Int64")
    return df


def to_markdown(h: Headline, failures: list[FailureRecord] | None = None) -> str:
    """leaderboard.md: the headline, a legend, then one detail table per task."""
    table = headline_table(h)
    md_rows = [[c.text if not c.sub else f"{c.text} · {c.sub}" for c in row] for row in table.rows]
    out = [
        "# LayerBench leaderboard",
        "",
        "Test scores in each task's metric (↓ lower is better, ↑ higher is better). Each task cell: the weighted "
        "sum of all layers (SUPERB's headline number; upstreams are ranked on it) · the best single layer, chosen "
        f"on dev, as `score @L<layer>`; `{MARK}` marks a single layer that beats the weighted sum. "
        f"Mean rank: over the tasks an upstream has. {h.score_note()[0].upper()}{h.score_note()[1:]}.",
        "",
        markdown_table(table.headers, md_rows),
    ]
    for t in (t for t in h.tasks if t.ranked):
        detail = task_table(h, t)
        out += ["", f"## {t.header()} ({t.unit()})", "",
                markdown_table(detail.headers, [[c.text for c in row] for row in detail.rows])]
    out += ["", "CCA pick: the layer the task's first mapped CCA property (configs/compare.yaml) ranks first, "
            "and its test score."]
    if failures:
        out += ["", "Failed units (not in the tables):", ""]
        out += [f"- {f.upstream} / {f.unit}: {f.error}" for f in failures]
    return "\n".join(out) + "\n"


def to_latex(h: Headline) -> str:
    """booktabs table: overall columns, then per task WS / best / layer / CCA pick / CCA layer; needs jinja2."""
    columns = pd.MultiIndex.from_tuples(
        [("", "score"), ("", "mean rank")]
        + [(t.header(arrows=False), f) for t in h.tasks for f in ("WS", "best", "layer", "CCA pick", "CCA layer")]
    )
    data, index = [], []
    for s in h.standings:
        index.append(s.display)
        vals = [fmt(s.score, 1), fmt(s.mean_rank, 2)]
        for t in h.tasks:
            e = h.entry(s.upstream, t.key)
            vals += [fmt(getattr(e, f)) if e else "–" for f in FIELDS]
        data.append(vals)
    df = pd.DataFrame(data, index=pd.Index(index, name="upstream"), columns=columns)
    body = df.to_latex(
        escape=True,
        multicolumn=True,
        multicolumn_format="c",
        column_format="l" + "r" * len(columns),
        caption="Test scores (PER/WER: lower is better; accuracy: higher is better). WS: weighted sum of all layers "
        "(ranked on); best single layer chosen on dev; CCA pick = arg-max layer of the task's CCA property. "
        + h.score_note()[0].upper() + h.score_note()[1:] + ".",
        label="tab:layerbench",
    )
    return body.replace("–", "--")


def write_text(path: Path, text: str) -> Path:
    """Atomic text write (temporary file beside the target, then rename): readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def write_tables(h: Headline, out_dir: str | Path, failures: list[FailureRecord] | None = None) -> dict[str, Path]:
    """leaderboard.csv / .md / .tex; deterministic for the same entries."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "leaderboard.csv", "markdown": out_dir / "leaderboard.md", "latex": out_dir / "leaderboard.tex"}
    write_text(paths["csv"], numeric_frame(h).to_csv(index=False, lineterminator="\n"))
    write_text(paths["markdown"], to_markdown(h, failures))
    write_text(paths["latex"], to_latex(h))
    return paths
