"""`layerbench status RUN_DIR`: how far a run is (local or on Slurm), and its tables once all units are in."""

from __future__ import annotations

import argparse

ORDER = 55


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="progress of a run folder: units done, running, queued, failed, lost; tables once all are in",
        description=(
            "Report where every unit of the run in RUN_DIR stands (result files, failure records, claims, "
            "and the Slurm queue for a --launcher slurm run). When every unit is in, write the comparison "
            "and the leaderboard. Exit code 0 when all units are done, 1 otherwise. To re-submit what is "
            "missing or failed, rerun the `layerbench run` command."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run's output folder (the suite's `out`, or --out)")
    p.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> int:
    from bench.launch import slurm

    return slurm.status(args.run_dir)
