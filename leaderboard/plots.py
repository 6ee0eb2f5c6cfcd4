"""Leaderboard plots (matplotlib Agg, PNG), derived from result files only.

PNG metadata carries no software/date stamp, so the same inputs give byte-identical files.
Task scores are plotted higher-is-better (error rates as 100 - error) so curves of
different tasks point the same way as CCA curves.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.compare import Comparison, ResultSet, best_probed_layer, fmt, predictor_name  # noqa: E402
from bench.results import slug  # noqa: E402

_PNG_META = {"Software": None}
_DPI = 100


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=_DPI, metadata=_PNG_META, bbox_inches="tight")
    plt.close(fig)
    return path


def _score_label(rs: ResultSet, task: str) -> str:
    probe = next(p for (_, t), p in rs.probes.items() if t == task)
    metric = probe.metric.upper() if len(probe.metric) <= 4 else probe.metric
    return f"{task} {metric}" if probe.higher_is_better else f"{task} (100 - {metric})"


def plot_layer_curves(rs: ResultSet, upstream: str, path: Path) -> Path:
    """CCA per property, task test scores and weighted-sum weights against layer index."""
    fig, axes = plt.subplots(3, 1, figsize=(7, 8.5), sharex=True)
    ax_cca, ax_task, ax_w = axes
    for prop in rs.properties:
        cca = rs.ccas.get((upstream, prop))
        if cca and cca.scores:
            ax_cca.plot(list(cca.scores), list(cca.scores.values()), marker="o", label=f"CCA-{prop}")
    for task in rs.tasks:
        probe = rs.probes.get((upstream, task))
        if probe is None:
            continue
        test = probe.scores("test")
        if test:
            ax_task.plot(list(test), list(test.values()), marker="o", label=_score_label(rs, task))
        if probe.ws_weights:
            w = dict(sorted(probe.ws_weights.items()))
            ax_w.plot(list(w), list(w.values()), marker="o", label=task)
    ax_cca.set_ylabel("CCA score")
    ax_task.set_ylabel("test score (higher is better)")
    ax_w.set_ylabel("weighted-sum weight")
    ax_w.set_xlabel("layer")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8, loc="best")
        else:
            ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
    ax_w.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(f"{rs.display(upstream)}: layer-wise CCA, task scores and layer weights")
    return _save(fig, path)


def plot_rank_heatmap(full: Comparison, path: Path) -> Path | None:
    """Spearman rho of every CCA property (and the layer weights) with every task score."""
    rows = list(dict.fromkeys((p.display, p.task) for p in full.pairs))  # comparator order
    if not rows:
        return None
    props = [a.predictor for a in full.aggregates if a.predictor != "weights"] + ["weights"]
    grid = np.full((len(rows), len(props)), np.nan)
    for p in full.pairs:
        i = rows.index((p.display, p.task))
        if p.rho_cca is not None:
            grid[i, props.index(p.property)] = p.rho_cca
        if p.rho_weights is not None:
            grid[i, props.index("weights")] = p.rho_weights
    fig, ax = plt.subplots(figsize=(1.3 * len(props) + 3, 0.45 * len(rows) + 2))
    cmap = plt.get_cmap("RdBu").with_extremes(bad="lightgrey")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-1, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(props)):
            v = grid[i, j]
            dark = not math.isnan(v) and abs(v) > 0.6
            ax.text(j, i, "n/a" if math.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ax.set_xticks(range(len(props)), [predictor_name(p) for p in props], rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [f"{d} / {t}" for d, t in rows])
    fig.colorbar(im, ax=ax, label="Spearman rho with task score")
    ax.set_title("Rank correlation with per-layer task performance")
    return _save(fig, path)


def plot_scatter(rs: ResultSet, comp: Comparison, upstream: str, path: Path) -> Path | None:
    """Per task: the mapped CCA property's score against task score, points labelled by layer."""
    pairs = [p for p in comp.pairs if p.upstream == upstream]
    if not pairs:
        return None
    fig, axes = plt.subplots(1, len(pairs), figsize=(4 * len(pairs), 3.8), squeeze=False, layout="constrained")
    for ax, p in zip(axes[0], pairs):
        cca = rs.ccas[(upstream, p.property)].scores
        test = rs.probes[(upstream, p.task)].scores("test")
        layers = [l for l in cca if l in test]
        xs, ys = [cca[l] for l in layers], [test[l] for l in layers]
        ax.scatter(xs, ys)
        for l, x, y in zip(layers, xs, ys):
            ax.annotate(str(l), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=8)
        ax.set_xlabel(f"CCA-{p.property}")
        ax.set_ylabel(_score_label(rs, p.task))
        ax.set_title(f"{p.task}: rho = {fmt(p.rho_cca)}", fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{rs.display(upstream)}: CCA against task score per layer")
    return _save(fig, path)


def plot_single_vs_ws(rs: ResultSet, path: Path) -> Path | None:
    """Best single layer (dev-chosen, test score) against the weighted sum, per (upstream, task)."""
    pts = []
    for (up, task), probe in sorted(rs.probes.items()):
        layer, _, _ = best_probed_layer(probe)
        best = probe.scores("test").get(layer) if layer is not None else None
        if best is not None and probe.ws_score is not None:
            pts.append((probe.ws_score, best, f"{rs.display(up)} / {task} (L{layer})"))
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6, 5.5))
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    ax.scatter(xs, ys)
    for x, y, text in pts:
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    lo, hi = min(xs + ys), max(xs + ys)
    pad = max(1.0, 0.05 * (hi - lo))
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("weighted sum of layers (test, higher is better)")
    ax.set_ylabel("best single layer (test, higher is better)")
    ax.set_title("Above the diagonal: one layer beats the weighted sum")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def make_plots(rs: ResultSet, comp: Comparison, full: Comparison, out_dir: str | Path) -> dict[str, Path]:
    """Every plot; keys are file stems, in a fixed order. `full` maps every task to every property."""
    out_dir = Path(out_dir)
    plots: dict[str, Path] = {}
    for up in rs.upstreams:
        stem = f"layers_{slug(up)}"
        plots[stem] = plot_layer_curves(rs, up, out_dir / f"{stem}.png")
    for up in rs.upstreams:
        stem = f"scatter_{slug(up)}"
        p = plot_scatter(rs, comp, up, out_dir / f"{stem}.png")
        if p:
            plots[stem] = p
    for stem, fn in (("rank_correlation_heatmap", lambda path: plot_rank_heatmap(full, path)),
                     ("best_layer_vs_weighted_sum", lambda path: plot_single_vs_ws(rs, path))):
        p = fn(out_dir / f"{stem}.png")
        if p:
            plots[stem] = p
    return plots
