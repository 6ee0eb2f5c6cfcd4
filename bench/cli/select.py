"""`layerbench select`: CCA first, then probe only the CCA top-K layers of one upstream for one task."""

from __future__ import annotations

import argparse

ORDER = 55


def register(sub: argparse._SubParsersAction) -> None:
    import tasks

    p = sub.add_parser(
        "select",
        help="pick a layer cheaply: CCA, then probe only the CCA top-K layers",
        description=(
            "Run the CCA property that predicts the task (comparator mapping: semantic tasks -> word, "
            "PR/ASR -> phone), probe only the K best CCA layers, and report the chosen layer and the "
            "compute spent against a full sweep."
        ),
    )
    p.add_argument("--upstream", required=True, help="upstream spec (e.g. fbank, hf:facebook/hubert-base-ls960)")
    p.add_argument("--task", required=True, help=f"one of: {', '.join(tasks.names())}, or py:package.module:TaskClass")
    p.add_argument("--corpus", required=True, help="corpus folder (or the synthetic corpus root)")
    p.add_argument("--top-k", type=int, default=3, help="how many CCA-ranked layers to probe (default 3)")
    p.add_argument("--preset", default="quick", help="probe preset (quick or superb)")
    p.add_argument("--cca-preset", default="default", help="CCA preset (default or quick)")
    p.add_argument("--property", default=None, help="CCA property to rank by (default: from the comparator mapping)")
    p.add_argument("--out", default="runs/select", help="output folder (default runs/select)")
    p.add_argument("--results", default=None,
                   help="a results folder (e.g. runs/quick/results) to reuse CCA from and compare with its full sweep")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="probe config override (repeatable), e.g. --set steps=200 --set lr=1e-3")
    p.add_argument("--cca-set", dest="cca_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="CCA config override (repeatable), e.g. --cca-set mel.num_utterances=100")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_select)


def _select(args: argparse.Namespace) -> int:
    from bench.config import parse_overrides
    from bench.select import format_selection, select_layer

    selection, report = select_layer(
        args.upstream, args.task, args.corpus, args.top_k, preset=args.preset, cca_preset=args.cca_preset,
        property=args.property, overrides=parse_overrides(args.overrides) or None,
        cca_overrides=parse_overrides(args.cca_overrides) or None, out_dir=args.out, results_dir=args.results, seed=args.seed,
        device=args.device, progress=not args.no_progress)
    print(format_selection(selection))
    print(f"report written to {report}")
    return 0
