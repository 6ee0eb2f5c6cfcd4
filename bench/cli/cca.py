"""`layerbench cca`: layer-wise CCA (mel, phone, word, word vectors) and MI of one upstream."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.records import CCAResult

ORDER = 40


def register(sub: argparse._SubParsersAction) -> None:
    from bench.cca_properties import valid_names

    p = sub.add_parser(
        "cca",
        help="layer-wise CCA (mel / phone / word / word vectors) and cluster MI of one upstream",
        description=(
            "Sample utterances and aligned segments, run the upstream ONCE over them, and score "
            "every layer against each property: PWCCA with mel features (mel), one-hot phones "
            "(phone), one-hot frequent words (word), per-word vectors from a GloVe-format file "
            "(glove:<name-or-path>), and k-means mutual information with phones and words "
            "(mi = mi_phone + mi_word). One result JSON per property; finished properties with "
            "the same config are skipped."
        ),
    )
    p.add_argument("--upstream", required=True, help="upstream spec, e.g. fbank, randinit:hubert-tiny, hf:DIR")
    p.add_argument("--corpus", required=True, help="LibriSpeech-style corpus folder with alignments (or its parent)")
    p.add_argument("--property", default="mel,phone,word",
                   help=f"comma-separated: {valid_names()} (default: mel,phone,word)")
    p.add_argument("--out", default="runs", help="results folder (default: runs); files go to <out>/cca/")
    p.add_argument("--preset", default="default", help="config preset of configs/cca.yaml: default or quick")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set mel.num_utterances=100 (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="sampling / cross-validation / k-means seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--cnn-layers", action="store_true", help="also score the CNN feature-encoder layers")
    p.add_argument("--label", default=None, help="display name of the upstream in tables (not hashed)")
    p.add_argument("--force", action="store_true", help="recompute properties that already have a result")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import upstreams
    from bench.config import parse_overrides
    from bench.cca_properties import expand
    from bench.layerwise_cca import run_cca

    props = expand(args.property)
    overrides = parse_overrides(args.overrides)
    spec = upstreams.canonical(args.upstream, cnn_layers=True) if args.cnn_layers else args.upstream
    outcomes = run_cca(spec, args.corpus, props, preset=args.preset, overrides=overrides or None,
                       out_dir=args.out, seed=args.seed, device=args.device, force=args.force,
                       label=args.label, progress=not args.no_progress)
    print(format_table([o.result for o in outcomes]))
    done = sum(o.skipped for o in outcomes)
    folder = outcomes[0].path.parent if outcomes else args.out
    note = f" ({done} already done, skipped)" if done else ""
    print(f"{len(outcomes)} CCA result(s) for {args.upstream}{note} in {folder}")
    return 0


def format_table(results: list[CCAResult]) -> str:
    """Per-layer table: one row per layer, one score column per property."""
    if not results:
        return "(no results)"
    props = [r.property for r in results]
    rows: dict[tuple[int, str], dict[str, float | None]] = {}
    for r in results:
        for e in r.per_layer:
            rows.setdefault((e.layer, e.name), {})[r.property] = e.score
    width = max(8, *(len(p) for p in props))
    name_w = max(5, *(len(n) for _, n in rows))
    head = f"{'layer':>5}  {'name':<{name_w}}  " + "  ".join(f"{p:>{width}}" for p in props)
    lines = [head, "-" * len(head)]
    for (idx, name), scores in rows.items():
        cells = [f"{'-' if scores.get(p) is None else f'{scores[p]:.4f}':>{width}}" for p in props]
        lines.append(f"{idx:>5}  {name:<{name_w}}  " + "  ".join(cells))
    return "\n".join(lines)
