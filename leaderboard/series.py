"""Layer x checkpoint heatmaps of CCA across a model's pre-training (from `series.json` files)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.records import SeriesResult
from bench.results import read_record, slug
from leaderboard.html import Section
from leaderboard.plots import Figure, _save, plt


def plot_series(series: SeriesResult, path: Path) -> Path | None:
    """One panel per property: rows = layers (0 at the bottom), columns = checkpoints in order."""
    props = [p for p in series.properties if any(v for v in series.scores.get(p, {}).values())]
    if not props:
        return None
    labels = [c.label for c in series.checkpoints]
    layers = sorted({l for p in props for col in series.scores[p].values() if col for l in col})
    fig, axes = plt.subplots(1, len(props), figsize=(1.1 * len(labels) * len(props) + 2.5, 0.45 * len(layers) + 2.2),
                             squeeze=False, layout="constrained")
    for ax, prop in zip(axes[0], props):
        grid = np.full((len(layers), len(labels)), np.nan)
        for j, label in enumerate(labels):
            for l, v in (series.scores[prop].get(label) or {}).items():
                grid[layers.index(l), j] = np.nan if v is None else v
        cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
        im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto", origin="lower")
        lo, hi = np.nanmin(grid), np.nanmax(grid)
        for i in range(len(layers)):
            for j in range(len(labels)):
                v = grid[i, j]
                light = not math.isnan(v) and v < lo + 0.5 * (hi - lo)
                ax.text(j, i, "n/a" if math.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if light else "black")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(layers)), [str(l) for l in layers])
        ax.set_ylabel("layer")
        ax.set_title(f"CCA-{prop}", fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{series.name}: layer-wise CCA across pre-training checkpoints")
    return _save(fig, path)


def series_section(files: Sequence[str | Path], out_dir: str | Path) -> Section | None:
    """`series_<name>.png` per series file with any score, as one page section (None: no figure)."""
    figures = []
    for f in files:
        series = read_record(f, SeriesResult)
        stem = f"series_{slug(series.name)}"
        path = plot_series(series, Path(out_dir) / f"{stem}.png")
        if path:
            labels = ", ".join(c.label for c in series.checkpoints)
            figures.append(Figure(stem, path, f"{series.name}: CCA of every layer (rows) at each checkpoint "
                                  f"(columns: {labels}).",
                                  f"Heatmaps of layer-wise CCA across {len(series.checkpoints)} checkpoints"))
    if not figures:
        return None
    return Section(
        "series", "CCA across pre-training checkpoints",
        "One heatmap per CCA property: layers bottom to top, checkpoints left to right in training order. "
        "Where a property appears during training, and at which depth (Vielzeuf's study).",
        figures=figures,
    )
