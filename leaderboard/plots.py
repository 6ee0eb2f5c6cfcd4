"""Leaderboard figures (matplotlib Agg, PNG), derived from result files only.

- Layer view, one per upstream with more than one layer (as Pasad et al.'s Fig. 2-4): CCA-mel /
  phone / word against layer, a layers x tasks heatmap of the per-task normalised test score
  (0 = the upstream's worst layer on that task, 1 = its best), and the weighted sum's layer
  weights; the dev-chosen best layer per task is boxed, the CCA pick circled.
- Rank correlation (Fig. 5): Spearman rho of every CCA property (and the layer weights) with
  the per-layer test score, upstream x task, one panel per predictor; ranked pairs only.
- CCA against task score (Fig. 6): per task, every layer of every ranked upstream as a point.
- Best single layer against the weighted sum, per (upstream, task).

Task scores are plotted higher-is-better (error rates as 100 - error). PNG metadata carries no
software/date stamp, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from bench.compare import MIN_RANKED_LAYERS, Comparison, ResultSet, best_probed_layer, fmt, predictor_name  # noqa: E402
from bench.results import slug  # noqa: E402
from leaderboard.tables import short_metric  # noqa: E402

_PNG_META = {"Software": None}
_DPI = 100
_ANNOTATE_MAX_LAYERS = 13  # heatmap cells carry the test score up to this many layers


@dataclass(frozen=True)
class Figure:
    """A written PNG with what the page says about it."""

    stem: str
    path: Path
    caption: str
    alt: str


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=_DPI, metadata=_PNG_META, bbox_inches="tight")
    plt.close(fig)
    return path


def _score_label(rs: ResultSet, task: str) -> str:
    probe = next(p for (_, t), p in rs.probes.items() if t == task)
    metric = short_metric(probe.metric)
    return f"{task} {metric}" if probe.higher_is_better else f"{task} (100 - {metric})"


def plot_layer_view(rs: ResultSet, comp: Comparison, upstream: str, path: Path) -> Path | None:
    """CCA curves, per-task normalised layer scores and weighted-sum weights on one shared layer axis."""
    tasks = [t for t in rs.tasks if (upstream, t) in rs.probes]
    props = [p for p in rs.properties if (upstream, p) in rs.ccas]
    layer_set: set[int] = set()
    for t in tasks:
        layer_set |= {ls.layer for ls in rs.probes[(upstream, t)].per_layer}
    for p in props:
        layer_set |= set(rs.ccas[(upstream, p)].names)
    if len(layer_set) < 2:
        return None
    layers = sorted(layer_set)
    col = {layer: i for i, layer in enumerate(layers)}
    n_t = max(1, len(tasks))
    width = min(14.0, max(7.5, 0.42 * len(layers) + 3.5))
    heights = [2.6, 0.42 * n_t + 0.5, 0.3 * n_t + 0.5]
    fig_h = sum(heights) + 1.4
    fig = plt.figure(figsize=(width, fig_h))
    gs = fig.add_gridspec(3, 2, width_ratios=[1, 0.018], height_ratios=heights, hspace=0.12, wspace=0.02,
                          top=1 - 0.75 / fig_h, bottom=0.6 / fig_h)
    ax_cca = fig.add_subplot(gs[0, 0])
    ax_heat = fig.add_subplot(gs[1, 0], sharex=ax_cca)
    ax_w = fig.add_subplot(gs[2, 0], sharex=ax_cca)
    xs = np.arange(len(layers))

    for prop in props:
        cca = rs.ccas[(upstream, prop)].scores
        pts = [(col[layer], v) for layer, v in cca.items() if layer in col]
        if pts:
            ax_cca.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=4, label=f"CCA-{prop}")
    ax_cca.set_ylabel("CCA score")
    ax_cca.grid(alpha=0.3)
    if ax_cca.lines:
        ax_cca.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(props), frameon=False)
    else:
        ax_cca.text(0.5, 0.5, "no CCA results", ha="center", va="center", transform=ax_cca.transAxes)
    fig.add_subplot(gs[0, 1]).axis("off")

    score = np.full((n_t, len(layers)), np.nan)
    raw = np.full((n_t, len(layers)), np.nan)
    weights = np.full((n_t, len(layers)), np.nan)
    for i, t in enumerate(tasks):
        probe = rs.probes[(upstream, t)]
        test = probe.scores("test")
        for layer, v in test.items():
            raw[i, col[layer]] = probe.to_native(v)
        vals = np.array(list(test.values()), dtype=float)
        if vals.size:
            lo, hi = vals.min(), vals.max()
            for layer, v in test.items():
                score[i, col[layer]] = (v - lo) / (hi - lo) if hi > lo else np.nan  # flat: no best layer
        for layer, w in probe.ws_weights.items():
            if layer in col:
                weights[i, col[layer]] = w
    edges_x = np.arange(len(layers) + 1) - 0.5
    edges_y = np.arange(n_t + 1) - 0.5
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    im = ax_heat.pcolormesh(edges_x, edges_y, np.ma.masked_invalid(score), cmap=cmap, vmin=0, vmax=1)
    if len(layers) <= _ANNOTATE_MAX_LAYERS:
        for i in range(n_t):
            for j in range(len(layers)):
                if not math.isnan(raw[i, j]):
                    ax_heat.text(j, i, f"{raw[i, j]:.1f}", ha="center", va="center", fontsize=7,
                                 color="white" if score[i, j] <= 0.6 else "black")  # NaN compares False
    for i, t in enumerate(tasks):
        best, _, _ = best_probed_layer(rs.probes[(upstream, t)])
        if best is not None:
            ax_heat.add_patch(Rectangle((col[best] - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.2))
        rec = comp.recommended(upstream, t)
        if rec is not None and rec.recommended_layer in col:
            ax_heat.plot(col[rec.recommended_layer], i + 0.28, marker="o", markersize=7, markerfacecolor="white",
                         markeredgecolor="black", linestyle="none")
    ax_heat.set_yticks(range(n_t), [f"{t} {short_metric(rs.probes[(upstream, t)].metric)}" for t in tasks])
    ax_heat.set_ylim(n_t - 0.5, -0.5)
    ax_heat.set_ylabel("task")
    fig.colorbar(im, cax=fig.add_subplot(gs[1, 1]), label="test score\n(0 worst, 1 best layer)")

    wmap = plt.get_cmap("Blues").with_extremes(bad="lightgrey")
    imw = ax_w.pcolormesh(edges_x, edges_y, np.ma.masked_invalid(weights), cmap=wmap, vmin=0)
    ax_w.set_yticks(range(n_t), tasks)
    ax_w.set_ylim(n_t - 0.5, -0.5)
    ax_w.set_ylabel("weighted sum")
    fig.colorbar(imw, cax=fig.add_subplot(gs[2, 1]), label="weight")
    ax_w.set_xticks(xs, [str(layer) for layer in layers])
    ax_w.set_xlabel("layer")
    ax_w.set_xlim(-0.5, len(layers) - 0.5)
    plt.setp(ax_cca.get_xticklabels(), visible=False)
    plt.setp(ax_heat.get_xticklabels(), visible=False)
    fig.suptitle(f"{rs.display(upstream)}: layer by layer (red box: best layer on dev; circle: CCA pick)",
                 fontsize=11, y=1 - 0.1 / fig_h)
    return _save(fig, path)


def _grid(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def plot_rank_heatmap(full: Comparison, path: Path) -> Path | None:
    """Spearman rho, upstream x task, one panel per predictor (CCA properties, then layer weights)."""
    ranked = full.ranked_pairs
    if not ranked:
        return None
    ups = list(dict.fromkeys(p.display for p in ranked))
    tasks = list(dict.fromkeys(p.task for p in ranked))
    props = list(dict.fromkeys(p.property for p in ranked)) + ["weights"]
    grids = {prop: np.full((len(ups), len(tasks)), np.nan) for prop in props}
    for p in ranked:
        i, j = ups.index(p.display), tasks.index(p.task)
        if p.rho_cca is not None:
            grids[p.property][i, j] = p.rho_cca
        if p.rho_weights is not None:
            grids["weights"][i, j] = p.rho_weights
    nrows, ncols = _grid(len(props), 2)
    cell_w, cell_h = 0.62, 0.34
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                             figsize=(ncols * (cell_w * len(tasks) + 2.6) + 0.8, nrows * (cell_h * len(ups) + 1.5)))
    cmap = plt.get_cmap("RdBu").with_extremes(bad="lightgrey")
    im = None
    for k, prop in enumerate(props):
        ax = axes[k // ncols][k % ncols]
        grid = grids[prop]
        im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-1, vmax=1, aspect="auto")
        for i in range(len(ups)):
            for j in range(len(tasks)):
                v = grid[i, j]
                ax.text(j, i, "" if math.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if not math.isnan(v) and abs(v) > 0.6 else "black")
        ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(ups)), ups if k % ncols == 0 else [""] * len(ups), fontsize=8)
        ax.set_title(predictor_name(prop), fontsize=10)
    for k in range(len(props), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    fig.colorbar(im, ax=axes, label="Spearman rho with per-layer test score", shrink=0.8)
    fig.suptitle("Does CCA rank the layers as the probes do? (grey: not mapped or undefined)", fontsize=11)
    return _save(fig, path)


def plot_cca_scatter(rs: ResultSet, comp: Comparison, path: Path) -> Path | None:
    """Per task (its primary CCA property): CCA score against test score, every layer of every ranked upstream."""
    primary = [p for p in comp.ranked_pairs if p.primary]
    tasks = list(dict.fromkeys(p.task for p in primary))
    if not tasks:
        return None
    ups = list(dict.fromkeys(p.upstream for p in primary))
    colors = plt.get_cmap("tab20" if len(ups) > 10 else "tab10")
    nrows, ncols = _grid(len(tasks), 3)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained", figsize=(4.2 * ncols + 2.2, 3.5 * nrows))
    for k, task in enumerate(tasks):
        ax = axes[k // ncols][k % ncols]
        pairs = [p for p in primary if p.task == task]
        for p in pairs:
            cca = rs.ccas[(p.upstream, p.property)].scores
            test = rs.probes[(p.upstream, task)].scores("test")
            layers = [layer for layer in cca if layer in test]
            ax.plot([cca[layer] for layer in layers], [test[layer] for layer in layers], marker="o", markersize=3.5,
                    linewidth=0.6, alpha=0.85, color=colors(ups.index(p.upstream) % colors.N), label=p.display)
        rhos = [p.rho_cca for p in pairs if p.rho_cca is not None]
        mean = fmt(sum(rhos) / len(rhos)) if rhos else "–"
        ax.set_title(f"{task} vs CCA-{pairs[0].property} (mean rho {mean}, {len(pairs)} upstreams)", fontsize=9)
        ax.set_xlabel(f"CCA-{pairs[0].property}", fontsize=8)
        ax.set_ylabel(_score_label(rs, task), fontsize=8)
        ax.grid(alpha=0.3)
    for k in range(len(tasks), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for row in axes:
        for ax in row:
            for hnd, lab in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(lab, hnd)
    fig.legend(list(seen.values()), list(seen), loc="outside right upper", fontsize=8, title="upstream (lines: layer order)")
    fig.suptitle("CCA score against task score, one point per layer", fontsize=11)
    return _save(fig, path)


def plot_single_vs_ws(rs: ResultSet, path: Path) -> Path | None:
    """Best single layer (dev-chosen, test score) against the weighted sum, per multi-layer (upstream, task)."""
    pts: dict[str, list[tuple[float, float]]] = {}
    for (up, task), probe in sorted(rs.probes.items()):
        if len(probe.per_layer) < 2:
            continue
        layer, _, _ = best_probed_layer(probe)
        best = probe.scores("test").get(layer) if layer is not None else None
        if best is not None and probe.ws_score is not None:
            pts.setdefault(task, []).append((probe.ws_score, best))
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6.2, 5.2), layout="constrained")
    for task in rs.tasks:
        if task in pts:
            ax.scatter([p[0] for p in pts[task]], [p[1] for p in pts[task]], label=_score_label(rs, task), s=22)
    allv = [v for ps in pts.values() for p in ps for v in p]
    lo, hi = min(allv), max(allv)
    pad = max(1.0, 0.05 * (hi - lo))
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("weighted sum of layers (test, higher is better)")
    ax.set_ylabel("best single layer (test, higher is better)")
    ax.set_title("Above the diagonal: one layer beats the weighted sum", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def make_plots(rs: ResultSet, comp: Comparison, full: Comparison, out_dir: str | Path) -> dict[str, Figure]:
    """Every figure, keyed by file stem in page order. `full` maps every task to every CCA property."""
    out_dir = Path(out_dir)
    figs: dict[str, Figure] = {}
    left_out = full.not_ranked()
    not_ranked = f" Not ranked (fewer than {MIN_RANKED_LAYERS} layers): {', '.join(left_out)}." if left_out else ""
    for up in rs.upstreams:
        stem = f"layers_{slug(up)}"
        p = plot_layer_view(rs, comp, up, out_dir / f"{stem}.png")
        if p:
            name = rs.display(up)
            figs[stem] = Figure(
                stem, p,
                f"{name}. Top: CCA with mel features, phones and words per layer. Middle: each task's test score per "
                "layer, normalised per task (numbers: the score in the task's metric; grey: no score, or the same score on "
                "every layer); red box = best layer on dev, "
                "circle = the layer CCA picks. Bottom: the weighted sum's learned layer weights.",
                f"Layer view of {name}: CCA curves, a layers by tasks heatmap of test scores and weighted-sum weights",
            )
    for stem, fn, caption, alt in (
        ("rank_correlation_heatmap", lambda path: plot_rank_heatmap(full, path),
         "Spearman rho between each CCA property (and the weighted-sum weights) and the per-layer test score; "
         "blue: CCA ranks layers as the probes do, red: the opposite." + not_ranked,
         "Heatmaps of rank correlation, upstream by task, one panel per CCA property and the layer weights"),
        ("cca_vs_task_scatter", lambda path: plot_cca_scatter(rs, comp, path),
         "Each task against the CCA property mapped to it: one point per layer, one line per upstream in layer "
         "order. A rising cloud means higher CCA, better layer." + not_ranked,
         "Scatter plots of CCA score against task test score per layer, one panel per task"),
        ("best_layer_vs_weighted_sum", lambda path: plot_single_vs_ws(rs, path),
         "Best single layer (chosen on dev) against the weighted sum of all layers, test scores, error rates as "
         "100 - error; points above the diagonal are pairs where one layer beats the weighted sum.",
         "Scatter plot of best single layer test score against weighted-sum test score"),
    ):
        p = fn(out_dir / f"{stem}.png")
        if p:
            figs[stem] = Figure(stem, p, caption, alt)
    return figs
