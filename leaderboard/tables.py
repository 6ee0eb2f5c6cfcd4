"""Leaderboard tables: a row per upstream; per task the weighted sum, best single layer and CCA pick.

Scores are shown in each task's own metric (PER/WER in %, lower is better; accuracy in %,
higher is better), all on the test split. The best single layer is chosen by dev score
(as the comparator does); the CCA pick is the arg-max layer of the task's first mapped CCA
property (configs/compare.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.compare import Comparison, ResultSet, best_probed_layer, fmt, markdown_table

FIELDS = ("ws", "best", "best_layer", "cca", "cca_layer")


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


@dataclass(frozen=True)
class Cell:
    """Display text plus the value a sortable table sorts on (None sorts last)."""

    text: str
    sort: float | str | None


@dataclass(frozen=True)
class DisplayTable:
    headers: list[str]
    rows: list[list[Cell]]


def leaderboard_entries(rs: ResultSet, comp: Comparison) -> list[Entry]:
    """Entries in upstream display order, then canonical task order."""
    out = []
    for up in rs.upstreams:
        for task in rs.tasks:
            probe = rs.probes.get((up, task))
            if probe is None:
                continue
            layer, _, _ = best_probed_layer(probe)
            test = probe.scores("test")
            best = probe.to_native(test.get(layer)) if layer is not None else None
            rec = comp.recommended(up, task)
            cca_layer = rec.recommended_layer if rec else None
            cca = probe.to_native(rec.recommended_test) if rec else None
            out.append(
                Entry(
                    upstream=up,
                    display=rs.display(up),
                    task=task,
                    metric=probe.metric,
                    higher_is_better=probe.higher_is_better,
                    ws=probe.to_native(probe.ws_score),
                    best=best,
                    best_layer=layer,
                    cca=cca,
                    cca_layer=cca_layer,
                    cca_property=rec.property if rec else None,
                )
            )
    return out


def _tasks(entries: list[Entry]) -> list[tuple[str, str, bool]]:
    seen: dict[str, tuple[str, str, bool]] = {}
    for e in entries:
        seen.setdefault(e.task, (e.task, e.metric, e.higher_is_better))
    return list(seen.values())


def _upstreams(entries: list[Entry], rs_upstreams: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    seen: dict[str, str] = dict(rs_upstreams or [])
    for e in entries:
        seen.setdefault(e.upstream, e.display)
    return sorted(seen.items(), key=lambda kv: (kv[1], kv[0]))


def task_header(task: str, metric: str, higher_is_better: bool, arrows: bool = True) -> str:
    direction = ("↑" if higher_is_better else "↓") if arrows else ""
    short = {"accuracy": "ACC"}.get(metric.lower(), metric.upper())
    return f"{task.upper()} {short}{direction}"


def numeric_frame(entries: list[Entry], upstreams: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Wide numeric table for CSV: one row per upstream, columns `<task>_<field>`."""
    index = _upstreams(entries, upstreams)
    by_key = {(e.upstream, e.task): e for e in entries}
    rows = []
    for up, display in index:
        row: dict[str, Any] = {"upstream": display, "spec": up}
        for task, _, _ in _tasks(entries):
            e = by_key.get((up, task))
            for f in FIELDS:
                v = getattr(e, f) if e else None
                row[f"{task}_{f}"] = round(v, 4) if isinstance(v, float) else v
        rows.append(row)
    df = pd.DataFrame(rows, columns=["upstream", "spec"] + [f"{t}_{f}" for t, _, _ in _tasks(entries) for f in FIELDS])
    for col in df.columns:
        if col.endswith("_layer"):
            df[col] = df[col].astype("Int64")
    return df


def display_table(entries: list[Entry], upstreams: list[tuple[str, str]] | None = None) -> DisplayTable:
    """Three columns per task: weighted sum, best single layer (score and index), CCA pick."""
    tasks = _tasks(entries)
    headers = ["upstream"]
    for task, metric, hib in tasks:
        h = task_header(task, metric, hib)
        headers += [f"{h} weighted sum", f"{h} best layer", f"{h} CCA pick"]
    by_key = {(e.upstream, e.task): e for e in entries}
    rows = []
    for up, display in _upstreams(entries, upstreams):
        row = [Cell(display, display)]
        for task, _, _ in tasks:
            e = by_key.get((up, task))
            if e is None:
                row += [Cell("–", None)] * 3
                continue
            row.append(Cell(fmt(e.ws), e.ws))
            row.append(Cell(f"{fmt(e.best)} (L{e.best_layer})" if e.best_layer is not None else "–", e.best))
            row.append(Cell(f"{fmt(e.cca)} (L{e.cca_layer})" if e.cca_layer is not None else "–", e.cca))
        rows.append(row)
    return DisplayTable(headers, rows)


def to_markdown(table: DisplayTable, failures: list[dict[str, Any]] | None = None) -> str:
    out = [
        "# LayerBench leaderboard",
        "",
        "Test scores in each task's metric (↓ lower is better, ↑ higher is better). "
        "Best layer: chosen on dev (layer index in brackets); CCA pick: the layer the task's CCA property ranks first.",
        "",
        markdown_table(table.headers, [[c.text for c in row] for row in table.rows]),
    ]
    if failures:
        out += ["", "Failed units (not in the table):", ""]
        out += [f"- {f.get('upstream')} / {f.get('task') or f.get('property')}: {f.get('error')}" for f in failures]
    return "\n".join(out) + "\n"


def to_latex(entries: list[Entry], upstreams: list[tuple[str, str]] | None = None) -> str:
    """booktabs table with a two-level header (task metric / field); needs jinja2 (pandas Styler)."""
    tasks = _tasks(entries)
    by_key = {(e.upstream, e.task): e for e in entries}
    columns = pd.MultiIndex.from_tuples(
        [(task_header(t, m, h, arrows=False), f) for t, m, h in tasks for f in ("WS", "best", "layer", "CCA pick", "CCA layer")],
        names=[None, None],  # two levels even when a CCA-only run has no task column
    )
    data, index = [], []
    for up, display in _upstreams(entries, upstreams):
        index.append(display)
        vals: list[str] = []
        for task, _, _ in tasks:
            e = by_key.get((up, task))
            vals += [fmt(getattr(e, f)) if e else "–" for f in FIELDS]
        data.append(vals)
    df = pd.DataFrame(data, index=pd.Index(index, name="upstream"), columns=columns)
    body = df.to_latex(
        escape=True,
        multicolumn=True,
        multicolumn_format="c",
        column_format="l" + "r" * len(columns),
        caption="Test scores (PER/WER: lower is better; accuracy: higher is better). "
        "Best single layer chosen on dev; CCA pick = arg-max layer of the task's CCA property.",
        label="tab:layerbench",
    )
    return body.replace("–", "--")


def write_tables(
    entries: list[Entry], out_dir: str | Path, failures: list[dict[str, Any]] | None = None,
    upstreams: list[tuple[str, str]] | None = None,
) -> dict[str, Path]:
    """leaderboard.csv / .md / .tex; deterministic for the same entries."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "leaderboard.csv", "markdown": out_dir / "leaderboard.md", "latex": out_dir / "leaderboard.tex"}
    numeric_frame(entries, upstreams).to_csv(paths["csv"], index=False, lineterminator="\n")
    paths["markdown"].write_text(to_markdown(display_table(entries, upstreams), failures))
    paths["latex"].write_text(to_latex(entries, upstreams))
    return paths
