"""`layerbench probe`: train every single-layer probe and the weighted-sum probe of one (upstream, task)."""

from __future__ import annotations

import argparse

ORDER = 30


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="probe every layer (and the weighted sum) of an upstream on one task",
        description=(
            "Train the SUPERB head of a task on every selected layer and on a learned weighted sum "
            "of all layers, all from one upstream pass per batch (utterance-level tasks train from a "
            "cached per-layer mean). Each head keeps its best-dev checkpoint and is tested with it. "
            "Writes one result JSON; a finished result with the same config is skipped."
        ),
    )
    add_unit_arguments(p, "probe")
    p.set_defaults(func=_run)


def add_unit_arguments(p: argparse.ArgumentParser, kind: str) -> None:
    """The options of a command that trains probes of one (upstream, task): probe and tune."""
    import tasks

    p.add_argument("--upstream", required=True, help="upstream spec, e.g. fbank, randinit:hubert-tiny, hf:DIR")
    p.add_argument("--task", required=True, help=f"one of: {', '.join(tasks.names())}, or py:package.module:TaskClass")
    p.add_argument("--corpus", required=True, help="corpus folder (or the synthetic root holding all four)")
    p.add_argument("--preset", default="quick", help="quick (synthetic corpus, CPU) or superb (published recipe)")
    p.add_argument("--layers", default="all",
                   help="all (default), every:K, none (weighted sum only) or a comma list of layer indices")
    p.add_argument("--out", default="runs", help=f"results folder (default: runs); files go to <out>/{kind}/")
    p.add_argument("--config", default=None, help="YAML file of overrides for the preset's values")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset value, e.g. --set steps=500 --set head.hidden=128 (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of head init, batching and sampling (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--label", default=None, help="display name of the upstream in tables (not hashed)")
    p.add_argument("--force", action="store_true", help="recompute even when a finished result exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def preset_overrides(args: argparse.Namespace) -> dict | None:
    """--config's values with --set's on top (both are later checked against the preset's keys)."""
    from bench.config import load_yaml, merge, parse_overrides

    overrides: dict = load_yaml(args.config) if args.config else {}
    cli = parse_overrides(args.overrides)
    if cli:
        overrides = merge(overrides, cli, strict=False)  # --set wins over --config
    return overrides or None


def _run(args: argparse.Namespace) -> int:
    from bench.probe import format_table, run_probe

    outcome = run_probe(args.upstream, args.task, args.corpus, preset=args.preset, overrides=preset_overrides(args),
                        layers=args.layers, out_dir=args.out, seed=args.seed, device=args.device, force=args.force,
                        label=args.label, progress=not args.no_progress)
    print(format_table(outcome.result))
    state = "already done, skipped; " if outcome.skipped else ""
    print(f"probe {args.upstream} x {args.task}: {state}result in {outcome.path}")
    return 0
