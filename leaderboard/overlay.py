"""Upstreams side by side, layer by layer: one plot per CCA property and per task with every
upstream's per-layer curve on the same axes.

This is the picture of the pre-trained-versus-fine-tuned study (a base model and its CTC
fine-tuned twin expose the same layer positions, so their curves line up index for index)
and of any zoo comparison. Only written when a results folder holds two or more upstreams.
"""

from __future__ import annotations

from pathlib import Path

from bench.compare import ResultSet
from bench.results import slug
from leaderboard.plots import _save, _score_label, plt


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


def overlay_plots(rs: ResultSet, out_dir: str | Path) -> dict[str, Path]:
    """`overlay_cca_<property>.png` and `overlay_task_<task>.png` (test scores), keyed by stem."""
    out_dir = Path(out_dir)
    plots: dict[str, Path] = {}
    for prop in rs.properties:
        curves = {rs.display(u): dict(rs.ccas[(u, prop)].scores) for u in rs.upstreams
                  if (u, prop) in rs.ccas and rs.ccas[(u, prop)].scores}
        if len(curves) >= 2:
            stem = f"overlay_cca_{slug(prop)}"
            plots[stem] = _overlay(curves, f"CCA-{prop}", f"CCA-{prop} per layer, every upstream",
                                   out_dir / f"{stem}.png")
    for task in rs.tasks:
        curves = {rs.display(u): dict(rs.probes[(u, task)].scores("test")) for u in rs.upstreams
                  if (u, task) in rs.probes and rs.probes[(u, task)].scores("test")}
        if len(curves) >= 2:
            stem = f"overlay_task_{slug(task)}"
            plots[stem] = _overlay(curves, _score_label(rs, task), f"{task} test score per layer, every upstream",
                                   out_dir / f"{stem}.png")
    return plots
