"""Clusters and 2-D views: the plots of a `layerbench clusters` run and its leaderboard section.

`plot_run` draws, per analysed layer, the 2-D views coloured by label (each panel titled with
how well k-means on that picture agrees with k-means on the full vectors), and one summary of
AMI with the labels against layer for every upstream (full vectors, spherical k-means and each
view). `clusters_section` turns the result files of such runs into clusters.md and a section of
the leaderboard page.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.records import ClustersResult
from bench.results import slug
from leaderboard.html import Section
from leaderboard.plots import Figure, _save, plt
from leaderboard.tables import write_text


def _scatter(ax, xy: np.ndarray, labels: Sequence[str], title: str) -> None:
    classes = sorted(set(labels))
    cmap = plt.get_cmap("tab20", max(len(classes), 1))
    index = {c: i for i, c in enumerate(classes)}
    ax.scatter(xy[:, 0], xy[:, 1], c=[index[v] for v in labels], cmap=cmap, s=6, vmin=-0.5,
               vmax=len(classes) - 0.5, linewidths=0)
    for c in classes:  # label each class at its median point, so the picture reads without a legend
        pts = xy[[i for i, v in enumerate(labels) if v == c]]
        mx, my = np.median(pts, axis=0)
        ax.annotate(c, (mx, my), fontsize=6, ha="center", va="center", alpha=0.8)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_run(entries: list[dict[str, Any]], coords: dict, labels: Sequence[str], models, out_dir: Path
             ) -> dict[str, Path]:
    """`views_<upstream>_L<layer>.png` per analysed layer with views, and `ami_by_layer.png`."""
    out_dir = Path(out_dir)
    plots: dict[str, Path] = {}
    by_key = {(e["upstream"], e["layer"]): e for e in entries}
    for (mi, li), views in coords.items():
        if not views:
            continue
        m = models[mi]
        spec = m.layers[li]
        e = by_key[(m.spec, spec.index)]
        fig, axes = plt.subplots(1, len(views), figsize=(4 * len(views), 4.4), squeeze=False, layout="constrained")
        for ax, (view, xy) in zip(axes[0], views.items()):
            chk = e["views"][view]
            _scatter(ax, xy, labels, f"{view}: k-means on 2-D vs labels AMI {chk['kmeans']['ami']:.3f}\n"
                                     f"vs full-vector k-means AMI {chk['vs_full_kmeans']['ami']:.3f}")
        fig.suptitle(f"{m.label} {spec.name} ({spec.stride / 16:.0f} ms): full-vector k-means AMI "
                     f"{e['full']['kmeans']['ami']:.3f}", fontsize=10)
        stem = f"views_{slug(m.label)}_L{spec.index}"
        plots[stem] = _save(fig, out_dir / f"{stem}.png")
    plots["ami_by_layer"] = plot_ami_by_layer(entries, out_dir / "ami_by_layer.png")
    return plots


def plot_ami_by_layer(entries: list[dict[str, Any]], path: Path) -> Path:
    """AMI with the labels against layer index, one colour per upstream, one line style per method."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ups = list(dict.fromkeys(e["label"] for e in entries))
    views = sorted({v for e in entries for v in e["views"]})
    styles = {"kmeans": "-", "spherical_kmeans": "--", **{v: ":" for v in views}}
    for ci, up in enumerate(ups):
        rows = sorted((e for e in entries if e["label"] == up), key=lambda e: e["layer"])
        xs = [e["layer"] for e in rows]
        for method, style in styles.items():
            ys = [(e["full"][method] if method in e["full"] else e["views"][method]["kmeans"])["ami"] for e in rows]
            marker = {"pca": "s", "tsne": "^", "umap": "v"}.get(method, "o")
            ax.plot(xs, ys, style, marker=marker, color=f"C{ci}", label=f"{up} {method}")
    ax.set_xlabel("layer")
    ax.set_ylabel("AMI with labels")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title("k-means clusters against labels: full vectors and 2-D views")
    return _save(fig, path)


def _score(s: dict[str, float]) -> str:
    return f"{s['ami']:.3f} / {s['homogeneity']:.3f} / {s['completeness']:.3f}"


_HEAD = ["upstream", "layer", "k-means AMI / hom / comp", "spherical AMI / hom / comp", "2-D views: AMI (vs full)"]


def _tables(r: ClustersResult) -> tuple[str, list[list[str]], list[list[str]]]:
    """(title, per-layer rows, pair rows) of one clusters result."""
    title = (f"{', '.join(u['label'] for u in r.upstreams)}: {r.unit}s labelled by {r.label_tier}, "
             f"{r.n_samples} samples, {r.n_labels} labels, k = {r.k}")
    rows = [[e["label"], f"{e['name']} ({e['layer']})", _score(e["full"]["kmeans"]), _score(e["full"]["spherical_kmeans"]),
             "; ".join(f"{v}: {c['kmeans']['ami']:.3f} (vs full {c['vs_full_kmeans']['ami']:.3f})"
                       for v, c in sorted(e["views"].items()))] for e in r.per_layer]
    pairs = [[f"{p['a']['label']} L{p['a']['layer']}", f"{p['b']['label']} L{p['b']['layer']}", f"{p['ami']:.3f}",
              f"{p['homogeneity']:.3f}", f"{p['completeness']:.3f}"] for p in r.pairs]
    return title, rows, pairs


_PAIR_HEAD = ["clustering A", "clustering B", "AMI", "homogeneity", "completeness"]


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return ('<div class="tablebox"><table><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{cells}</tbody></table></div>")


def clusters_section(results: list[ClustersResult], out_dir: str | Path) -> Section | None:
    """Write `<out_dir>/clusters.md` and return the page section of every clusters result (tables
    plus each run's AMI-per-layer figure), or None when there is none."""
    if not results:
        return None
    md, body, figures = ["# Clusters and 2-D views", ""], [], []
    for r in sorted(results, key=lambda d: d.path):
        title, rows, pairs = _tables(r)
        md += [f"## {title}", "", *_md_table(_HEAD, rows), ""]
        body += [f"<h3>{html.escape(title)}</h3>", _html_table(_HEAD, rows)]
        if pairs:
            md += [*_md_table(_PAIR_HEAD, pairs), ""]
            body.append(_html_table(_PAIR_HEAD, pairs))
        summary = Path(r.path).parent / r.plots["ami_by_layer"]
        if summary.is_file():
            stem = f"clusters_{Path(r.path).stem}"
            figures.append(Figure(stem, summary, f"{title}: AMI with the labels per layer, full vectors and views.",
                                  f"AMI per layer for {title}"))
    write_text(Path(out_dir) / "clusters.md", "\n".join(md) + "\n")
    return Section(
        "clusters", "Clusters and 2-D views",
        "k-means (and spherical k-means) clusters of each layer against the labels: adjusted mutual information, "
        "homogeneity (each cluster holds one label), completeness (each label sits in one cluster). Each 2-D "
        "view is checked by k-means on its coordinates, against the labels and against k-means on the full "
        "vectors: a low 'vs full' means the picture does not show the clusters the vectors have.",
        body="\n".join(body), figures=figures,
    )
