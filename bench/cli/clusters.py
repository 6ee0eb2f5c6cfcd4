"""`layerbench clusters`: k-means / spherical k-means of layers against phone or word labels,
PCA / t-SNE / UMAP pictures checked by k-means, and pairwise comparisons of clusterings."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.records import ClustersResult

ORDER = 45


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "clusters",
        help="cluster layers (k-means, spherical k-means) against labels; PCA/t-SNE/UMAP views checked by k-means",
        description=(
            "Sample labelled segments (or time points) from an aligned corpus, run each upstream ONCE, "
            "and for every chosen layer score k-means and spherical k-means clusters against the labels "
            "(AMI, homogeneity, completeness), draw PCA / t-SNE / UMAP views each checked by k-means on "
            "the 2-D coordinates against k-means on the full vectors, and compare the clusterings of two "
            "upstreams or layers. One result JSON plus plots under <out>/clusters/."
        ),
    )
    p.add_argument("--upstream", action="append", required=True,
                   help="upstream spec; repeat to analyse several on the same samples (e.g. a base model and its "
                        "fine-tuned twin, or fbank and a random-init model)")
    p.add_argument("--corpus", required=True, help="LibriSpeech-style corpus folder with alignments (or its parent)")
    p.add_argument("--layers", default="all", help="all, every:K or a comma list of layer indices (default: all)")
    p.add_argument("--unit", choices=["segment", "frame"], default=None, help="segment means or time points")
    p.add_argument("--labels", choices=["phone", "word"], default=None, help="label tier (default: phone)")
    p.add_argument("--views", default=None, help="comma list of 2-D views: pca,tsne,umap (default: all three); "
                                                  "'none' for none")
    p.add_argument("--pair", default=None, metavar="U:L,U:L[;...]",
                   help="clusterings to compare, by upstream number (1-based, --upstream order) and layer index; "
                        "default: the same layer of the first upstream and each other one")
    p.add_argument("--label", action="append", default=None, help="display name per --upstream (same order)")
    p.add_argument("--name", default=None, help="result file stem (default: the upstream specs)")
    p.add_argument("--out", default="runs", help="results folder (default: runs); files go to <out>/clusters/")
    p.add_argument("--preset", default="default", help="config preset of configs/clusters.yaml: default or quick")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set kmeans.k=20 (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="sampling / k-means / view seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--force", action="store_true", help="recompute when a result with the same config exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bench.clusters import run_clusters
    from bench.config import parse_overrides

    overrides = parse_overrides(args.overrides)
    for key in ("unit", "labels"):
        if getattr(args, key):
            overrides[key] = getattr(args, key)
    if args.views is not None:
        overrides["views"] = [] if args.views.strip() == "none" else [v.strip() for v in args.views.split(",") if v.strip()]
    path, result = run_clusters(args.upstream, args.corpus, layers=args.layers, preset=args.preset,
                                overrides=overrides or None, pairs=args.pair, out_dir=args.out, name=args.name,
                                labels=args.label, seed=args.seed, device=args.device, force=args.force,
                                progress=not args.no_progress)
    print(format_table(result))
    print(f"clusters of {len(result.per_layer)} layer(s) on {result.n_samples} {result.unit}s "
          f"({result.n_labels} {result.label_tier} labels, k = {result.k}) in {path}")
    return 0


def format_table(result: ClustersResult) -> str:
    """One row per (upstream, layer): AMI / homogeneity / completeness for full vectors and views."""
    views = sorted({v for e in result.per_layer for v in e["views"]})
    head = ["upstream", "layer", "kmeans", "spherical"] + [f"{v}(vs full)" for v in views]
    rows = [head]
    for e in result.per_layer:
        f = e["full"]
        row = [e["label"], f"{e['name']}", *(f"{f[m]['ami']:.3f}/{f[m]['homogeneity']:.3f}/{f[m]['completeness']:.3f}"
                                             for m in ("kmeans", "spherical_kmeans"))]
        row += [f"{e['views'][v]['kmeans']['ami']:.3f}({e['views'][v]['vs_full_kmeans']['ami']:.3f})" for v in views]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "AMI/homogeneity/completeness against labels; views: AMI of k-means on 2-D (vs full-vector k-means)")
    for p in result.pairs:
        lines.append(f"pair {p['a']['label']} L{p['a']['layer']} vs {p['b']['label']} L{p['b']['layer']}: "
                     f"AMI {p['ami']:.3f}, homogeneity {p['homogeneity']:.3f}, completeness {p['completeness']:.3f}")
    return "\n".join(lines)
