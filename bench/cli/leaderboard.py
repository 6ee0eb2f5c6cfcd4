"""`layerbench leaderboard RESULTS --out DIR`: tables, plots and one HTML page from result files."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 70


def default_out(results: str | Path) -> Path:
    """Beside the results folder, so result scans never see the leaderboard's files."""
    return Path(results).resolve().parent / "leaderboard"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="Markdown/CSV/LaTeX/HTML leaderboard and plots from result files",
        description="A row per upstream; per task the weighted-sum score, the best single layer "
        "(score and index) and the CCA-picked layer's score. Writes leaderboard.{md,csv,tex}, "
        "plots/*.png and a self-contained index.html; prints the Markdown table.",
    )
    p.add_argument("results", help="a results folder written by `layerbench run`")
    p.add_argument("--out", help="output folder (default: 'leaderboard' beside RESULTS)")
    p.add_argument("--config", help="comparator YAML (which CCA property picks the layer for each task)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="comparator override, e.g. --set mapping.ks=[phone] (repeatable)")
    p.add_argument("--title", default="LayerBench leaderboard", help="page title of the HTML leaderboard")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.compare import load_compare_config
    from bench.config import parse_overrides
    from leaderboard import build_leaderboard

    cfg = load_compare_config(args.config, parse_overrides(args.overrides))
    out = Path(args.out) if args.out else default_out(args.results)
    paths = build_leaderboard(args.results, out, config=cfg, title=args.title)
    print(paths["markdown"].read_text())
    n_plots = sum(k.startswith("plot:") for k in paths)
    print(f"Leaderboard written to {out} (index.html, leaderboard.md/.csv/.tex, {n_plots} plots in plots/)")
    return 0
