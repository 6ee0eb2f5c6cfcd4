"""`layerbench run [SUITE]`: the main job — a model zoo over every task and CCA, then the leaderboard."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from bench.launch import LAUNCHERS

ORDER = 50


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a suite (zoo x tasks x CCA), resume-safe, then compare and build the leaderboard",
        description=(
            "Plan and run a suite: every upstream of its zoo on every task and CCA property. "
            "Units already done with the same config are skipped, a failed unit is recorded under "
            "<out>/failures/ and the rest go on. Without SUITE: the embedded quick suite on the small "
            "synthetic corpus (written to ./data/synth-small when missing), results in ./runs/quick."
        ),
    )
    p.add_argument("suite", nargs="?", default=None,
                   help="suite YAML path or name in configs/suites (default: quick)")
    p.add_argument("--out", default=None, help="output folder (overrides the suite's `out`)")
    p.add_argument("--data", default=None,
                   help="synthetic corpus folder (overrides corpora.synthetic.dir; suites on the synthetic corpus only)")
    p.add_argument("--device", default=None, help="auto, cpu or cuda[:N] (overrides the suite's `device`)")
    p.add_argument("--seed", type=int, action="append", default=None,
                   help="seed(s) to run (repeatable; overrides the suite's `seeds`)")
    p.add_argument("--dry-run", "--plan-only", dest="dry_run", action="store_true",
                   help="print the plan (which units are done) and exit; touches no audio and loads no model")
    p.add_argument("--force", action="store_true", help="recompute units even when a finished result exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    g = p.add_argument_group("launching (overrides the suite's `launcher:` section)")
    g.add_argument("--launcher", choices=LAUNCHERS, default=None,
                   help="local: every unit here, one after another (default); slurm: the pending units as one "
                        "Slurm job array through submitit, one task per unit")
    g.add_argument("--slurm-partition", default=None, help="partition to submit to (default: the cluster's default)")
    g.add_argument("--slurm-gpus-per-unit", type=int, default=None, help="GPUs per array task (default 0)")
    g.add_argument("--slurm-cpus-per-unit", type=int, default=None, help="CPUs per array task (default 1)")
    g.add_argument("--slurm-mem-gb", type=float, default=None, help="memory per array task in GB (default: the partition's)")
    g.add_argument("--slurm-time", default=None, help="wall time per task: minutes, H:MM:SS or D-HH:MM:SS (default 4:00:00)")
    g.add_argument("--slurm-array-parallelism", type=int, default=None,
                   help="at most this many tasks of the array run at once (default 64)")
    g.add_argument("--slurm-account", default=None, help="Slurm account to charge")
    g.add_argument("--slurm-qos", default=None, help="Slurm quality of service")
    g.add_argument("--no-wait", action="store_true",
                   help="slurm: submit and return at once; watch with `layerbench status OUT`, rerun to resume")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bench import launch, runner
    from bench.config import ConfigError

    suite = runner.load_suite(args.suite)
    if args.out:
        suite = replace(suite, out=Path(args.out))
    if args.device:
        suite = replace(suite, device=args.device)
    if args.seed:
        suite = replace(suite, seeds=list(dict.fromkeys(args.seed)))
    if args.data:
        if suite.synthetic is None:
            raise ConfigError(f"--data sets the synthetic corpus folder, but suite {suite.source} reads real corpora")
        suite = replace(suite, synthetic=replace(suite.synthetic, dir=Path(args.data)))

    suite = replace(suite, launcher=launch.with_options(
        suite.launcher, kind=args.launcher, partition=args.slurm_partition, gpus_per_unit=args.slurm_gpus_per_unit,
        cpus_per_unit=args.slurm_cpus_per_unit, mem_gb=args.slurm_mem_gb, time=args.slurm_time,
        array_parallelism=args.slurm_array_parallelism, account=args.slurm_account, qos=args.slurm_qos))

    if args.dry_run:
        units = runner.plan(suite)
        print(runner.format_plan(suite, units))
        print(f"dry run: {sum(not u.done for u in units)} unit(s) would run; results would go to {suite.out}")
        return 0

    if suite.launcher.kind == "slurm":
        return _run_slurm(suite, args)
    if args.no_wait:
        raise ConfigError("--no-wait is for --launcher slurm (a local run computes its units itself)")
    try:
        summary = runner.run_suite(suite, force=args.force, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished units are saved under {suite.out}; rerun the same command to resume",
              file=sys.stderr)
        return 130
    counts = summary.counts()
    claimed = f", {counts['claimed']} running elsewhere" if counts["claimed"] else ""
    print(f"units: {counts['done']} computed, {counts['skipped']} already done, {counts['failed']} failed{claimed}")
    if summary.failures:
        print(runner.format_failures(summary.reports), file=sys.stderr)
    _print_outputs(suite, summary.outputs)
    return 1 if summary.failures or counts["claimed"] else 0


def _run_slurm(suite, args: argparse.Namespace) -> int:
    from bench.launch import slurm

    states, outputs = slurm.launch(suite, suite.launcher, force=args.force, wait=not args.no_wait,
                                   progress=not args.no_progress)
    if args.no_wait:
        return 0
    print(slurm.format_states(states))
    _print_outputs(suite, outputs)
    return 0 if all(s.state == "done" for s in states) else 1


def _print_outputs(suite, outputs: dict) -> None:
    """The last lines: per seed the comparator's aggregates and the headline table, then where everything is."""
    for name, paths in outputs.items():
        text = paths.get("text") if isinstance(paths, dict) else None
        if text and Path(text).is_file():
            print()
            print(Path(text).read_text().rstrip("\n"))
    if suite.notes:
        print("\nreading these numbers:")
        for note in suite.notes:
            print(f"  - {note}")
    print(f"outputs: {suite.out} ({'; '.join(_where(suite, outputs))})")


def _where(suite, outputs: dict) -> list[str]:
    """`leaderboard <index.html>`, `comparison <comparison.md>` per seed, then results and run log."""
    out = []
    for name, paths in outputs.items():
        what = name.split("_")[0]
        if isinstance(paths, dict):
            main = paths.get("html") or paths.get("markdown") or next(iter(paths.values()), "")
            out.append(f"{what} {main}")
        else:
            out.append(f"{what} {paths}")
    return out + [f"results {suite.out / 'results'}", f"run log {suite.out / 'run.json'}"]
