"""Upstreams side by side, layer by layer: one plot per CCA property and per task with every
upstream's per-layer curve on the same axes.

This is the picture of the pre-trained-versus-fine-tuned study (a base model and its CTC
fine-tuned twin expose the same layer positions, so their curves line up index for index)
and of any zoo comparison. Only written when a results folder holds two or more upstreams;
the figures join the HTML page as their own section.
"""

from __future__ import annotations

from pathlib import Path

from bench.compare import ResultSet
from bench.results import slug
from leaderboard.html import Section
from leaderboard.plots import Figure, _save, _score_label, plt


def _overlay(curves: dict[str, dict[int, float]], ylabel: str, title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, scores in curves.items():
        layers = sorted(scores)
        ax.plot(layers, [scores[i] for i in layers], marker="o", label=name)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title)
    return _save(fig, path)


def overlay_plots(rs: ResultSet, out_dir: str | Path) -> dict[str, Figure]:
    """`overlay_cca_<property>.png` and `overlay_task_<task>.png` (test scores), keyed by stem."""
    out_dir = Path(out_dir)
    plots: dict[str, Figure] = {}
    for prop in rs.properties:
        curves = {rs.display(u): dict(rs.ccas[(u, prop)].scores) for u in rs.upstreams
                  if (u, prop) in rs.ccas and rs.ccas[(u, prop)].scores}
        if len(curves) >= 2:
            stem = f"overlay_cca_{slug(prop)}"
            path = _overlay(curves, f"CCA-{prop}", f"CCA-{prop} per layer, every upstream", out_dir / f"{stem}.png")
            plots[stem] = Figure(stem, path, f"CCA-{prop} against layer index, one line per upstream.",
                                 f"Line plot of CCA-{prop} per layer for {len(curves)} upstreams")
    for task in rs.tasks:
        curves = {rs.display(u): dict(rs.probes[(u, task)].scores("test")) for u in rs.upstreams
                  if (u, task) in rs.probes and rs.probes[(u, task)].scores("test")}
        if len(curves) >= 2:
            stem = f"overlay_task_{slug(task)}"
            path = _overlay(curves, _score_label(rs, task), f"{task} test score per layer, every upstream",
                            out_dir / f"{stem}.png")
            plots[stem] = Figure(stem, path, f"{task} test score (higher is better) against layer index, one line "
                                 "per upstream.", f"Line plot of {task} test score per layer for {len(curves)} upstreams")
    return plots


def overlay_section(rs: ResultSet, out_dir: str | Path) -> Section | None:
    """The overlays as a page section, or None when no property or task has two upstreams."""
    figures = list(overlay_plots(rs, out_dir).values())
    if not figures:
        return None
    return Section(
        "overlay", "Upstreams side by side",
        "Every upstream's per-layer curve on one axes, one plot per CCA property and per task: where in depth "
        "each model holds a property or does a task best. A base model and its fine-tuned twin share layer "
        "indices, so their curves line up index for index.",
        figures=figures,
        columns=2,
    )
