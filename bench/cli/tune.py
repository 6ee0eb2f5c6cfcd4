"""`layerbench tune`: the best learning rate for every layer and the weighted sum of one (upstream, task)."""

from __future__ import annotations

import argparse

ORDER = 35


def register(sub: argparse._SubParsersAction) -> None:
    from bench.cli.probe import add_unit_arguments

    p = sub.add_parser(
        "tune",
        help="search the learning rate of every layer's probe and the weighted sum (optuna)",
        description=(
            "An optuna study per head (every single layer and the weighted sum) over the learning rate, "
            "log-uniform around the preset's rate or a grid. K rates train together as stacked copies of "
            "every head, from one upstream pass per batch; a pruner stops clearly worse rates. Writes one "
            "result JSON (the probe result at each head's best dev rate, with every trial). Defaults: "
            "configs/tune.yaml."
        ),
    )
    add_unit_arguments(p, "tune")
    p.add_argument("--trials", type=int, default=None, help="rates tried per head (default from configs/tune.yaml: 8)")
    p.add_argument("--stack", type=int, default=None, help="rates trained together in one bank (default 4)")
    p.add_argument("--storage", default=None,
                   help="optuna storage: sqlite:///tune.db or journal:PATH (resumable, shareable); default in memory")
    p.add_argument("--grid", default=None, metavar="LR,LR,...", help="try these rates (in this order) instead of sampling")
    p.add_argument("--lr-range", default=None, metavar="LOW,HIGH",
                   help="log-uniform range (default: 0.01x to 10x the preset's lr)")
    p.add_argument("--sampler", default=None, help="tpe (default) or random")
    p.add_argument("--pruner", default=None, help="median (default), halving or none")
    p.add_argument("--tune-set", dest="tune_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a tune setting of configs/tune.yaml, e.g. --tune-set prune_warmup=3 (repeatable)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bench.cli.probe import preset_overrides
    from bench.config import parse_overrides
    from bench.tune import format_tuned, run_tune

    tune = parse_overrides(args.tune_overrides)
    for key, value in (("trials", args.trials), ("stack", args.stack), ("grid", args.grid),
                       ("lr_range", args.lr_range), ("sampler", args.sampler), ("pruner", args.pruner)):
        if value is not None:
            tune[key] = value
    outcome = run_tune(args.upstream, args.task, args.corpus, preset=args.preset, overrides=preset_overrides(args),
                       layers=args.layers, tune=tune, storage=args.storage, out_dir=args.out, seed=args.seed,
                       device=args.device, force=args.force, label=args.label, progress=not args.no_progress)
    print(format_tuned(outcome.result))
    state = "already done, skipped; " if outcome.skipped else ""
    print(f"tune {args.upstream} x {args.task}: {state}result in {outcome.path}")
    return 0
